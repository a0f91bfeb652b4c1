package cli

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mainEnv makes the test binary act as ocsiproxy itself, so that -d can
// start it again as its server process.
const mainEnv = "OCSIPROXY_CLI_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		os.Exit(Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestDaemon runs -d, which starts the server in its own session and
// waits for it: with a broken configuration and with a busy port it must
// exit non-zero with the server's errors; with a good one, exit 0 while
// the server (whose pid file says which process it is) serves.
func TestDaemon(t *testing.T) {
	t.Setenv(mainEnv, "1")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	revproxy := `<extension findlib-package="ocsigenserver.ext.revproxy"/>` + "\n"
	cases := []struct {
		name string
		conf string
		code int
		// want are substrings of stderr; %s is the config file.
		want []string
	}{
		{"broken config", "<ocsigen><server><port>127.0.0.1:0</port>\n" + revproxy +
			`<host><revproxy suburl="(" dest="http://127.0.0.1:9/"/></host></server></ocsigen>`,
			1, []string{"%s:3:7: "}},
		{"busy port", "<ocsigen><server>\n<port>" + busy.Addr().String() + "</port>\n" + revproxy +
			`<host><revproxy suburl=".*" dest="http://127.0.0.1:9/"/></host></server></ocsigen>`,
			1, []string{"%s:2:1: listening on " + busy.Addr().String(), "address already in use"}},
		{"serving", "<ocsigen><server><port>127.0.0.1:0</port>\n" + revproxy +
			`<host><revproxy suburl=".*" dest="http://127.0.0.1:9/"/></host></server></ocsigen>`,
			0, []string{"ocsiproxy: listening on 127.0.0.1:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := filepath.Join(dir, "ocsiproxy.conf")
			pidfile := filepath.Join(dir, "pid")
			if err := os.WriteFile(conf, []byte(tc.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := Run([]string{"-c", conf, "-p", pidfile, "-d"}, nil, &stdout, &stderr)
			if b, err := os.ReadFile(pidfile); err == nil {
				// The server's process: stop it whatever the outcome.
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && code == 0 {
					t.Cleanup(func() { stopServer(t, pid, pidfile) })
				}
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "%s", conf); !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if tc.code != 0 {
				return
			}
			b, err := os.ReadFile(pidfile)
			if err != nil {
				t.Fatalf("exit 0 but no pid file: %v", err)
			}
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if pid == os.Getpid() || pid <= 0 {
				t.Fatalf("pid file says %d; want the server's process", pid)
			}
			if err := syscall.Kill(pid, 0); err != nil {
				t.Errorf("server process %d not running after -d returned: %v", pid, err)
			}
			// /proc/PID/stat: "pid (comm) state ppid pgrp session ...".
			if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
				_, after, _ := strings.Cut(string(stat), ") ")
				if f := strings.Fields(after); len(f) < 4 || f[3] != strconv.Itoa(pid) {
					t.Errorf("server process %d: /proc stat %q; want its own session", pid, stat)
				}
			}
		})
	}
}

// stopServer sends SIGTERM to the server process pid (started by the
// test) and waits until it has removed its pid file.
func stopServer(t *testing.T, pid int, pidfile string) {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Errorf("stopping server %d: %v", pid, err)
		return
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(pidfile); os.IsNotExist(err) {
			return
		}
	}
	t.Errorf("server %d did not stop on SIGTERM", pid)
}
