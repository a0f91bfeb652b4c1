//go:build unix

package schedtune

import "syscall"

// reexec replaces the program with path, run with args and env; it
// returns only when that fails.
func reexec(path string, args, env []string) {
	syscall.Exec(path, args, env)
}
