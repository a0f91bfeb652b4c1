package server

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/internal/testwait"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// tlsBackend is an https backend whose certificate the proxy trusts
// through SSL_CERT_FILE, set in TestMain before any TLS client exists.
var tlsBackend *httptest.Server

func TestMain(m *testing.M) {
	tlsBackend = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls %s %s host=%s", r.Method, r.RequestURI, r.Host)
	}))
	dir, err := os.MkdirTemp("", "ocsiproxy-test")
	if err != nil {
		panic(err)
	}
	certFile := filepath.Join(dir, "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsBackend.Certificate().Raw})
	if err := os.WriteFile(certFile, pemBytes, 0o600); err != nil {
		panic(err)
	}
	os.Setenv("SSL_CERT_FILE", certFile)
	code := m.Run()
	tlsBackend.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// seen is what the recording backend received.
type seen struct {
	Method, Target, Host, Proto string
	Header                      http.Header
	Body                        string
}

// backend records every request and answers with the handler's response.
type backend struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newBackend(t *testing.T, h http.HandlerFunc) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.reqs = append(b.reqs, seen{r.Method, r.RequestURI, r.Host, r.Proto, r.Header.Clone(), string(body)})
		b.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("X-Backend", "yes")
		fmt.Fprintf(w, "backend %s", r.RequestURI)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) last(t *testing.T) seen {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.reqs) == 0 {
		t.Fatalf("backend received nothing")
	}
	return b.reqs[len(b.reqs)-1]
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.reqs)
}

func (b *backend) hostport() string { return strings.TrimPrefix(b.URL, "http://") }

const extensionLines = `
    <extension findlib-package="ocsigenserver.ext.revproxy"/>
    <extension findlib-package="ocsigenserver.ext.redirectmod"/>
    <extension findlib-package="ocsigenserver.ext.rewritemod"/>
    <extension findlib-package="ocsigenserver.ext.outputfilter"/>
    <extension findlib-package="ocsigenserver.ext.accesscontrol"/>`

