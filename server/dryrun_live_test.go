package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/dryrun"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// TestDryRunAgreesWithLive sends one table of requests through --dry-run
// and through the live server, on the same configuration, and checks that
// both decide the same: the same backend request, redirect, answer or
// refusal. Each case gives the dry run's options and the bytes a client
// would send for the same request. Each case is run on a plain port and,
// with --https, over TLS on an HTTPS port.
func TestDryRunAgreesWithLive(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, roots := selfSigned(t, dir)
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(www, "page.txt"), []byte("static page"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, nil)
	serverXML := fmt.Sprintf(`<extension findlib-package="ocsiproxy.ext.routes"/>
<extension findlib-package="ocsigenserver.ext.staticmod"/>
<port>127.0.0.1:0</port>
<port protocol="HTTPS">127.0.0.1:0</port>
<ssl><certificate>%[3]s</certificate><privatekey>%[4]s</privatekey></ssl>
<maxrequestbodysize>10</maxrequestbodysize>
<host hostfilter="a.example">
  <site path="admin">
    <if><ip value="10.0.0.0/8"/><then><revproxy suburl="(.*)" dest="%[1]s/admin/\1"/></then><else><forbidden/></else></if>
  </site>
  <site path="static"><static dir="%[2]s"/></site>
  <rewrite regexp="old/(.*)" url="/new/\1"/>
  <redirect suburl="moved" dest="http://a.example/there"/>
  <route path="/api" upstream="%[1]s/v1/"/>
  <revproxy suburl="(.*)" dest="%[1]s/a/\1"/>
</host>
<host hostfilter="b.example"><revproxy suburl="(.*)" dest="%[1]s/b/\1"/></host>`, b.URL, www, certFile, keyFile)
	r := start(t, dir, serverXML)
	cfg, err := xmlconf.Load(r.file)
	if err != nil {
		t.Fatal(err)
	}
	dry, err := dryrun.New(cfg, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dry.Close()

	tests := []struct {
		name string
		dry  dryrun.Request
		raw  string // the request line and fields, without the final CRLF
		body string
	}{
		{"origin form", dryrun.Request{URL: "http://a.example/x?q=1"}, "GET /x?q=1 HTTP/1.1\r\nHost: a.example", ""},
		{"second host", dryrun.Request{URL: "http://b.example/y"}, "GET /y HTTP/1.1\r\nHost: b.example", ""},
		{"absolute form wins over Host", dryrun.Request{URL: "http://a.example/t", Headers: []string{"Host: b.example"}},
			"GET http://a.example/t HTTP/1.1\r\nHost: b.example", ""},
		{"bad header name", dryrun.Request{URL: "http://a.example/t", Headers: []string{"X Bad: v"}}, "GET /t HTTP/1.1\r\nHost: a.example\r\nX Bad: v", ""},
		{"bad header name, trailing space", dryrun.Request{URL: "http://a.example/t", Headers: []string{"X-Bad : v"}}, "GET /t HTTP/1.1\r\nHost: a.example\r\nX-Bad : v", ""},
		{"two Hosts", dryrun.Request{URL: "/t", Headers: []string{"Host: a.example", "Host: b.example"}},
			"GET /t HTTP/1.1\r\nHost: a.example\r\nHost: b.example", ""},
		{"no Host, HTTP/1.0", dryrun.Request{URL: "/t"}, "GET /t HTTP/1.0", ""},
		{"unknown host", dryrun.Request{URL: "http://c.example/t"}, "GET /t HTTP/1.1\r\nHost: c.example", ""},
		{"site forbidden", dryrun.Request{URL: "http://a.example/admin/users"}, "GET /admin/users HTTP/1.1\r\nHost: a.example", ""},
		{"site directory", dryrun.Request{URL: "http://a.example/admin"}, "GET /admin HTTP/1.1\r\nHost: a.example", ""},
		{"rewrite", dryrun.Request{URL: "http://a.example/old/z"}, "GET /old/z HTTP/1.1\r\nHost: a.example", ""},
		{"redirect", dryrun.Request{URL: "http://a.example/moved"}, "GET /moved HTTP/1.1\r\nHost: a.example", ""},
		{"route", dryrun.Request{URL: "http://a.example/api/items"}, "GET /api/items HTTP/1.1\r\nHost: a.example", ""},
		{"static file", dryrun.Request{URL: "http://a.example/static/page.txt"}, "GET /static/page.txt HTTP/1.1\r\nHost: a.example", ""},
		{"path above the root", dryrun.Request{URL: "http://a.example/../x"}, "GET /../x HTTP/1.1\r\nHost: a.example", ""},
		{"body over the limit", dryrun.Request{URL: "http://a.example/up", Method: "POST", Headers: []string{"Content-Length: 100"}},
			"POST /up HTTP/1.1\r\nHost: a.example\r\nContent-Length: 100", strings.Repeat("x", 100)},
		{"body within the limit", dryrun.Request{URL: "http://a.example/up", Method: "POST", Headers: []string{"Content-Length: 5"}},
			"POST /up HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5", "hello"},
		{"Content-Length and Transfer-Encoding", dryrun.Request{URL: "http://a.example/up", Method: "POST", Headers: []string{"Content-Length: 5", "Transfer-Encoding: chunked"}},
			"POST /up HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nTransfer-Encoding: chunked", "0\r\n\r\n"},
		{"spoofed client address", dryrun.Request{URL: "http://a.example/x", Headers: []string{"X-Real-IP: 192.0.2.9"}},
			"GET /x HTTP/1.1\r\nHost: a.example\r\nX-Real-IP: 192.0.2.9", ""},
	}
	ports := []struct {
		name  string
		https bool
		addr  string
		dial  func() (net.Conn, error)
	}{
		{"plain", false, r.addr(0), func() (net.Conn, error) { return net.DialTimeout("tcp", r.addr(0), 5*time.Second) }},
		{"TLS", true, r.addr(1), func() (net.Conn, error) { return dialTLS(r.addr(1), roots) }},
	}
	for _, p := range ports {
		for _, tt := range tests {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				agree(t, b, dry, p.addr, p.https, p.dial, tt.dry, tt.raw, tt.body)
			})
		}
	}
}

