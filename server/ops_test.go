package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// selfSigned writes a certificate and key for 127.0.0.1 into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ocsiproxy test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// running is a server started by Listen and Serve on loopback.
type running struct {
	srv    *Server
	file   string
	cancel context.CancelFunc
	done   chan error
}

// start writes serverXML (the children of <server>) to a file in dir and
// serves it.
func start(t *testing.T, dir, serverXML string) *running {
	t.Helper()
	return startWith(t, dir, serverXML, func(cfg *xmlconf.Config) (*accesslog.Logs, error) {
		return accesslog.OpenLogs(cfg.LogDir, accesslog.Normal, io.Discard, io.Discard)
	})
}

// startWith is start with the logs that open returns.
func startWith(t *testing.T, dir, serverXML string, open func(cfg *xmlconf.Config) (*accesslog.Logs, error)) *running {
	t.Helper()
	file := filepath.Join(dir, "ocsiproxy.conf")
	writeConf(t, file, serverXML)
	cfg, err := xmlconf.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, logs, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{srv: srv, file: file, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			t.Errorf("server did not stop")
		}
		logs.Close()
	})
	return r
}

func writeConf(t *testing.T, file, serverXML string) {
	t.Helper()
	src := "<ocsigen><server>\n" + extensionLines + "\n" + serverXML + "\n</server></ocsigen>\n"
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

func (r *running) addr(i int) string { return r.srv.Addrs()[i].String() }

func TestHTTPSAndHTTP2(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, roots := selfSigned(t, dir)
	b := newBackend(t, nil)
	r := start(t, dir, fmt.Sprintf(`<port protocol="HTTPS">127.0.0.1:0</port><port>127.0.0.1:0</port>
<ssl><certificate>%s</certificate><privatekey>%s</privatekey></ssl>
<host><if><ssl/><then><revproxy suburl="(.*)" dest="%s/secure/\1"/></then></if>
<revproxy suburl="(.*)" dest="%s/plain/\1"/></host>`, certFile, keyFile, b.URL, b.URL))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	resp, err := client.Get("https://" + r.addr(0) + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2 by ALPN", resp.Proto)
	}
	if string(body) != "backend /secure/x" {
		t.Errorf("body %q, want the <ssl/> branch", body)
	}
	if got := b.last(t).Header.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto = %q, want https", got)
	}
	// HTTP/1.1 over TLS still works, and the plain port is plain.
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	resp, err = h1.Get("https://" + r.addr(0) + "/y")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 1 {
		t.Errorf("protocol %s, want HTTP/1.1 without h2", resp.Proto)
	}
	// Served by the HTTP/1 server over TLS: the request is as secure.
	if string(body) != "backend /secure/y" {
		t.Errorf("HTTP/1.1 over TLS: body %q, want the <ssl/> branch", body)
	}
	if got := b.last(t).Header.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("HTTP/1.1 over TLS: X-Forwarded-Proto = %q, want https", got)
	}
	if resp, body := get(t, r.addr(1), "/z", "h"); resp.StatusCode != 200 || body != "backend /plain/z" {
		t.Errorf("plain port: %d %q", resp.StatusCode, body)
	}
}

