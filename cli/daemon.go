package cli

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// daemonEnv names the environment variable through which -d tells the
// process it starts which file descriptor carries its start-up messages.
const daemonEnv = "OCSIPROXY_DAEMON_FD"

// daemonize starts the same command without -d, detached in its own
// session, and waits until that process serves or fails: it copies the
// process's start-up messages (its stderr until it serves) to stderr and
// returns 0 once the process is ready, or the process's exit status when
// it stops before (1 when a signal ended it). Readiness is the
// systemd-style "READY=1" the server sends when every listener is open,
// on a socket the parent makes for it. There is no time limit: the
// parent waits as long as the start-up takes.
func daemonize(args []string, stderr io.Writer) int {
	var rest []string
	for _, a := range args {
		if a != "-d" && a != "--daemon" {
			rest = append(rest, a)
		}
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "ocsiproxy: daemon: %v\n", err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	dir, err := os.MkdirTemp("", "ocsiproxy-daemon-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "notify")
	notes, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return fail(err)
	}
	defer notes.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	defer r.Close()
	cmd := exec.Command(self, rest...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") && !strings.HasPrefix(kv, daemonEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sock, daemonEnv+"=3")
	cmd.ExtraFiles = []*os.File{w} // fd 3 in the child
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fail(err)
	}
	copied := make(chan struct{})
	go func() {
		io.Copy(stderr, r)
		close(copied)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := notes.Read(buf)
			if err != nil {
				return
			}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				if line == "READY=1" {
					close(ready)
					return
				}
			}
		}
	}()
	select {
	case <-ready:
		// The child closes its end of the pipe before it notifies.
		<-copied
		return 0
	case err := <-exited:
		<-copied
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if code := ee.ExitCode(); code > 0 {
				return code
			}
			fmt.Fprintf(stderr, "ocsiproxy: daemon: %v\n", ee)
			return 1
		}
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stderr, "ocsiproxy: daemon: the server exited before it was ready\n")
		return 1
	}
}

// daemonReport returns the file on which a process started by -d writes
// its start-up messages, or nil when the process was not started by -d.
// The variable is removed from the environment.
func daemonReport() *os.File {
	v, ok := os.LookupEnv(daemonEnv)
	if !ok {
		return nil
	}
	os.Unsetenv(daemonEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "daemon-report")
}

// handoff is a writer that sends the start-up messages of a process
// started by -d to its parent, and everything after to the process's
// own stderr.
type handoff struct {
	mu     sync.Mutex
	w      io.Writer
	report *os.File
}

func (h *handoff) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.w.Write(p)
}

// done closes the report: later writes go to after.
func (h *handoff) done(after io.Writer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.report != nil {
		h.report.Close()
		h.report = nil
		h.w = after
	}
}