// proxy starts ocsiproxy on a loopback port with the given <server>
// children (hosts and options) and returns its address.
func proxy(t *testing.T, serverXML string) string {
	t.Helper()
	src := "<ocsigen><server>\n<port>127.0.0.1:8080</port>" + extensionLines + "\n" + serverXML + "\n</server></ocsigen>\n"
	cfg, err := xmlconf.Parse("test.conf", []byte(src))
	if err != nil {
		t.Fatalf("config:\n%s\nerror: %v", src, err)
	}
	logs, err := accesslog.OpenLogs("", accesslog.Normal, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, logs, engine.Options{})
	if err != nil {
		t.Fatalf("compile:\n%s\nerror: %v", src, err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler)
	ts.Config.MaxHeaderBytes = int(cfg.NetBufferSize)
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// raw sends a raw request and returns the parsed response and body.
func raw(t *testing.T, addr, req string) (*http.Response, string) {
	t.Helper()
	return rawOn(t, func() (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }, req)
}

// rawOn is raw on a connection made by dial.
func rawOn(t *testing.T, dial func() (net.Conn, error), req string) (*http.Response, string) {
	t.Helper()
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response to %q: %v", req, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func get(t *testing.T, addr, target, host string, headers ...string) (*http.Response, string) {
	t.Helper()
	req := "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	return raw(t, addr, req+"\r\n")
}

func TestRules(t *testing.T) {
	b := newBackend(t, nil)
	bhp := b.hostport()
	tests := []struct {
		name       string
		hosts      string
		target     string
		host       string
		wantStatus int
		wantTarget string // what the backend received; "" when it must receive nothing
		wantHost   string
		wantHeader map[string]string // response headers
	}{
		{"suburl backreference",
			`<host><site path="app"><revproxy suburl="(.*)" dest="` + b.URL + `/x/\1"/></site></host>`,
			"/app/foo/bar?a=b", "www.example", 200, "/x/foo/bar?a=b", bhp, nil},
		{"query kept apart from the path",
			`<host><revproxy suburl="foo\?(.*)" dest="` + b.URL + `/q?\1"/></host>`,
			"/foo?a=b", "www.example", 200, "/q?a=b", bhp, nil},
		{"dest without path",
			`<host><revproxy suburl=".*" dest="` + strings.Replace(b.URL, "http", "HTTP", 1) + `"/></host>`,
			"/any", "www.example", 200, "/", bhp, nil},
		{"fullurl",
			`<host><revproxy fullurl="http://([^/:]*)(:\d+)?/(.*)" dest="` + b.URL + `/\1/\3"/></host>`,
			"/p?q", "Www.Example", 200, "/Www.Example/p?q", bhp, nil},
		{"regexp means fullurl",
			`<host><revproxy regexp="http://www\.example(:\d+)?/(.*)" dest="` + b.URL + `/r/\2"/></host>`,
			"/p", "www.example", 200, "/r/p", bhp, nil},
		{"anchored: foo|bar does not match foox",
			`<host><revproxy suburl="foo|bar" dest="` + b.URL + `/hit"/></host>`,
			"/foox", "h", 404, "", "", nil},
		{"first rule wins",
			`<host><revproxy suburl="a.*" dest="` + b.URL + `/first"/><revproxy suburl=".*" dest="` + b.URL + `/second"/></host>`,
			"/abc", "h", 200, "/first", bhp, nil},
		{"keephost sends the client's Host, connects to dest",
			`<host><revproxy suburl=".*" dest="` + b.URL + `/k" keephost="keephost"/></host>`,
			"/", "client.example:8080", 200, "/k", "client.example:8080", nil},
		{"redirect permanent",
			`<host><redirect suburl="old/(.*)" dest="http://new.example/\1"/></host>`,
			"/old/x?y", "h", 301, "", "", map[string]string{"Location": "http://new.example/x?y"}},
		{"redirect temporary",
			`<host><redirect suburl="old" dest="/new" temporary="temporary"/></host>`,
			"/old", "h", 302, "", "", map[string]string{"Location": "/new"}},
		{"redirect regexp tries suburl then fullurl",
			`<host><redirect regexp="http://h(:\d+)?/full" dest="/viafull"/></host>`,
			"/full", "h", 301, "", "", map[string]string{"Location": "/viafull"}},
		{"rewrite restarts",
			`<host><rewrite regexp="old/(.*)" url="/new/\1"/><revproxy suburl="new/(.*)" dest="` + b.URL + `/n/\1"/></host>`,
			"/old/z?k=v", "h", 200, "/n/z?k=v", bhp, nil},
		{"rewrite keeps the query it builds",
			`<host><rewrite regexp="old/(.*)" url="/new/\1?from=old"/><revproxy suburl="(.*)" dest="` + b.URL + `/\1"/></host>`,
			"/old/z", "h", 200, "/new/z?from=old", bhp, nil},
		{"rewrite continue",
			`<host><rewrite regexp="a" url="/b" continue="continue"/><revproxy suburl="b" dest="` + b.URL + `/gotb"/></host>`,
			"/a", "h", 200, "/gotb", bhp, nil},
		{"non-matching rewrite is no answer",
			`<host><rewrite regexp="nomatch" url="/x"/></host>`,
			"/a", "h", 404, "", "", nil},
		{"rewrite loop is 500",
			`<host><rewrite regexp="(.*)" url="/\1"/></host>`,
			"/a", "h", 500, "", "", nil},
		{"outputfilter rewrites Location",
			`<host><redirect suburl="(.*)" dest="http://backend:8080/\1"/><outputfilter header="location" regexp="http://backend:8080/(.*)" dest="https://www.example/\1"/></host>`,
			"/x", "h", 301, "", "", map[string]string{"Location": "https://www.example/x"}},
		{"outputfilter on proxied answer",
			`<host><revproxy suburl=".*" dest="` + b.URL + `/"/><outputfilter header="X-Backend" regexp="y(e)s" dest="n\1"/></host>`,
			"/x", "h", 200, "/", bhp, map[string]string{"X-Backend": "ne"}},
		{"outputfilter set if absent keeps",
			`<host><revproxy suburl=".*" dest="` + b.URL + `/"/><outputfilter header="X-Backend" dest="new"/></host>`,
			"/x", "h", 200, "/", bhp, map[string]string{"X-Backend": "yes"}},
		{"outputfilter replace=true",
			`<host><revproxy suburl=".*" dest="` + b.URL + `/"/><outputfilter header="X-Backend" dest="new" replace="true"/></host>`,
			"/x", "h", 200, "/", bhp, map[string]string{"X-Backend": "new"}},
		{"outputfilter before the answer does nothing",
			`<host><outputfilter header="X-Backend" dest="new" replace="true"/><revproxy suburl=".*" dest="` + b.URL + `/"/></host>`,
			"/x", "h", 200, "/", bhp, map[string]string{"X-Backend": "yes"}},
		{"sethttpcode",
			`<host><revproxy suburl=".*" dest="` + b.URL + `/"/><sethttpcode code="418"/></host>`,
			"/x", "h", 418, "/", bhp, nil},
		{"site directory redirect",
			`<host><site path="app"><revproxy suburl=".*" dest="` + b.URL + `/"/></site></host>`,
			"/app?x=1", "H:8080", 301, "", "", map[string]string{"Location": "http://H:{port}/app/?x=1"}},
		{"nested sites",
			`<host><site path="/a/"><site path="b"><revproxy suburl="(.*)" dest="` + b.URL + `/ab/\1"/></site></site></host>`,
			"/a/b/c", "h", 200, "/ab/c", bhp, nil},
		{"site segments are whole",
			`<host><site path="app"><revproxy suburl=".*" dest="` + b.URL + `/"/></site></host>`,
			"/application/x", "h", 404, "", "", nil},
		{"sub-path keeps encoding",
			`<host><site path="app"><revproxy suburl="(.*)" dest="` + b.URL + `/\1"/></site></host>`,
			"/app/a%20b%2Fc", "h", 200, "/a%20b%2Fc", bhp, nil},
		{"dot segments removed before matching",
			`<host><revproxy suburl="pub/(.*)" dest="` + b.URL + `/p/\1"/></host>`,
			"/admin/../pub/%2e%2E/pub/x", "h", 200, "/p/x", bhp, nil},
		{"hostfilter case-insensitive with wildcard",
			`<host hostfilter="*.Example.ORG"><revproxy suburl=".*" dest="` + b.URL + `/org"/></host>`,
			"/", "WWW.example.org", 200, "/org", bhp, nil},
		{"hostfilter port",
			`<host hostfilter="h:9999"><revproxy suburl=".*" dest="` + b.URL + `/wrongport"/></host><host hostfilter="h:*"><revproxy suburl=".*" dest="` + b.URL + `/anyport"/></host>`,
			"/", "h", 200, "/anyport", bhp, nil},
		{"host fall-through",
			`<host hostfilter="h"><revproxy suburl="only" dest="` + b.URL + `/first"/></host><host hostfilter="*"><revproxy suburl=".*" dest="` + b.URL + `/second"/></host>`,
			"/x", "h", 200, "/second", bhp, nil},
		{"no host matches",
			`<host hostfilter="other"><revproxy suburl=".*" dest="` + b.URL + `/"/></host>`,
			"/x", "h", 404, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := proxy(t, tt.hosts)
			before := b.count()
			resp, _ := get(t, addr, tt.target, tt.host)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			_, port, _ := net.SplitHostPort(addr)
			for k, v := range tt.wantHeader {
				v = strings.ReplaceAll(v, "{port}", port)
				if got := resp.Header.Get(k); got != v {
					t.Errorf("response %s = %q, want %q", k, got, v)
				}
			}
			if tt.wantTarget == "" {
				if b.count() != before {
					t.Errorf("backend received %+v, want nothing", b.last(t))
				}
				return
			}
			if b.count() != before+1 {
				t.Fatalf("backend received %d requests, want 1", b.count()-before)
			}
			got := b.last(t)
			if got.Target != tt.wantTarget || got.Host != tt.wantHost {
				t.Errorf("backend got %s Host: %s, want %s Host: %s", got.Target, got.Host, tt.wantTarget, tt.wantHost)
			}
		})
	}
}

func TestForwardingHeaders(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Set-Cookie"] = []string{"a=1", "b=2"}
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "secret")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Server", "backend/1")
		fmt.Fprint(w, "ok")
	})
	addr := proxy(t, `<host><revproxy suburl=".*" dest="`+b.URL+`/"/></host>`)
	resp, body := get(t, addr, "/", "h",
		"X-Forwarded-For: 6.6.6.6", "X-Forwarded-Proto: https", "Connection: X-Drop", "X-Drop: 1",
		"Proxy-Authorization: Basic eA==", "Te: gzip, trailers", "Upgrade: h2c", "X-Kept: 1")
	if body != "ok" || resp.StatusCode != 200 {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	got := b.last(t)
	// TE is hop-by-hop: the client's value is not passed on; as the
	// client accepts trailers, the backend is told so.
	if v := got.Header["Te"]; len(v) != 1 || v[0] != "trailers" {
		t.Errorf("backend received TE %q, want \"trailers\"", v)
	}
	for _, h := range []string{"X-Drop", "Proxy-Authorization", "Upgrade", "Connection"} {
		if v := got.Header.Get(h); v != "" && !(h == "Connection" && v == "") {
			if h == "Connection" && strings.EqualFold(v, "keep-alive") {
				continue // the backend client's own connection management
			}
			t.Errorf("backend received %s: %q", h, v)
		}
	}
	if got.Header.Get("X-Kept") != "1" {
		t.Errorf("X-Kept not forwarded")
	}
	if v := got.Header.Get("X-Forwarded-For"); v != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want 127.0.0.1 (untrusted client value dropped)", v)
	}
	if v := got.Header.Get("X-Forwarded-Proto"); v != "http" {
		t.Errorf("X-Forwarded-Proto = %q, want http", v)
	}
	if v, ok := got.Header["User-Agent"]; ok {
		t.Errorf("User-Agent invented: %q", v)
	}
	if v := resp.Header.Values("Set-Cookie"); len(v) != 2 {
		t.Errorf("Set-Cookie = %q, want two values", v)
	}
	for _, h := range []string{"X-Hop", "Keep-Alive"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("client received hop-by-hop %s: %q", h, v)
		}
	}
	if v := resp.Header.Get("Server"); v != "backend/1" {
		t.Errorf("Server = %q, want the backend's", v)
	}
	if resp.Header.Get("Date") == "" {
		t.Errorf("no Date header")
	}
}