// TestHTTPSSendTimeout checks that an HTTPS client that stops reading is
// cut off after <timeout> without progress, for HTTP/1.1 over TLS and for
// a tunnel's answer head alike: the backend's write then fails instead of
// blocking for ever behind the proxy.
func TestHTTPSSendTimeout(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, roots := selfSigned(t, dir)
	failed := make(chan error, 1)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/pause" {
			// Two events 2.5 s apart: a pause, not a stalled client.
			io.WriteString(w, "one ")
			w.(http.Flusher).Flush()
			time.Sleep(2500 * time.Millisecond)
			io.WriteString(w, "two")
			return
		}
		chunk := make([]byte, 32<<10)
		for i := 0; i < 2048; i++ { // 64 MiB, far over the socket buffers
			if _, err := w.Write(chunk); err != nil {
				failed <- err
				return
			}
		}
		failed <- nil
	})
	r := start(t, dir, fmt.Sprintf(`<port protocol="HTTPS">127.0.0.1:0</port><timeout>1</timeout>
<ssl><certificate>%s</certificate><privatekey>%s</privatekey></ssl>
<host><revproxy suburl="(.*)" dest="%s/\1"/></host>`, certFile, keyFile, b.URL))
	c, err := tls.Dial("tcp", r.addr(0), &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
	// The client reads nothing.
	waitFailed := func(what string) {
		t.Helper()
		select {
		case err := <-failed:
			if err == nil {
				t.Fatalf("%s: the backend wrote 64 MiB to a client that reads nothing", what)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: the backend's write still blocked 20 s after the client stopped reading (<timeout> is 1 s)", what)
		}
	}
	waitFailed("HTTP/1.1 over TLS")

	// HTTP/2: a stream whose body the client does not read stalls on flow
	// control, not on the socket; the bound must hold there too.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + r.addr(0) + "/big2")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
	}
	waitFailed("HTTP/2 stream")

	// A stream that pauses longer than <timeout> between pieces, with a
	// client that reads, is not cut.
	resp2, err := client.Get("https://" + r.addr(0) + "/pause")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if err != nil || string(body) != "one two" {
		t.Errorf("HTTP/2 stream with a pause: body %q, error %v; want \"one two\"", body, err)
	}
}

// TestReloadWarnsConnectionOptions: a reload applies the connection
// options and <shutdowntimeout> without a "next restart" warning; only a
// change of <logdir>, <syslog>, <user> or <group>, which need a restart,
// is named in one.
func TestReloadWarnsConnectionOptions(t *testing.T) {
	dir := t.TempDir()
	conf := func(extra string) string {
		return `<port>127.0.0.1:0</port><logdir>` + dir + `</logdir>` + extra + `<host><redirect suburl="(.*)" dest="http://e/\1"/></host>`
	}
	r := start(t, dir, conf(`<shutdowntimeout>10</shutdowntimeout>`))
	warnings := func() string {
		data, _ := os.ReadFile(filepath.Join(dir, "warnings.log"))
		return string(data)
	}
	tests := []struct {
		name  string
		extra string
		want  string // in the new warnings; "" for none
	}{
		{"same file", `<shutdowntimeout>10</shutdowntimeout>`, ""},
		{"connection options", `<shutdowntimeout>3</shutdowntimeout><keepalivetimeout>5</keepalivetimeout><timeout>7</timeout>
<netbuffersize>4096</netbuffersize><maxconnected>20</maxconnected>`, ""},
		// The logs are opened once: a <syslog> added by a reload waits
		// for a restart.
		{"syslog", `<shutdowntimeout>3</shutdowntimeout><syslog>local1</syslog>`, "reload: <syslog> changes take effect at the next restart"},
		{"user", `<shutdowntimeout>3</shutdowntimeout><user>nobody</user>`, "reload: <logdir>, <user> and <group> changes take effect at the next restart"},
	}
	for _, tt := range tests {
		before := len(warnings())
		writeConf(t, r.file, conf(tt.extra))
		if err := r.srv.Reload(""); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		w := warnings()[before:]
		switch {
		case tt.want == "" && w != "":
			t.Errorf("%s: reload warned:\n%s", tt.name, w)
		case tt.want != "" && !strings.Contains(w, tt.want):
			t.Errorf("%s: warnings lack %q:\n%s", tt.name, tt.want, w)
		}
		if strings.Contains(w, "connection options") || strings.Contains(w, "<port>") {
			t.Errorf("%s: reload warned about what it applies:\n%s", tt.name, w)
		}
	}
	// <shutdowntimeout> changes at once.
	if got := r.srv.ShutdownTimeout(); got != 3*time.Second {
		t.Errorf("ShutdownTimeout() after the reload = %v, want 3s", got)
	}
}

