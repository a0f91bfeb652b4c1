//go:build !unix

package schedtune

// reexec does nothing where a process cannot replace its program.
func reexec(path string, args, env []string) {}