func TestForwardedForTrust(t *testing.T) {
	b := newBackend(t, nil)
	hosts := `<host>
  <if><ip value="127.0.0.0/8"/><then><allow-forward-for proxies="10.0.0.0/8"/></then></if>
  <if><ip value="198.51.100.0/24"/><then><forbidden/></then></if>
  <revproxy suburl=".*" dest="` + b.URL + `/"/></host>`
	addr := proxy(t, hosts)
	tests := []struct {
		xff        string
		wantStatus int
		wantXFF    string
	}{
		{"", 200, "127.0.0.1"},
		{"203.0.113.9", 200, "203.0.113.9, 127.0.0.1"},
		{"198.51.100.1, 203.0.113.9", 200, "203.0.113.9, 127.0.0.1"}, // left entry forged: ignored
		{"203.0.113.9, 198.51.100.1", 403, ""},                       // right-most is the client
		{"198.51.100.1, 10.1.1.1", 403, ""},                          // through a listed proxy
		{"garbage, 10.1.1.1", 200, "127.0.0.1"},                      // bad entry: header ignored
	}
	for _, tt := range tests {
		var h []string
		if tt.xff != "" {
			h = append(h, "X-Forwarded-For: "+tt.xff)
		}
		before := b.count()
		resp, _ := get(t, addr, "/", "h", h...)
		if resp.StatusCode != tt.wantStatus {
			t.Errorf("XFF %q: status %d, want %d", tt.xff, resp.StatusCode, tt.wantStatus)
			continue
		}
		if tt.wantStatus != 200 {
			if b.count() != before {
				t.Errorf("XFF %q: forbidden request reached the backend", tt.xff)
			}
			continue
		}
		if got := b.last(t).Header.Get("X-Forwarded-For"); got != tt.wantXFF {
			t.Errorf("XFF %q: backend got %q, want %q", tt.xff, got, tt.wantXFF)
		}
	}
}