// TestReloadUnderLoad swaps configurations while clients keep sending
// requests: no request may fail, and a broken configuration must leave the
// last good one serving.
func TestReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.URL.Path) })
	conf := func(v string) string {
		return `<port>127.0.0.1:0</port><host><revproxy suburl=".*" dest="` + b.URL + `/` + v + `"/></host>`
	}
	r := start(t, dir, conf("v0"))
	addr := r.addr(0)
	var failures, total atomic.Int64
	seen := sync.Map{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get("http://" + addr + "/")
				total.Add(1)
				if err != nil {
					failures.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
				}
				seen.Store(string(body), true)
			}
		}()
	}
	for v := 1; v <= 10; v++ {
		time.Sleep(20 * time.Millisecond)
		writeConf(t, r.file, conf(fmt.Sprintf("v%d", v)))
		if err := r.srv.Reload(""); err != nil {
			t.Errorf("reload %d: %v", v, err)
		}
	}
	// A broken configuration: the reload fails with positions and v10 keeps
	// serving.
	writeConf(t, r.file, `<port>127.0.0.1:0</port><host><revproxy suburl="(" dest="http://x/"/><bogus/></host>`)
	err := r.srv.Reload("")
	if err == nil || !strings.Contains(err.Error(), r.file+":") || !strings.Contains(err.Error(), "<bogus>") {
		t.Errorf("broken reload error = %v, want every problem with its position", err)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Errorf("%d of %d requests failed during reloads", f, total.Load())
	}
	if _, ok := seen.Load("/v10"); !ok {
		t.Errorf("never saw the last configuration's answer")
	}
	if resp, body := get(t, addr, "/", "h"); resp.StatusCode != 200 || body != "/v10" {
		t.Errorf("after the broken reload: %d %q, want 200 /v10", resp.StatusCode, body)
	}
	t.Logf("%d requests, %d failed, during 10 reloads and 1 broken reload", total.Load(), failures.Load())
}

// TestShutdownDrains checks that a graceful stop lets the request in
// flight finish, and refuses new connections.
func TestShutdownDrains(t *testing.T) {
	dir := t.TempDir()
	started := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(500 * time.Millisecond)
		fmt.Fprint(w, "finished")
	})
	r := start(t, dir, `<port>127.0.0.1:0</port><host><revproxy suburl=".*" dest="`+b.URL+`/"/></host>`)
	addr := r.addr(0)
	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			res <- result{err: err}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{resp.StatusCode, string(body), nil}
	}()
	<-started
	r.srv.Stop(10 * time.Second)
	got := <-res
	if got.err != nil || got.status != 200 || got.body != "finished" {
		t.Errorf("in-flight request: %+v, want 200 finished", got)
	}
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		r.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Stop")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("still accepting connections after shutdown")
	}
}