// agree runs the request dr through dry and the same request, as the
// bytes raw and body, on a connection made by dial to the live port at
// addr, and checks that both decide the same.
func agree(t *testing.T, b *backend, dry *dryrun.Runner, addr string, https bool, dial func() (net.Conn, error), dr dryrun.Request, raw, body string) {
	_, port, _ := net.SplitHostPort(addr)
	dr.LocalPort, _ = strconv.Atoi(port)
	dr.HTTPS = https
	res, err := dry.Run(dr)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	d := res.Decision
	before := b.count()
	resp, _ := rawOn(t, dial, raw+"\r\nConnection: close\r\n\r\n"+body)
	status, location := resp.StatusCode, resp.Header.Get("Location")
	proxied := b.count() > before
	switch d.Action {
	case "proxy":
		if !proxied {
			t.Fatalf("dry run proxies (%s), the live server answered %d without the backend", d, status)
		}
		got := b.last(t)
		if want := strings.TrimPrefix(d.URL, b.URL); got.Method != d.Method || got.Target != want || got.Host != d.Host {
			t.Errorf("dry run: %s; live backend got %s %s Host: %s", d, got.Method, got.Target, got.Host)
		}
		for k, vv := range d.Backend {
			if g := got.Header.Values(k); strings.Join(g, ",") != strings.Join(vv, ",") {
				t.Errorf("dry run: backend gets %s: %q; live backend got %q", k, vv, g)
			}
		}
	case "redirect":
		if proxied || status != d.Status || location != d.Location {
			t.Errorf("dry run: %s; live: %d Location %q (backend contacted: %v)", d, status, location, proxied)
		}
	default: // "answer", "status", "error"
		if proxied || status != d.Status {
			t.Errorf("dry run: %s; live: %d (backend contacted: %v)", d, status, proxied)
		}
	}
}
