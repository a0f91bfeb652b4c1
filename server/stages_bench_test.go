package server

import (
	"context"
	"fmt"
	"io"
	"math"
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
			h, tr := stubHandler(b, cfg)
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
	last   string // the target of the last request
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
	t.last = r.Target
	r.Settle() // as the pool does: the request's memory serves the next one
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

// stubHandler returns the handler of cfg, with the access log and the
// metrics on, in front of a stub backend.
func stubHandler(tb testing.TB, cfg *xmlconf.Config) (*engine.Handler, *stubTransport) {
	tr := &stubTransport{}
	tree, err := engine.Compile(cfg, &stage.Env{Transport: tr}, engine.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	logs, err := accesslog.OpenLogs("", accesslog.Normal, io.Discard, io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { logs.Close() })
	return engine.NewHandler(tree, cfg, logs, admin.NewMetrics()), tr
}

// rulesHandler returns the handler of a configuration of n rules
// "svcI/(v1|v2)/(.*)" (the bench suite's rules scenario; from
// rules.MinIndexed on, they are indexed), the request that matches the
// last one, and the writer and backend stubs it answers through.
func rulesHandler(tb testing.TB, n int) (*engine.Handler, *http.Request, *stubWriter, *stubTransport) {
	var sb strings.Builder
	sb.WriteString(`<ocsigen><server><port>8080</port><extension findlib-package="ocsigenserver.ext.revproxy"/><host hostfilter="*">`)
	for i := range n {
		fmt.Fprintf(&sb, "<revproxy suburl=\"svc%d/(v1|v2)/(.*)\" dest=\"http://127.0.0.1:18600/\\2\"/>\n", i)
	}
	sb.WriteString(`</host></server></ocsigen>`)
	cfg, err := xmlconf.Parse("rules.conf", []byte(sb.String()))
	if err != nil {
		tb.Fatal(err)
	}
	h, tr := stubHandler(tb, cfg)
	target := fmt.Sprintf("/svc%d/v1/item?id=7", n-1)
	ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://www.example.com"+target, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Host, req.RequestURI, req.RemoteAddr, req.Body = "www.example.com", target, "203.0.113.7:40000", http.NoBody
	w := &stubWriter{h: make(http.Header)}
	h.ServeHTTP(w, req)
	if w.status != 200 || tr.n != 1 || tr.last != "/item?id=7" {
		tb.Fatalf("status %d, %d backend requests, the last for %q", w.status, tr.n, tr.last)
	}
	return h, req, w, tr
}

// BenchmarkStagesRules measures the handler's work for the request that
// matches the last of 10 rules (tried one by one) and of 10,000 (indexed).
func BenchmarkStagesRules(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			h, req, w, _ := rulesHandler(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		})
	}
}

// TestIndexedRulesAllocs checks that indexed rules cost a request no
// allocation that the same rules tried one by one do not: the index makes
// no string the rules do not need (the full URL, without fullurl rules).
func TestIndexedRulesAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts vary under the race detector (sync.Pool drops items at random)")
	}
	allocs := func(n int) float64 {
		h, req, w, _ := rulesHandler(t, n)
		// The fewest of several counts: AllocsPerRun also counts what
		// other goroutines of the test binary allocate meanwhile.
		least := math.Inf(1)
		for range 5 {
			a := testing.AllocsPerRun(200, func() {
				clear(w.h)
				h.ServeHTTP(w, req)
			})
			least = min(least, a)
		}
		return least
	}
	one, indexed := allocs(10), allocs(200)
	if indexed > one {
		t.Errorf("allocations per request: %v with 200 indexed rules, %v with 10 rules tried one by one", indexed, one)
	}
}