// TestMaxConnected checks that connections beyond <maxconnected> wait
// until one closes.
func TestMaxConnected(t *testing.T) {
	dir := t.TempDir()
	b := newBackend(t, nil)
	r := start(t, dir, `<maxconnected>1</maxconnected><port>127.0.0.1:0</port><host><revproxy suburl=".*" dest="`+b.URL+`/"/></host>`)
	addr := r.addr(0)
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(first, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	buf := make([]byte, 1)
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := first.Read(buf); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	io.WriteString(second, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	second.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _ := second.Read(buf); n > 0 {
		t.Fatalf("second connection served while the first is open")
	}
	first.Close()
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := second.Read(buf); err != nil {
		t.Errorf("second connection not served after the first closed: %v", err)
	}
}

func TestAdminListener(t *testing.T) {
	dir := t.TempDir()
	b := newBackend(t, nil)
	conf := `<port>127.0.0.1:0</port>
<extension findlib-package="ocsiproxy.ext.admin"><listen>127.0.0.1:0</listen></extension>
<host hostfilter="*.example"><revproxy suburl="(.*)" dest="` + b.URL + `/\1"/></host>`
	r := start(t, dir, conf)
	fetch := adminFetch(t, r.srv.AdminAddr().String())
	if code, body := fetch("GET", "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	get(t, r.addr(0), "/x", "www.example")
	get(t, r.addr(0), "/x", "other.org")
	ruleLine := strings.Count("<ocsigen><server>\n"+extensionLines+"\n<port>\n<extension>\n", "\n") + 1
	wants := []string{
		fmt.Sprintf(`ocsiproxy_requests_total{host="*.example",rule="%s:%d",status="200"} 1`, r.file, ruleLine),
		`ocsiproxy_requests_total{host="-",rule="-",status="404"} 1`,
		`ocsiproxy_request_duration_seconds_count{host="*.example"} 1`,
		fmt.Sprintf(`ocsiproxy_pool_requests_total{upstream="%s"} 1`, b.URL),
		fmt.Sprintf(`ocsiproxy_pool_connections_open{upstream="%s"} 1`, b.URL),
		`go_goroutines`,
	}
	// A request is counted once its answer is sent: the two are in
	// /metrics soon after, not necessarily at once.
	var code int
	var metrics string
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, metrics = fetch("GET", "/metrics")
		missing := slices.IndexFunc(wants, func(w string) bool { return !strings.Contains(metrics, w) })
		if code != 200 || missing < 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	for _, want := range wants {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, body := fetch("GET", "/api/config"); code != 200 || !strings.Contains(body, `"hostfilter": "*.example"`) || !strings.Contains(body, `"element": "revproxy"`) {
		t.Errorf("/api/config: %d %s", code, body)
	}
	writeConf(t, r.file, strings.Replace(conf, "/\\1", "/v2/\\1", 1))
	if code, body := fetch("POST", "/api/reload"); code != 200 || !strings.Contains(body, `"ok": true`) {
		t.Errorf("reload: %d %s", code, body)
	}
	if _, body := get(t, r.addr(0), "/x", "www.example"); body != "backend /v2/x" {
		t.Errorf("after reload: %q", body)
	}
	writeConf(t, r.file, `<port>127.0.0.1:0</port><host><nope/></host>`)
	if code, body := fetch("POST", "/api/reload"); code != 422 || !strings.Contains(body, "unknown element <nope>") {
		t.Errorf("broken reload: %d %s", code, body)
	}
	if _, metrics := fetch("GET", "/metrics"); !strings.Contains(metrics, `ocsiproxy_config_reloads_total{result="error"} 1`) || !strings.Contains(metrics, `ocsiproxy_config_reloads_total{result="ok"} 1`) {
		t.Errorf("reload counters missing:\n%s", metrics)
	}
}

// TestClientPipelining sends three requests in one write on one
// connection: the answers come back complete and in order.
func TestClientPipelining(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(100 * time.Millisecond)
		}
		fmt.Fprint(w, r.URL.Path)
	})
	r := start(t, t.TempDir(), `<port>127.0.0.1:0</port><host><revproxy suburl="(.*)" dest="`+b.URL+`/\1"/></host>`)
	c, err := net.Dial("tcp", r.addr(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\nGET /two HTTP/1.1\r\nHost: h\r\n\r\nGET /three HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"/slow", "/two", "/three"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer for %s: %v", want, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != want {
			t.Errorf("answer %q, want %q (out of order)", body, want)
		}
	}
}

// TestSlowHeadersClosed checks that a client sending its head slower than
// <timeout> allows is disconnected (slowloris).
func TestSlowHeadersClosed(t *testing.T) {
	b := newBackend(t, nil)
	r := start(t, t.TempDir(), `<timeout>1</timeout><port>127.0.0.1:0</port><host><revproxy suburl="(.*)" dest="`+b.URL+`/\1"/></host>`)
	c, err := net.Dial("tcp", r.addr(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			break // closed, possibly after a 408 answer
		}
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("connection held %v with <timeout>1</timeout>", d)
	}
	if b.count() != 0 {
		t.Errorf("incomplete request reached the backend")
	}
}

// TestSystemdNotify checks the readiness and stopping notifications sent
// to NOTIFY_SOCKET.
func TestSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	r := start(t, dir, `<port>127.0.0.1:0</port><host/>`)
	read := func() string {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 256)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	if got := read(); got != "READY=1" {
		t.Errorf("first notification %q, want READY=1", got)
	}
	if err := r.srv.Reload(""); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "RELOADING=1" {
		t.Errorf("on reload %q, want RELOADING=1", got)
	}
	if got := read(); got != "READY=1" {
		t.Errorf("after reload %q, want READY=1", got)
	}
	r.srv.Stop(time.Second)
	if got := read(); got != "STOPPING=1" {
		t.Errorf("on stop %q, want STOPPING=1", got)
	}
}

