package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCommandPipe starts the server with a <commandpipe>, sends a broken
// "reload" (the error goes to errors.log with its position), a
// "reopen_logs" after the log file was moved away (logrotate), and
// "shutdown", which must stop the server with exit status 0.
func TestCommandPipe(t *testing.T) {
	dir := t.TempDir()
	pipe := filepath.Join(dir, "cmd")
	logdir := filepath.Join(dir, "log")
	os.Mkdir(logdir, 0o755)
	conf := filepath.Join(dir, "ocsiproxy.conf")
	broken := filepath.Join(dir, "broken.conf")
	os.WriteFile(conf, []byte(`<ocsigen><server><port>127.0.0.1:0</port><logdir>`+logdir+`</logdir>
<commandpipe>`+pipe+`</commandpipe>
<extension findlib-package="ocsigenserver.ext.revproxy"/>
<host><revproxy suburl=".*" dest="http://127.0.0.1:9/"/></host></server></ocsigen>`), 0o644)
	os.WriteFile(broken, []byte("<ocsigen><server><port>1</port>\n<host><nope/></host></server></ocsigen>"), 0o644)
	done := make(chan int, 1)
	var stdout, stderr bytes.Buffer
	go func() { done <- Run([]string{"-c", conf, "-p", filepath.Join(dir, "pid")}, nil, &stdout, &stderr) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Stat(pipe); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("command pipe not created; stderr: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	send := func(cmd string) {
		f, err := os.OpenFile(pipe, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(cmd + "\n")
		f.Close()
	}
	waitFor := func(file, text string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if b, err := os.ReadFile(file); err == nil && strings.Contains(string(b), text) {
				return
			}
		}
		b, _ := os.ReadFile(file)
		t.Fatalf("%s never contained %q:\n%s", file, text, b)
	}
	send("reload " + broken)
	waitFor(filepath.Join(logdir, "errors.log"), broken+":2:7: unknown element <nope>")
	os.Rename(filepath.Join(logdir, "errors.log"), filepath.Join(logdir, "errors.log.1"))
	send("reopen_logs")
	waitFor(filepath.Join(logdir, "errors.log"), "") // recreated
	send("frobnicate")
	waitFor(filepath.Join(logdir, "errors.log"), `unknown command "frobnicate"`)
	send("shutdown 1")
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d, stderr: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown command did not stop the server")
	}
	if _, err := os.Stat(pipe); err == nil {
		t.Errorf("command pipe left behind")
	}
	if _, err := os.Stat(filepath.Join(dir, "pid")); err == nil {
		t.Errorf("pid file left behind")
	}
}

// TestSyslogUnreachableAtStart checks that a <syslog> that cannot be
// reached stops the start with the position of <syslog>. It needs a
// machine without a syslog socket.
func TestSyslogUnreachableAtStart(t *testing.T) {
	for _, p := range []string{"/dev/log", "/var/run/syslog", "/var/run/log"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			t.Skipf("%s is a socket: syslog may be reachable here", p)
		}
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "ocsiproxy.conf")
	os.WriteFile(conf, []byte("<ocsigen><server><port>127.0.0.1:0</port><logdir>"+dir+"</logdir>\n  <syslog>local2</syslog>\n"+
		`<extension findlib-package="ocsigenserver.ext.revproxy"/><host><revproxy suburl=".*" dest="http://127.0.0.1:9/"/></host></server></ocsigen>`), 0o644)
	var stdout, stderr bytes.Buffer
	if code := Run([]string{"-c", conf}, nil, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d, want 1; stderr: %s", code, stderr.String())
	}
	if want := conf + ":2:3: <syslog>: cannot reach syslog at /dev/log, /var/run/syslog or /var/run/log: "; !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("stderr %q, want it to start with %q", stderr.String(), want)
	}
	if _, err := os.Stat(filepath.Join(dir, "access.log")); err == nil {
		t.Errorf("access.log written with <syslog>")
	}
}

// TestWatchFlag starts the server with --watch, changes the
// configuration file and waits for the reload in the log, then stops the
// server through its command pipe.
func TestWatchFlag(t *testing.T) {
	dir := t.TempDir()
	pipe := filepath.Join(dir, "cmd")
	conf := filepath.Join(dir, "ocsiproxy.conf")
	write := func(dest string) {
		t.Helper()
		src := `<ocsigen><server><port>127.0.0.1:0</port><logdir>` + dir + `</logdir><commandpipe>` + pipe + `</commandpipe>
<extension findlib-package="ocsigenserver.ext.revproxy"/>
<host><revproxy suburl=".*" dest="` + dest + `"/></host></server></ocsigen>`
		if err := os.WriteFile(conf, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("http://127.0.0.1:9/")
	done := make(chan int, 1)
	var stdout, stderr bytes.Buffer
	go func() { done <- Run([]string{"-c", conf, "--watch", "-v"}, nil, &stdout, &stderr) }()
	waitFor := func(file, text string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if b, err := os.ReadFile(file); err == nil && strings.Contains(string(b), text) {
				return
			}
		}
		b, _ := os.ReadFile(file)
		t.Fatalf("%s never contained %q:\n%s", file, text, b)
	}
	waitFor(filepath.Join(dir, "warnings.log"), "watching "+conf)
	write("http://127.0.0.1:10/")
	waitFor(filepath.Join(dir, "warnings.log"), "info: reloaded "+conf)
	f, err := os.OpenFile(pipe, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("shutdown 1\n")
	f.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d, stderr: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown command did not stop the server")
	}
}
