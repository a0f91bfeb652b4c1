package cli

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReverseProxyFlags: the command-line errors of --reverse-proxy, and
// its dry run, built from no file.
func TestReverseProxyFlags(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{[]string{"--reverse-proxy", "ftp://app"}, 2, "", `ocsiproxy: --reverse-proxy "ftp://app": want http://host[:port][/path] or https://...`},
		{[]string{"--reverse-proxy", "http://app/?q=1"}, 2, "", "want no user, query, fragment or backslash"},
		{[]string{"--reverse-proxy", "app:8080"}, 2, "", "want http://host"},
		{[]string{"--reverse-proxy", "http://app", "--port", "nope"}, 2, "", `ocsiproxy: <port>: bad port "nope"`},
		{[]string{"--reverse-proxy", "http://app", "-c", "x.conf"}, 2, "", "--reverse-proxy and -c/--config exclude each other"},
		{[]string{"--port", "8081"}, 2, "", "--port goes with --reverse-proxy"},
		{[]string{"--reverse-proxy", "http://app", "--watch"}, 2, "", "ocsiproxy: --watch needs a configuration file; --reverse-proxy has none"},
		{[]string{"--reverse-proxy", "http://app:8080/base/", "--dry-run", "http://h/x/y?q=1"}, 0,
			"  => proxy GET http://app:8080/base/x/y?q=1 Host: app:8080 [--reverse-proxy:1]\n     backend gets X-Forwarded-For: 127.0.0.1\n", ""},
		{[]string{"--reverse-proxy", "https://app", "--dry-run", "--from", "203.0.113.9", "--header", "X-Forwarded-For: 10.9.9.9", "http://h/"}, 0,
			"  => proxy GET https://app/ Host: app [--reverse-proxy:1]\n     backend gets X-Forwarded-For: 203.0.113.9\n", ""},
		{[]string{"--reverse-proxy", "http://app", "--port", "127.0.0.1:9999", "--dry-run"}, 0, "config --reverse-proxy: ok (1 hosts", ""},
	}
	for _, tt := range tests {
		code, out, errs := run(t, tt.args...)
		if code != tt.code || !strings.Contains(out, tt.inStdout) || !strings.Contains(errs, tt.inStderr) {
			t.Errorf("%q: exit %d stdout %q stderr %q; want exit %d, stdout with %q, stderr with %q",
				tt.args, code, out, errs, tt.code, tt.inStdout, tt.inStderr)
		}
	}
}

// TestReverseProxyServes runs "ocsiproxy --reverse-proxy URL --port P"
// in front of a loopback backend: everything is forwarded to URL, the
// backend sees the peer in X-Forwarded-For (a client's own is not
// trusted), and the access lines go to stdout. SIGTERM stops it.
func TestReverseProxyServes(t *testing.T) {
	got := make(chan string, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.RequestURI + " xff=" + r.Header.Get("X-Forwarded-For")
		fmt.Fprint(w, "from backend")
	}))
	defer be.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run([]string{"--reverse-proxy", be.URL + "/app", "--port", addr}, nil, &stdout, &stderr)
	}()
	var resp *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/x/y?q=1", nil)
		req.Header.Set("X-Forwarded-For", "10.9.9.9")
		if resp, err = http.DefaultTransport.RoundTrip(req); err == nil {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("exit %d before serving; stderr: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving on %s: %v", addr, err)
		}
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "from backend" {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	if g, want := <-got, "/app/x/y?q=1 xff=127.0.0.1"; g != want {
		t.Errorf("backend got %q, want %q", g, want)
	}
	// The server answered, so it handles SIGTERM by now.
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d, stderr: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("SIGTERM did not stop the server")
	}
	if !strings.Contains(stdout.String(), `"GET /x/y?q=1 HTTP/1.1" 200`) {
		t.Errorf("no access line on stdout: %q", stdout.String())
	}
}