// TestDropPrivileges runs, as root, a child process that opens a port
// then switches to <user>nobody</user> and <group>nogroup</group>.
func TestDropPrivileges(t *testing.T) {
	if os.Getenv("OCSIPROXY_DROP_CHILD") == "1" {
		cfg, err := xmlconf.Parse("drop.conf", []byte(`<ocsigen><server><port>127.0.0.1:0</port><user>nobody</user><group>nogroup</group></server></ocsigen>`))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		logs, _ := accesslog.OpenLogs("", accesslog.Silent, io.Discard, io.Discard)
		srv, err := New(cfg, logs, engine.Options{})
		if err == nil {
			err = srv.Listen()
		}
		if err == nil {
			err = srv.DropPrivileges()
		}
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Printf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())
		os.Exit(0)
	}
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	nogroup, err := user.LookupGroup("nogroup")
	if err != nil {
		t.Skip("no group nogroup")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDropPrivileges$")
	cmd.Env = append(os.Environ(), "OCSIPROXY_DROP_CHILD=1")
	out, err := cmd.CombinedOutput()
	want := fmt.Sprintf("uid=%s gid=%s", nobody.Uid, nogroup.Gid)
	if err != nil || !strings.Contains(string(out), want) {
		t.Errorf("child: %v\n%s\nwant %q", err, out, want)
	}
}

// TestRefusedReload checks that a refused reload is written to
// errors.log whichever path asked for it, and that the admin API answers
// 422 with the problems one by one, each with its position.
func TestRefusedReload(t *testing.T) {
	dir := t.TempDir()
	good := `<port>127.0.0.1:0</port><logdir>` + dir + `</logdir>
<extension findlib-package="ocsiproxy.ext.admin"><listen>127.0.0.1:0</listen></extension>
<host><revproxy suburl=".*" dest="http://127.0.0.1:9/"/></host>`
	r := start(t, dir, good)
	admin := "http://" + r.srv.AdminAddr().String()
	broken := `<port>99999</port><logdir>` + dir + `</logdir>
<extension findlib-package="ocsiproxy.ext.admin"><listen>127.0.0.1:0</listen></extension>
<host><revproxy suburl="(" dest="http://127.0.0.1:9/"/><nope/></host>`
	writeConf(t, r.file, broken)
	line := strings.Count("<ocsigen><server>\n"+extensionLines+"\n", "\n") + 1
	want := []struct {
		Line, Col int
		Message   string
	}{
		{line, 1, "<port>: port 99999 out of range"},
		{line + 2, 7, `<revproxy>: suburl: bad regexp "(": missing closing ) in ` + "`(`"},
		{line + 2, 56, "unknown element <nope>"},
	}
	tests := []struct {
		name   string
		reload func() error
	}{
		{"admin API", func() error {
			resp, err := http.Post(admin+"/api/reload", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				OK     bool
				Errors []struct {
					File      string
					Line, Col int
					Message   string
				}
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusUnprocessableEntity || body.OK || len(body.Errors) != len(want) {
				t.Fatalf("answer %d %+v, want 422 with %d errors", resp.StatusCode, body, len(want))
			}
			for i, w := range want {
				if e := body.Errors[i]; e.File != r.file || e.Line != w.Line || e.Col != w.Col || e.Message != w.Message {
					t.Errorf("error %d: %+v, want %s:%d:%d: %s", i, e, r.file, w.Line, w.Col, w.Message)
				}
			}
			return errors.New("refused")
		}},
		{"Reload (SIGHUP, command pipe)", func() error { return r.srv.Reload("") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "errors.log"))
			if err := r.srv.Logs.Reopen(); err != nil {
				t.Fatal(err)
			}
			if err := tt.reload(); err == nil {
				t.Fatal("reload of a broken configuration accepted")
			}
			b, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
			for _, w := range want {
				if line := fmt.Sprintf("%s:%d:%d: %s", r.file, w.Line, w.Col, w.Message); !strings.Contains(string(b), line) {
					t.Errorf("errors.log lacks %q:\n%s", line, b)
				}
			}
		})
	}
}
