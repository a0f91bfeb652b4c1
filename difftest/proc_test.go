package difftest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/syncbuf"
)

// startTimeout bounds the wait for a server to listen, or to exit when it
// is expected to refuse its config.
const startTimeout = 15 * time.Second

// stopTimeout bounds the wait after SIGTERM before SIGKILL.
const stopTimeout = 3 * time.Second

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a server under test, started in its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *bytes.Buffer // stdout and stderr
	done chan struct{}
	err  error // Wait's result, valid once done is closed
	once sync.Once
}

// startProc starts argv in dir with its own process group; t.Cleanup stops
// the whole group by its id.
func startProc(t *testing.T, name, dir string, env []string, argv ...string) (*proc, *syncbuf.Buffer) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Stdin = nil
	// Its own process group, so stop can signal every process it starts;
	// Pdeathsig also kills the leader if the test binary dies without
	// running its cleanups (a -timeout panic).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: start %v: %v", name, argv, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	return p, out
}

// stop sends SIGTERM to the process group, then SIGKILL after stopTimeout.
func (p *proc) stop() {
	p.once.Do(func() {
		pgid := p.cmd.Process.Pid
		select {
		case <-p.done:
			// The leader is gone; make sure no child of its group survives.
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		default:
		}
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
		}
	})
}

// exited reports whether the process has exited, and its exit status.
func (p *proc) exited() (bool, int) {
	select {
	case <-p.done:
		var ee *exec.ExitError
		if errors.As(p.err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return true, 128 + int(ws.Signal())
			}
			return true, ee.ExitCode()
		}
		if p.err != nil {
			return true, -1
		}
		return true, 0
	default:
		return false, 0
	}
}

// listening reports whether something accepts connections on port.
func listening(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// startState is how a server start ended.
type startState struct {
	Listening bool
	Exited    bool
	Code      int
	Output    string
}

func (s startState) String() string {
	switch {
	case s.Listening:
		return "started (listening)"
	case s.Exited && s.Code != 0:
		return fmt.Sprintf("refused (exit status %d)", s.Code)
	case s.Exited:
		return "exited with status 0 without listening"
	}
	return "neither listening nor exited within the start timeout"
}

// waitStart polls port until the server listens, exits, or startTimeout
// passes. A server that should refuse its config must exit with a non-zero
// status and never accept a connection.
func waitStart(p *proc, out *syncbuf.Buffer, port int) startState {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if ex, code := p.exited(); ex {
			return startState{Exited: true, Code: code, Output: out.String()}
		}
		if listening(port) {
			return startState{Listening: true, Output: out.String()}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return startState{Output: out.String()}
}

// configTemplate is the Ocsigen config every scenario is rendered into.
// {SERVER} and {HOSTS} come from the scenario.
const configTemplate = `<ocsigen>
  <server>
    <port>127.0.0.1:{PORT}</port>
    <logdir>{DIR}/log</logdir>
    <datadir>{DIR}/data</datadir>
    <commandpipe>{DIR}/command</commandpipe>
    <findlib path="/usr/lib/ocaml"/>
    <extension findlib-package="ocsigenserver.ext.revproxy"/>
    <extension findlib-package="ocsigenserver.ext.redirectmod"/>
    <extension findlib-package="ocsigenserver.ext.rewritemod"/>
    <extension findlib-package="ocsigenserver.ext.outputfilter"/>
    <extension findlib-package="ocsigenserver.ext.accesscontrol"/>
{SERVER}
{HOSTS}
  </server>
</ocsigen>
`

// vars are the placeholders of a scenario's XML and requests.
type vars struct {
	Port    int    // the listening port of the server under test
	Dir     string // its private directory (logdir, datadir, extconf)
	Backend int    // the recording backend's port
	Down    int    // a port nobody listens on
}

func (v vars) expand(s string) string {
	return strings.NewReplacer(
		"{PORT}", strconv.Itoa(v.Port),
		"{DIR}", v.Dir,
		"{B}", "127.0.0.1:"+strconv.Itoa(v.Backend),
		"{BPORT}", strconv.Itoa(v.Backend),
		"{DOWN}", "127.0.0.1:"+strconv.Itoa(v.Down),
		"{DECOY}", decoyIP,
	).Replace(s)
}

// writeConfig renders the scenario into dir/ocsigen.conf (and the extconf
// files into dir/extconf) and returns the config's path.
func writeConfig(t *testing.T, sc *scenario, v vars) string {
	t.Helper()
	for _, d := range []string{"log", "data", "extconf"} {
		if err := os.MkdirAll(filepath.Join(v.Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range sc.extconf {
		if err := os.WriteFile(filepath.Join(v.Dir, "extconf", name), []byte(v.expand(body)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := sc.config
	if conf == "" {
		conf = strings.NewReplacer("{SERVER}", sc.server, "{HOSTS}", sc.hosts).Replace(configTemplate)
	}
	path := filepath.Join(v.Dir, "ocsigen.conf")
	if err := os.WriteFile(path, []byte(v.expand(conf)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
