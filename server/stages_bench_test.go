package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/admin"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// BenchmarkStages measures the per-request work of the handler alone:
// engine.NewState, the compiled tree (hosts, sites, access control, rules,
// filters), the backend request built by forward, the answer copied to
// the client, the access log line and the metrics. The client side and
// the backend are stubs that allocate nothing per request, so that B/op
// and allocs/op are the handler's, without sockets, net/http's server or
// the backend pool.
func BenchmarkStages(b *testing.B) {
	cfg, err := xmlconf.Load("../testdata/migration.conf")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name, host, target, peer string
		hdr                      http.Header
	}{
		// The catch-all <revproxy suburl="(.*)"> of the first host, after
		// a <redirect fullurl=> and the sites that do not match.
		{"catchall", "www.example.com", "/index.html?x=1", "203.0.113.7:40000", nil},
		// A trusted load balancer: <allow-forward-for>, a rewrite with
		// continue, an output filter on Location.
		{"api", "www.example.com", "/api/v1/users/42?fields=name", "10.0.0.3:40000",
			http.Header{"X-Forwarded-For": {"198.51.100.4"}, "X-Forwarded-Proto": {"https"}}},
		// A fullurl regexp run by regexp2 with three groups.
		{"fullurl", "shop.example.org", "/cart/items?id=7", "203.0.113.7:40000", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tr := &stubTransport{}
			tree, err := engine.Compile(cfg, &stage.Env{Transport: tr}, engine.Options{})
			if err != nil {
				b.Fatal(err)
			}
			logs, err := accesslog.OpenLogs("", accesslog.Normal, io.Discard, io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			defer logs.Close()
			h := engine.NewHandler(tree, cfg, logs, admin.NewMetrics())
			hdr := http.Header{"User-Agent": {"bench/1.0"}, "Accept": {"*/*"}, "Referer": {"https://www.example.com/"}}
			for k, v := range bc.hdr {
				hdr[k] = v
			}
			ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80})
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+bc.host+bc.target, nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Host, req.RequestURI, req.RemoteAddr, req.Header, req.Body = bc.host, bc.target, bc.peer, hdr, http.NoBody
			w := &stubWriter{h: make(http.Header)}
			h.ServeHTTP(w, req)
			if w.status != 200 || tr.n != 1 {
				b.Fatalf("status %d, %d backend requests", w.status, tr.n)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		})
	}
}

// stubTransport answers every request with the same small response,
// reused: only one request is in flight at a time.
type stubTransport struct {
	resp   wire.Response
	fields [8]wire.Field
	body   stubBody
	n      int
}

var stubHeader = []wire.Field{
	{Name: "Content-Type", Value: "text/html; charset=utf-8"},
	{Name: "Content-Length", Value: "64"},
	{Name: "Connection", Value: "keep-alive"},
	{Name: "Location", Value: "http://10.1.0.6:8000/users/42"},
	{Name: "Date", Value: "Sun, 22 Nov 2026 10:00:00 GMT"},
}

func (t *stubTransport) Send(r *wire.Request) (*wire.Response, error) {
	t.n++
	t.resp.Header = wire.MakeHeader(t.fields[:])
	for _, f := range stubHeader {
		t.resp.Header.AddCanonical(f.Name, f.Value)
	}
	t.body.n = 64
	t.resp.StatusCode, t.resp.Status, t.resp.ProtoMinor = 200, "200 OK", 1
	t.resp.ContentLength, t.resp.Body = 64, &t.body
	return &t.resp, nil
}

type stubBody struct{ n int }

var stubText = strings.Repeat("x", 64)

func (b *stubBody) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, io.EOF
	}
	n := min(len(p), b.n)
	copy(p[:n], stubText)
	b.n -= n
	return n, nil
}

func (b *stubBody) Close() error { return nil }

// stubWriter is a ResponseWriter that keeps the status and discards the
// body.
type stubWriter struct {
	h      http.Header
	status int
}

func (w *stubWriter) Header() http.Header         { return w.h }
func (w *stubWriter) WriteHeader(status int)      { w.status = status }
func (w *stubWriter) Write(p []byte) (int, error) { return len(p), nil }