func TestErrors(t *testing.T) {
	slow := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Second)
	})
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + down.Addr().String()
	down.Close()
	b := newBackend(t, nil)
	addr := proxy(t, `<timeout>1</timeout><netbuffersize>2048</netbuffersize><maxrequestbodysize>1kB</maxrequestbodysize>
<host hostfilter="down"><revproxy suburl=".*" dest="`+downURL+`/"/></host>
<host hostfilter="slow"><revproxy suburl=".*" dest="`+slow.URL+`/"/></host>
<host hostfilter="ok"><revproxy suburl=".*" dest="`+b.URL+`/"/></host>`)
	tests := []struct {
		name string
		req  string
		want int
	}{
		{"backend down", "GET / HTTP/1.1\r\nHost: down\r\nConnection: close\r\n\r\n", 502},
		{"backend too slow", "GET / HTTP/1.1\r\nHost: slow\r\nConnection: close\r\n\r\n", 504},
		{"HTTP/1.1 without Host", "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 400},
		{"path above root", "GET /../x HTTP/1.1\r\nHost: ok\r\nConnection: close\r\n\r\n", 400},
		{"bad escape", "GET /%zz HTTP/1.1\r\nHost: ok\r\nConnection: close\r\n\r\n", 400},
		{"body over the limit", "POST / HTTP/1.1\r\nHost: ok\r\nContent-Length: 2000\r\nConnection: close\r\n\r\n" + strings.Repeat("x", 2000), 413},
		{"chunked body over the limit", "POST / HTTP/1.1\r\nHost: ok\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n7d0\r\n" + strings.Repeat("x", 2000) + "\r\n0\r\n\r\n", 413},
		{"header block too large", "GET / HTTP/1.1\r\nHost: ok\r\nX-Big: " + strings.Repeat("x", 8000) + "\r\nConnection: close\r\n\r\n", 431},
		{"HTTP/1.0 without Host matches every host", "GET / HTTP/1.0\r\n\r\n", 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := raw(t, addr, tt.req)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

// TestLargeUploadStreams sends 100 MB through the proxy and checks that it
// arrives whole while the proxy allocates far less than the body's size.
func TestLargeUploadStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MB upload skipped in -short mode")
	}
	type result struct {
		n   int64
		sum [32]byte
	}
	got := make(chan result, 1)
	b := newBackend(t, nil)
	b.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		var s [32]byte
		copy(s[:], h.Sum(nil))
		got <- result{n, s}
	})
	addr := proxy(t, `<host><revproxy suburl=".*" dest="`+b.URL+`/up"/></host>`)
	const size = 100 << 20
	src := io.LimitReader(zeroPattern{}, size)
	want := sha256.New()
	io.Copy(want, io.LimitReader(zeroPattern{}, size))
	var ms0, ms1 runtimeMem
	ms0.read()
	req, _ := http.NewRequest("POST", "http://"+addr+"/", src) // chunked: unknown length
	req.Host = "h"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ms1.read()
	r := <-got
	if r.n != size || fmt.Sprintf("%x", r.sum) != fmt.Sprintf("%x", want.Sum(nil)) {
		t.Fatalf("backend got %d bytes, want %d, sums differ: %v", r.n, size, r.sum)
	}
	// The client, the proxy and the backend share this process: all three
	// together must stay far below the body size.
	if alloc := ms1.total - ms0.total; alloc > 40<<20 {
		t.Errorf("allocated %d MiB while streaming 100 MiB", alloc>>20)
	}
}

