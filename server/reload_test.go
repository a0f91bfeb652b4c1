package server

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// reload writes serverXML as r's configuration and reloads it.
func (r *running) reload(t *testing.T, serverXML string) {
	t.Helper()
	writeConf(t, r.file, serverXML)
	if err := r.srv.Reload(""); err != nil {
		t.Fatalf("reload: %v", err)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// client is one connection to a running server, plain or TLS, on which
// requests are sent one after the other.
type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// dial opens a connection to addr, with TLS (HTTP/1.1) when roots is set.
func dial(t *testing.T, addr string, roots *x509.CertPool) *client {
	t.Helper()
	var c net.Conn
	var err error
	if roots != nil {
		c, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

// do sends a GET of / with the extra header lines and returns the status
// of the answer, its body read; an error when there is none in 10 s.
func (cl *client) do(headers string) (int, error) {
	cl.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(cl.c, "GET / HTTP/1.1\r\nHost: h\r\n"+headers+"\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(cl.br, nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// closedWithin reports whether the server closes the connection, which
// sends nothing more, within d.
func (cl *client) closedWithin(d time.Duration) bool {
	cl.c.SetReadDeadline(time.Now().Add(d))
	_, err := cl.br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// protocols are the two kinds of <port>: the own HTTP/1 server and
// net/http's HTTPS one.
func protocols(t *testing.T, dir string) []struct {
	name, attr, ssl string
	roots           *x509.CertPool
} {
	certFile, keyFile, roots := selfSigned(t, dir)
	return []struct {
		name, attr, ssl string
		roots           *x509.CertPool
	}{
		{"HTTP", "", "", nil},
		{"HTTPS", ` protocol="HTTPS"`, fmt.Sprintf(`<ssl><certificate>%s</certificate><privatekey>%s</privatekey></ssl>`, certFile, keyFile), roots},
	}
}

// TestReloadKeepAliveTimeout: a lower <keepalivetimeout> closes the idle
// connections opened after the reload at the new bound; a connection
// opened before keeps the bound it started with.
func TestReloadKeepAliveTimeout(t *testing.T) {
	dir := t.TempDir()
	for _, p := range protocols(t, dir) {
		t.Run(p.name, func(t *testing.T) {
			conf := func(keepAlive string) string {
				return `<port` + p.attr + `>127.0.0.1:0</port>` + p.ssl + `<keepalivetimeout>` + keepAlive + `</keepalivetimeout>
<host><redirect suburl="(.*)" dest="http://e/\1"/></host>`
			}
			r := start(t, t.TempDir(), conf("60"))
			before := dial(t, r.addr(0), p.roots)
			if code, err := before.do(""); err != nil || code != 301 {
				t.Fatalf("before the reload: %d %v", code, err)
			}
			r.reload(t, conf("1"))
			after := dial(t, r.addr(0), p.roots)
			if code, err := after.do(""); err != nil || code != 301 {
				t.Fatalf("after the reload: %d %v", code, err)
			}
			// The old bound is 60 s: a close within 15 s is the new one.
			if !after.closedWithin(15 * time.Second) {
				t.Fatalf("idle connection opened after the reload to <keepalivetimeout>1 still open after 15 s")
			}
			if code, err := before.do(""); err != nil || code != 301 {
				t.Errorf("connection opened before the reload, idle as long: %d %v; want it kept with its bound of 60 s", code, err)
			}
		})
	}
}

// TestReloadNetBufferSize: after a reload lowers <netbuffersize>, a new
// connection's head that the old bound allowed is refused with 431; a
// connection opened before keeps the old bound.
func TestReloadNetBufferSize(t *testing.T) {
	dir := t.TempDir()
	// 8000 bytes: under 8192 + 4096 of slack, over 1024 + 4096.
	big := "X-Big: " + strings.Repeat("b", 8000) + "\r\n"
	for _, p := range protocols(t, dir) {
		t.Run(p.name, func(t *testing.T) {
			conf := func(size string) string {
				return `<port` + p.attr + `>127.0.0.1:0</port>` + p.ssl + `<netbuffersize>` + size + `</netbuffersize>
<host><redirect suburl="(.*)" dest="http://e/\1"/></host>`
			}
			r := start(t, t.TempDir(), conf("8192"))
			before := dial(t, r.addr(0), p.roots)
			if code, err := before.do(big); err != nil || code != 301 {
				t.Fatalf("an 8000-byte head under <netbuffersize>8192: %d %v, want 301", code, err)
			}
			r.reload(t, conf("1024"))
			if code, err := dial(t, r.addr(0), p.roots).do(big); err != nil || code != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("an 8000-byte head on a new connection after the reload to 1024: %d %v, want 431", code, err)
			}
			if code, err := dial(t, r.addr(0), p.roots).do(""); err != nil || code != 301 {
				t.Errorf("a small head after the reload: %d %v, want 301", code, err)
			}
			if code, err := before.do(big); err != nil || code != 301 {
				t.Errorf("the same head on the connection opened before the reload: %d %v, want 301 (its bound is kept)", code, err)
			}
		})
	}
}

// served reports whether a request written on c is answered within d.
func served(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	n, _ := c.Read(make([]byte, 1))
	return n > 0
}

// TestReloadMaxConnected: a lower <maxconnected> closes none of the
// connections open, and new connections wait until fewer than the new
// bound are open.
func TestReloadMaxConnected(t *testing.T) {
	conf := func(n int) string {
		return fmt.Sprintf(`<maxconnected>%d</maxconnected><port>127.0.0.1:0</port><host><redirect suburl="(.*)" dest="http://e/\1"/></host>`, n)
	}
	r := start(t, t.TempDir(), conf(10))
	a, b := dial(t, r.addr(0), nil), dial(t, r.addr(0), nil)
	for _, c := range []*client{a, b} {
		if code, err := c.do(""); err != nil || code != 301 {
			t.Fatalf("before the reload: %d %v", code, err)
		}
	}
	r.reload(t, conf(1))
	for i, c := range []*client{a, b} {
		if code, err := c.do(""); err != nil || code != 301 {
			t.Errorf("connection %d of 2, open before the reload to 1: %d %v; want it kept", i+1, code, err)
		}
	}
	waiting := dial(t, r.addr(0), nil)
	io.WriteString(waiting.c, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	if served(waiting.c, 300*time.Millisecond) {
		t.Fatalf("new connection served with 2 open and <maxconnected>1")
	}
	a.c.Close()
	if served(waiting.c, 300*time.Millisecond) {
		t.Fatalf("new connection served with 1 open and <maxconnected>1")
	}
	b.c.Close()
	if !served(waiting.c, 10*time.Second) {
		t.Errorf("new connection not served once the old ones closed")
	}
}

// TestReloadMovesPort: a reload that changes a <port> while a client keeps
// connecting to the old one: the new port serves before the old one
// closes (a connection the old port fails finds the new one answering),
// and once the reload returns the old port is closed. The <port> left
// unchanged keeps its listener.
func TestReloadMovesPort(t *testing.T) {
	oldPort, newPort := freePort(t), freePort(t)
	for newPort == oldPort {
		newPort = freePort(t)
	}
	conf := func(p int, v string) string {
		return fmt.Sprintf(`<port>127.0.0.1:%d</port><port>127.0.0.1:0</port><host><redirect suburl="(.*)" dest="http://%s/\1"/></host>`, p, v)
	}
	r := start(t, t.TempDir(), conf(oldPort, "v1"))
	kept := r.addr(1)
	keptConn := dial(t, kept, nil)
	if code, err := keptConn.do(""); err != nil || code != 301 {
		t.Fatalf("unchanged port: %d %v", code, err)
	}
	oldAddr, newAddr := fmt.Sprintf("127.0.0.1:%d", oldPort), fmt.Sprintf("127.0.0.1:%d", newPort)
	// ask sends one request on a new connection and returns its status.
	ask := func(addr string) (int, error) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var ok, failedOld atomic.Int64
	var mu sync.Mutex
	var violations []string
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if code, err := ask(oldAddr); err == nil && code == 301 {
				ok.Add(1)
				continue
			} else if failedOld.Add(1); err == nil {
				mu.Lock()
				violations = append(violations, fmt.Sprintf("old port answered %d", code))
				mu.Unlock()
			}
			// The old port failed: the new one must be serving by now.
			if code, err := ask(newAddr); err != nil || code != 301 {
				mu.Lock()
				violations = append(violations, fmt.Sprintf("old port failed while the new one did not answer: %d %v", code, err))
				mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	for wait := time.Now().Add(10 * time.Second); ok.Load() < 20; time.Sleep(time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("only %d requests answered on the old port in 10 s", ok.Load())
		}
	}
	r.reload(t, conf(newPort, "v2"))
	close(stop)
	<-done
	for _, v := range violations {
		t.Error(v)
	}
	t.Logf("%d requests answered on the old port, %d failed there around the swap", ok.Load(), failedOld.Load())
	if c, err := net.DialTimeout("tcp", oldAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("old port %s still accepts after the reload", oldAddr)
	}
	if code, err := ask(newAddr); err != nil || code != 301 {
		t.Errorf("new port after the reload: %d %v", code, err)
	}
	if got := r.srv.Addrs(); len(got) != 2 || got[0].String() != newAddr || got[1].String() != kept {
		t.Errorf("Addrs() = %v, want [%s %s]", got, newAddr, kept)
	}
	if code, err := keptConn.do(""); err != nil || code != 301 {
		t.Errorf("connection on the unchanged port after the reload: %d %v", code, err)
	}
	resp, _ := get(t, kept, "/x", "h")
	if loc := resp.Header.Get("Location"); loc != "http://v2/x" {
		t.Errorf("unchanged port serves Location %q, want the new configuration's http://v2/x", loc)
	}
}

// TestReloadMovesAdmin: a reload asked on the admin listener that moves
// it is answered there; the new address serves, the old one is closed.
func TestReloadMovesAdmin(t *testing.T) {
	conf := func(listen string) string {
		return `<port>127.0.0.1:0</port>
<extension findlib-package="ocsiproxy.ext.admin"><listen>` + listen + `</listen></extension><host/>`
	}
	r := start(t, t.TempDir(), conf("127.0.0.1:0"))
	oldAdmin := r.srv.AdminAddr().String()
	newAdmin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	writeConf(t, r.file, conf(newAdmin))
	resp, err := http.Post("http://"+oldAdmin+"/api/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("reload on the admin listener: %d %s", resp.StatusCode, body)
	}
	if got := r.srv.AdminAddr().String(); got != newAdmin {
		t.Errorf("AdminAddr() = %s, want %s", got, newAdmin)
	}
	resp, err = http.Get("http://" + newAdmin + "/healthz")
	if err != nil {
		t.Fatalf("new admin listener: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("new admin listener /healthz: %d", resp.StatusCode)
	}
	if c, err := net.DialTimeout("tcp", oldAdmin, time.Second); err == nil {
		c.Close()
		t.Errorf("old admin listener %s still accepts after the reload", oldAdmin)
	}
	// Turned off by a reload.
	r.reload(t, `<port>127.0.0.1:0</port><host/>`)
	if a := r.srv.AdminAddr(); a != nil {
		t.Errorf("AdminAddr() = %v after a reload without the admin extension", a)
	}
	if c, err := net.DialTimeout("tcp", newAdmin, time.Second); err == nil {
		c.Close()
		t.Errorf("admin listener %s still accepts after a reload without it", newAdmin)
	}
}

// TestReloadListenerFails: when a reload cannot open a listener (an
// address the test holds) or load a certificate, it fails with the
// element's position and the reason, and every old listener serves the
// old configuration; the listeners it opened before the failure are
// closed.
func TestReloadListenerFails(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	dir := t.TempDir()
	certFile, keyFile, roots := selfSigned(t, dir)
	ssl := fmt.Sprintf(`<ssl><certificate>%s</certificate><privatekey>%s</privatekey></ssl>`, certFile, keyFile)
	base := `<port>127.0.0.1:0</port>
<port protocol="HTTPS">127.0.0.1:0</port>
<extension findlib-package="ocsiproxy.ext.admin"><listen>127.0.0.1:0</listen></extension>
` + ssl + `
<host><redirect suburl="(.*)" dest="http://%s/\1"/></host>`
	r := start(t, dir, fmt.Sprintf(base, "v1"))
	plain, secure, admin := r.addr(0), r.addr(1), r.srv.AdminAddr().String()
	// line is the line of the first line of serverXML that contains s.
	line := func(serverXML, s string) int {
		head := "<ocsigen><server>\n" + extensionLines + "\n"
		i := strings.Index(serverXML, s)
		return strings.Count(head+serverXML[:i], "\n") + 1
	}
	tests := []struct {
		name      string
		serverXML string
		at        string // what the error's position points at
		want      string
	}{
		{"port", `<port>127.0.0.1:0</port>
<port>127.0.0.1:` + strconv.Itoa(freePort(t)) + `</port>
<port>` + held.Addr().String() + `</port>
<extension findlib-package="ocsiproxy.ext.admin"><listen>127.0.0.1:0</listen></extension>
<host><redirect suburl="(.*)" dest="http://v2/\1"/></host>`, "<port>" + held.Addr().String(), "listening on " + held.Addr().String() + ": "},
		{"admin", `<port>127.0.0.1:0</port>
<port>127.0.0.1:` + strconv.Itoa(freePort(t)) + `</port>
<extension findlib-package="ocsiproxy.ext.admin"><listen>` + held.Addr().String() + `</listen></extension>
<host><redirect suburl="(.*)" dest="http://v2/\1"/></host>`, `<extension findlib-package="ocsiproxy.ext.admin">`, "admin listener on " + held.Addr().String() + ": "},
		{"certificate", `<port>127.0.0.1:0</port>
<port protocol="HTTPS">127.0.0.1:` + strconv.Itoa(freePort(t)) + `</port>
<ssl><certificate>` + filepath.Join(dir, "missing.pem") + `</certificate><privatekey>` + keyFile + `</privatekey></ssl>
<host><redirect suburl="(.*)" dest="http://v2/\1"/></host>`, "<ssl>", "missing.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeConf(t, r.file, tt.serverXML)
			err := r.srv.Reload("")
			if err == nil {
				t.Fatal("reload succeeded")
			}
			pos := fmt.Sprintf("%s:%d:", r.file, line(tt.serverXML, tt.at))
			for _, want := range []string{pos, tt.want, "old configuration and listeners kept"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			if tt.name != "certificate" && !strings.Contains(err.Error(), "address already in use") {
				t.Errorf("error does not say why:\n%v", err)
			}
			// The new port that could be opened was closed again.
			second := tt.serverXML[strings.Index(tt.serverXML, "\n")+1:]
			second = second[strings.Index(second, ">")+1 : strings.Index(second, "</port>")]
			if c, err := net.DialTimeout("tcp", second, time.Second); err == nil {
				c.Close()
				t.Errorf("%s, opened by the failed reload, still accepts", second)
			}
			if got := r.srv.Addrs(); len(got) != 2 || got[0].String() != plain || got[1].String() != secure {
				t.Errorf("Addrs() = %v, want [%s %s]", got, plain, secure)
			}
			if resp, _ := get(t, plain, "/x", "h"); resp.Header.Get("Location") != "http://v1/x" {
				t.Errorf("plain port: Location %q, want the old configuration's", resp.Header.Get("Location"))
			}
			if code, err := dial(t, secure, roots).do(""); err != nil || code != 301 {
				t.Errorf("HTTPS port: %d %v", code, err)
			}
			if a := r.srv.AdminAddr(); a == nil || a.String() != admin {
				t.Errorf("AdminAddr() = %v, want %s", a, admin)
			}
			resp, err := http.Get("http://" + admin + "/healthz")
			if err != nil {
				t.Fatalf("admin listener: %v", err)
			}
			resp.Body.Close()
		})
	}
}

// TestReloadCertificate: HTTPS connections opened after a reload get the
// certificate of the new <ssl>; a connection opened before goes on.
func TestReloadCertificate(t *testing.T) {
	dir1, dir2 := t.TempDir(), t.TempDir()
	cert1, key1, roots1 := selfSigned(t, dir1)
	cert2, key2, roots2 := selfSigned(t, dir2)
	conf := func(cert, key string) string {
		return `<port protocol="HTTPS">127.0.0.1:0</port><ssl><certificate>` + cert + `</certificate><privatekey>` + key + `</privatekey></ssl>
<host><redirect suburl="(.*)" dest="http://e/\1"/></host>`
	}
	r := start(t, t.TempDir(), conf(cert1, key1))
	before := dial(t, r.addr(0), roots1)
	if code, err := before.do(""); err != nil || code != 301 {
		t.Fatalf("before the reload: %d %v", code, err)
	}
	r.reload(t, conf(cert2, key2))
	if code, err := dial(t, r.addr(0), roots2).do(""); err != nil || code != 301 {
		t.Errorf("new connection verified with the new certificate: %d %v", code, err)
	}
	if c, err := tls.Dial("tcp", r.addr(0), &tls.Config{RootCAs: roots1}); err == nil {
		c.Close()
		t.Errorf("new connection still verified with the old certificate")
	}
	if code, err := before.do(""); err != nil || code != 301 {
		t.Errorf("connection opened before the reload: %d %v", code, err)
	}
}

// TestReloadRemovedPortDrains: the connections of a port a reload drops
// end as in a graceful shutdown: a request in flight is answered, then
// the connection closes.
func TestReloadRemovedPortDrains(t *testing.T) {
	started := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			time.Sleep(300 * time.Millisecond)
		}
		io.WriteString(w, "done")
	})
	conf := func(ports string) string {
		return ports + `<host><revproxy suburl="(.*)" dest="` + b.URL + `/\1"/></host>`
	}
	r := start(t, t.TempDir(), conf(`<port>127.0.0.1:0</port><port>127.0.0.1:0</port>`))
	dropped := dial(t, r.addr(1), nil)
	idle := dial(t, r.addr(1), nil)
	if code, err := idle.do(""); err != nil || code != 200 {
		t.Fatalf("before the reload: %d %v", code, err)
	}
	io.WriteString(dropped.c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	<-started
	// Only the first port stays ("127.0.0.1:0" is matched in order).
	r.reload(t, conf(`<port>127.0.0.1:0</port>`))
	if !idle.closedWithin(10 * time.Second) {
		t.Errorf("idle connection of the dropped port still open 10 s after the reload")
	}
	dropped.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(dropped.br, nil)
	if err != nil {
		t.Fatalf("request in flight on the dropped port: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "done" {
		t.Errorf("request in flight on the dropped port: %q", body)
	}
	if !dropped.closedWithin(10 * time.Second) {
		t.Errorf("connection of the dropped port still open after its answer")
	}
	if len(r.srv.Addrs()) != 1 {
		t.Errorf("Addrs() = %v, want one", r.srv.Addrs())
	}
}

// TestConnSlotsLowered: slots acquired before the bound was lowered are
// kept only within the new bound; two holders over it do not wait on each
// other, and the one left waiting gets a slot when one frees.
func TestConnSlotsLowered(t *testing.T) {
	var cs connSlots
	cs.setMax(10)
	quit := make(chan struct{})
	cs.acquire(quit) // a connection already open
	cs.acquire(quit) // two accept loops' slots, taken under the old bound
	cs.acquire(quit)
	cs.setMax(2)
	results := make(chan bool, 2)
	for range 2 {
		go func() { results <- cs.fits(quit) }()
	}
	select {
	case ok := <-results:
		if !ok {
			t.Fatal("fits returned false without quit")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("neither slot taken over the lowered bound was kept: they wait on each other")
	}
	select {
	case <-results:
		t.Fatal("both slots kept with 3 taken and a bound of 2")
	case <-time.After(100 * time.Millisecond):
	}
	cs.release() // the open connection closes
	select {
	case ok := <-results:
		if !ok {
			t.Fatal("fits returned false without quit")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting slot holder did not get a freed slot")
	}
	// Waiting for a slot ends when quit is closed.
	done := make(chan bool, 1)
	go func() { done <- cs.acquire(quit) }()
	close(quit)
	if ok := <-done; ok {
		t.Error("acquire over the bound returned true after quit")
	}
	if cs.open != 2 {
		t.Errorf("%d slots taken, want 2", cs.open)
	}
}

// TestOverlap: which addresses a held listener keeps a reload from
// opening, for the hint of its error.
func TestOverlap(t *testing.T) {
	tests := []struct {
		held, next string
		want       bool
	}{
		{"127.0.0.1:80", ":80", true},
		{"127.0.0.1:80", "0.0.0.0:80", true},
		{"[::]:80", "127.0.0.1:80", true},
		{"127.0.0.1:80", "127.0.0.1:80", true},
		{"127.0.0.1:80", "127.0.0.2:80", false},
		{"127.0.0.1:80", ":81", false},
	}
	for _, tt := range tests {
		a, err := net.ResolveTCPAddr("tcp", tt.held)
		if err != nil {
			t.Fatal(err)
		}
		b, err := net.ResolveTCPAddr("tcp", tt.next)
		if err != nil {
			t.Fatal(err)
		}
		if got := overlap(a, b); got != tt.want {
			t.Errorf("overlap(%s, %s) = %v, want %v", tt.held, tt.next, got, tt.want)
		}
	}
}