type zeroPattern struct{}

func (zeroPattern) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

func TestHTTPSBackend(t *testing.T) {
	addr := proxy(t, `<host><revproxy suburl="(.*)" dest="`+tlsBackend.URL+`/s/\1"/></host>`)
	resp, body := get(t, addr, "/x", "h")
	want := "tls GET /s/x host=" + strings.TrimPrefix(tlsBackend.URL, "https://")
	if resp.StatusCode != 200 || body != want {
		t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, want)
	}
}

func TestStreamingResponseFlushes(t *testing.T) {
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprint(w, "data: second\n\n")
	})
	defer close(release)
	addr := proxy(t, `<host><revproxy suburl=".*" dest="`+b.URL+`/"/></host>`)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event = %q, %v; want it before the backend ends", line, err)
	}
}

// TestRegexpTimeout checks that a pathological suburl fails its request
// with 500 within the match timeout, and that the server keeps serving.
// (The lookahead keeps the pattern on the backtracking engine: "(a+)+b"
// alone is decided in linear time.)
func TestRegexpTimeout(t *testing.T) {
	b := newBackend(t, nil)
	addr := proxy(t, `<host><site path="redos"><revproxy suburl="(?=a)(a+)+b" dest="`+b.URL+`/never"/></site>
<revproxy suburl="ok" dest="`+b.URL+`/ok"/></host>`)
	start := time.Now()
	resp, body := get(t, addr, "/redos/"+strings.Repeat("a", 40)+"c", "h")
	if resp.StatusCode != 500 {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v; the match timeout is 100ms", d)
	}
	if strings.Contains(body, "aaaa") {
		t.Errorf("error page echoes the input: %q", body)
	}
	if resp, _ := get(t, addr, "/ok", "h"); resp.StatusCode != 200 {
		t.Errorf("after the timeout, /ok got %d", resp.StatusCode)
	}
}

// TestNoPipelineClosesConnection checks that nopipeline="nopipeline" gives
// each request a connection of its own.
func TestNoPipelineClosesConnection(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]bool{}
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
	})
	addr := proxy(t, `<host><revproxy suburl="np" dest="`+b.URL+`/" nopipeline="nopipeline"/><revproxy suburl="p" dest="`+b.URL+`/"/></host>`)
	for i := 0; i < 3; i++ {
		get(t, addr, "/np", "h")
	}
	mu.Lock()
	n := len(conns)
	conns = map[string]bool{}
	mu.Unlock()
	if n != 3 {
		t.Errorf("nopipeline: 3 requests used %d connections, want 3", n)
	}
	for i := 0; i < 3; i++ {
		get(t, addr, "/p", "h")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 1 {
		t.Errorf("keep-alive: 3 requests used %d connections, want 1", len(conns))
	}
}

// TestAccessLog checks the log files in <logdir>.
func TestAccessLog(t *testing.T) {
	b := newBackend(t, nil)
	dir := t.TempDir()
	// A backend that refuses connections: 127.0.0.1:1 (tcpmux) is not
	// served on test machines.
	cfg, err := xmlconf.Parse("log.conf", []byte(`<ocsigen><server><port>8080</port><logdir>`+dir+`</logdir>`+extensionLines+`
<extension findlib-package="ocsiproxy.ext.routes"/>
<host><revproxy suburl="x" dest="`+b.URL+`/"/>
<revproxy suburl="down" dest="http://127.0.0.1:1/"/>
<route path="/routed" upstream="http://127.0.0.1:1/"/></host></server></ocsigen>`))
	if err != nil {
		t.Fatal(err)
	}
	logs, err := accesslog.OpenLogs(cfg.LogDir, accesslog.Normal, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, logs, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler)
	defer ts.Close()
	addr := ts.Listener.Addr().String()
	get(t, addr, "/x", "h", "User-Agent: tester/1", "Referer: http://ref/")
	get(t, addr, "/missing", "h")
	get(t, addr, "/down", "h")
	get(t, addr, "/routed", "h")
	logs.Close()
	data, err := os.ReadFile(filepath.Join(dir, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	ruleLine := strings.Count("<ocsigen>"+extensionLines, "\n") + 3
	want := []string{
		`"GET /x HTTP/1.1" 200 `,
		`"GET /missing HTTP/1.1" 404 %s"-" "-" rule=- `,
		// A failed backend call is logged with the rule that made it.
		fmt.Sprintf(`"GET /down HTTP/1.1" 502 %%s"-" "-" rule=log.conf:%d `, ruleLine+1),
		fmt.Sprintf(`"GET /routed HTTP/1.1" 502 %%s"-" "-" rule=log.conf:%d `, ruleLine+2),
	}
	if len(lines) != len(want) {
		t.Fatalf("access.log has %d lines, want %d:\n%s", len(lines), len(want), data)
	}
	for i, w := range want {
		before, after, _ := strings.Cut(w, "%s")
		ok := strings.Contains(lines[i], before)
		if after != "" {
			rest := lines[i][strings.Index(lines[i], before)+len(before):]
			ok = ok && strings.Contains(rest, after)
		}
		if !strings.HasPrefix(lines[i], "127.0.0.1 - - [") || !ok {
			t.Errorf("line %d = %q, want a combined log line with %q", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[0], fmt.Sprintf(`"http://ref/" "tester/1" rule=log.conf:%d ms=`, ruleLine)) {
		t.Errorf("line 0 = %q, want referer, agent and rule position", lines[0])
	}
	for _, f := range []string{"errors.log", "warnings.log"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestWebSocketTunnel opens a WebSocket-style upgrade through the proxy to
// a backend that echoes every byte, and checks that h2c is never passed on.
func TestWebSocketTunnel(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || !strings.EqualFold(r.Header.Get("Connection"), "upgrade") {
			http.Error(w, "not an upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + r.Header.Get("Sec-WebSocket-Key") + "-ok\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw) // echo
	})
	addr := proxy(t, `<host><revproxy suburl="ws" dest="`+b.URL+`/ws"/><revproxy suburl="h2c" dest="`+b.URL+`/plain"/></host>`)
	c, br, resp := sendRaw(t, addr, "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k1\r\nSec-WebSocket-Version: 13\r\n\r\nearly")
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" || resp.Header.Get("Sec-Websocket-Accept") != "k1-ok" {
		t.Fatalf("handshake answer %d %v", resp.StatusCode, resp.Header)
	}
	io.WriteString(c, " and later")
	want := "early and later"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
		t.Fatalf("echo = %q, %v; want %q", got, err, want)
	}
	if got := b.last(t); got.Header.Get("Sec-Websocket-Key") != "k1" {
		t.Errorf("backend did not get the handshake headers: %v", got.Header)
	}

	// Upgrade: h2c is stripped: the backend sees a plain request.
	resp2, body := get(t, addr, "/h2c", "h", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAAP__")
	if resp2.StatusCode != 400 || !strings.Contains(body, "not an upgrade") {
		t.Errorf("h2c request: %d %q, want the backend's plain answer", resp2.StatusCode, body)
	}
	if got := b.last(t).Header; got.Get("Upgrade") != "" || got.Get("Http2-Settings") != "" {
		t.Errorf("h2c upgrade forwarded: %v", got)
	}
}

func (b *backend) reqsSince(i int) []seen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seen(nil), b.reqs[i:]...)
}

// TestWebSocketTunnelHTTPS checks a tunnel over TLS, HTTP/1.1 chosen by
// ALPN: the switch, the bytes sent with the head, a pause longer than the
// send timeout (a tunnel has none), and the end: the client's
// close_notify reaches the backend as the end of its stream, and the
// backend's end reaches the client as a close_notify.
func TestWebSocketTunnelHTTPS(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw) // echo until the proxy half-closes
	})
	dir := t.TempDir()
	certFile, keyFile, roots := selfSigned(t, dir)
	r := start(t, dir, fmt.Sprintf(`<port protocol="HTTPS">127.0.0.1:0</port><timeout>1</timeout>
<ssl><certificate>%s</certificate><privatekey>%s</privatekey></ssl>
<host><revproxy suburl="ws" dest="%s/ws"/></host>`, certFile, keyFile, b.URL))
	c, err := dialTLS(r.addr(0), roots)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k1\r\nSec-WebSocket-Version: 13\r\n\r\nearly")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("answer %v %v, want 101", resp, err)
	}
	got := make([]byte, len("early"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "early" {
		t.Fatalf("echo %q %v, want \"early\"", got, err)
	}
	time.Sleep(1500 * time.Millisecond) // longer than the send timeout
	io.WriteString(c, " late")
	got = make([]byte, len(" late"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != " late" {
		t.Fatalf("echo after a pause %q %v, want \" late\"", got, err)
	}
	c.(*tls.Conn).CloseWrite()
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the client's end: %q %v, want the end of the stream", rest, err)
	}
}

// sendRaw writes raw on a new connection to addr (closed at the end of
// the test, 5 s to finish) and reads the answer's head; the body and
// whatever follows are left in the reader.
func sendRaw(t *testing.T, addr, raw string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, br, resp
}

// oneShotBackend serves, on a loopback port closed at the end of the test,
// each connection's first request with serve (given the connection and
// a reader past the request head, 10 s to finish), and returns the
// address.
func oneShotBackend(t *testing.T, serve func(c net.Conn, br *bufio.Reader, req *http.Request)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				serve(c, br, req)
			}()
		}
	}()
	return ln.Addr().String()
}

// adminFetch returns a function that makes a request to the admin
// listener at addr and returns the status and body.
// waitUntil calls cond until it reports true, for at most 10 seconds. The
// access line and the metrics of a request are written after its answer
// is sent (engine's answerEnder), so a test that reads them right after
// its response waits for them.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, what, 10*time.Second, cond)
}

func adminFetch(t *testing.T, addr string) func(method, path string) (int, string) {
	return func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
}
