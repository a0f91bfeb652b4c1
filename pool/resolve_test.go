package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDNS is a resolver whose answer the test sets, counting lookups.
type fakeDNS struct {
	mu      sync.Mutex
	answer  []string
	err     error
	lookups int
}

func (d *fakeDNS) set(err error, addrs ...string) {
	d.mu.Lock()
	d.answer, d.err = addrs, err
	d.mu.Unlock()
}

func (d *fakeDNS) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lookups
}

func (d *fakeDNS) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lookups++
	if host != "app.test" {
		return nil, fmt.Errorf("fake dns: %s: no such host", host)
	}
	if d.err != nil {
		return nil, d.err
	}
	var out []netip.Addr
	for _, a := range d.answer {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

// resolvePool returns a pool for xml whose resolver is dns and whose
// dialer sends the addresses of route (as "10.0.0.1:8080") to the
// backends on 127.0.0.1 they map to, and refuses the others (the host
// name as written among them: no real DNS).
func resolvePool(t *testing.T, xml string, dns *fakeDNS, route map[string]string) *Pool {
	t.Helper()
	p := groupPool(t, xml)
	p.SetResolver(dns.lookup)
	dial := p.dialer
	p.dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		to, ok := route[addr]
		if !ok {
			return nil, fmt.Errorf("test: no route to %s", addr)
		}
		return dial(ctx, network, to)
	}
	return p
}

// entries returns the group's entries as "addr state in-flight".
func entries(p *Pool) string {
	var out []string
	for _, s := range p.GroupStates()[0].Servers {
		out = append(out, fmt.Sprintf("%s %s %d", s.Addr, s.State, s.InFlight))
	}
	return strings.Join(out, ", ")
}

// TestResolve: a server with resolve= stands for every address of its
// host, re-resolved every period; an address that disappears is drained
// and dropped with its pool once its requests are done; a failed lookup
// keeps the addresses; StopBackground stops the lookups.
func TestResolve(t *testing.T) {
	a, b, c := newHealthBackend(t, "a"), newHealthBackend(t, "b"), newHealthBackend(t, "c")
	dns := &fakeDNS{}
	dns.set(nil, "10.0.0.1", "10.0.0.2")
	p := resolvePool(t, `<upstream name="api"><server url="http://app.test:8080" resolve="20ms"/></upstream>`, dns,
		map[string]string{"10.0.0.1:8080": a.addr(), "10.0.0.2:8080": b.addr(), "10.0.0.3:8080": c.addr()})
	g := p.groups["api"]
	if got := entries(p); got != " up 0" {
		t.Fatalf("before the first lookup: %q (the host name as written)", got)
	}
	p.StartBackground()
	waitFor(t, "the first lookup", func() bool { return entries(p) == "10.0.0.1:8080 up 0, 10.0.0.2:8080 up 0" })
	if n := g.resolving.Load(); n != 1 {
		t.Errorf("%d resolving goroutines, want 1", n)
	}
	get := func() string {
		r := roundTrip(p, "GET", "http://api/x", nil)
		if r.err != nil {
			return r.err.Error()
		}
		return r.body
	}
	var got []string
	for range 4 {
		got = append(got, get())
	}
	if strings.Join(got, " ") != "a b a b" {
		t.Errorf("balanced over the addresses: %q", got)
	}
	// A request in flight on 10.0.0.1 when it disappears.
	req, _ := http.NewRequest("GET", "http://api/held", nil)
	held, err := p.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(held.Body); string(body) != "a" {
		t.Fatalf("held request went to %q", body)
	}
	dns.set(nil, "10.0.0.3", "10.0.0.2", "10.0.0.2")
	waitFor(t, "the new addresses", func() bool {
		return entries(p) == "10.0.0.2:8080 up 0, 10.0.0.3:8080 up 0, 10.0.0.1:8080 draining 1"
	})
	got = nil
	for range 4 {
		got = append(got, get())
	}
	slices.Sort(got)
	if strings.Join(got, " ") != "b b c c" {
		t.Errorf("after 10.0.0.1 left: %q", got)
	}
	held.Body.Close()
	waitFor(t, "10.0.0.1 dropped", func() bool { return entries(p) == "10.0.0.2:8080 up 0, 10.0.0.3:8080 up 0" })
	for _, st := range p.Stats() {
		if st.Upstream == "http://10.0.0.1:8080" {
			t.Errorf("the pool of 10.0.0.1 was not dropped: %+v", st)
		}
	}
	// Failed or empty lookups keep the addresses.
	for _, fail := range []error{errors.New("SERVFAIL"), nil} {
		dns.set(fail)
		n := dns.count()
		waitFor(t, "more lookups", func() bool { return dns.count() >= n+3 })
		if got := entries(p); got != "10.0.0.2:8080 up 0, 10.0.0.3:8080 up 0" {
			t.Errorf("after failed lookups (%v): %q", fail, got)
		}
	}
	// Drained, the server's addresses are all drained, new ones too.
	if err := p.SetDrained("api", "0", true); err != nil {
		t.Fatal(err)
	}
	dns.set(nil, "10.0.0.1", "10.0.0.2", "10.0.0.3")
	waitFor(t, "10.0.0.1 back, drained", func() bool {
		return entries(p) == "10.0.0.1:8080 draining 0, 10.0.0.2:8080 draining 0, 10.0.0.3:8080 draining 0"
	})
	if r := roundTrip(p, "GET", "http://api/x", nil); !errors.As(r.err, new(*UnavailableError)) {
		t.Errorf("all drained: %v", r)
	}
	if err := p.SetDrained("api", "http://app.test:8080", false); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "a" && got != "b" && got != "c" {
		t.Errorf("undrained: %q", got)
	}
	p.StopBackground()
	if n := g.resolving.Load(); n != 0 {
		t.Errorf("%d resolving goroutines after StopBackground", n)
	}
	n := dns.count()
	time.Sleep(100 * time.Millisecond) // five periods
	if dns.count() != n {
		t.Errorf("%d lookups after StopBackground", dns.count()-n)
	}
}

// TestResolveHealth: each address of a resolved server is probed on its
// own; the probes of an address that left stop.
func TestResolveHealth(t *testing.T) {
	a, b := newHealthBackend(t, "a"), newHealthBackend(t, "b")
	dns := &fakeDNS{}
	dns.set(nil, "10.0.0.1", "10.0.0.2")
	p := resolvePool(t, `<upstream name="api"><server url="http://app.test:8080" resolve="20ms"/>
<health path="/healthz" interval="20ms" timeout="500ms" rise="1" fall="1"/></upstream>`, dns,
		map[string]string{"10.0.0.1:8080": a.addr(), "10.0.0.2:8080": b.addr()})
	g := p.groups["api"]
	p.StartBackground()
	waitFor(t, "both addresses probed", func() bool { return a.probes.Load() > 0 && b.probes.Load() > 0 })
	if n := g.probing.Load(); n != 2 {
		t.Errorf("%d probe goroutines for 2 addresses", n)
	}
	b.status.Store(503)
	waitFor(t, "10.0.0.2 down", func() bool { return entries(p) == "10.0.0.1:8080 up 0, 10.0.0.2:8080 down 0" })
	for range 3 {
		if r := roundTrip(p, "GET", "http://api/x", nil); r.err != nil || r.body != "a" {
			t.Errorf("with 10.0.0.2 down: %v", r)
		}
	}
	dns.set(nil, "10.0.0.1")
	waitFor(t, "10.0.0.2 gone", func() bool { return entries(p) == "10.0.0.1:8080 up 0" })
	waitFor(t, "its probes stopped", func() bool { return g.probing.Load() == 1 })
	n := b.probes.Load()
	time.Sleep(100 * time.Millisecond)
	if b.probes.Load() != n {
		t.Errorf("%d probes of an address that left", b.probes.Load()-n)
	}
}

// TestResolveTakesOver: an upstream made on demand for a request to an
// address the group then resolves to is taken over by the group (the
// janitor no longer drops it) and dropped when the address leaves.
func TestResolveTakesOver(t *testing.T) {
	a, b := newHealthBackend(t, "a"), newHealthBackend(t, "b")
	dns := &fakeDNS{}
	dns.set(nil, "10.0.0.1")
	p := resolvePool(t, `<upstream name="api"><server url="http://app.test:8080" resolve="20ms"/></upstream>`, dns,
		map[string]string{"10.0.0.1:8080": a.addr(), "10.0.0.2:8080": b.addr()})
	if r := roundTrip(p, "GET", "http://10.0.0.1:8080/direct", nil); r.err != nil || r.body != "a" {
		t.Fatalf("direct request: %v", r)
	}
	declared := func(key string) (found, declared bool) {
		for _, st := range p.Stats() {
			if st.Upstream == key {
				return true, st.Declared
			}
		}
		return false, false
	}
	if found, decl := declared("http://10.0.0.1:8080"); !found || decl {
		t.Fatalf("made on demand: found %v, declared %v", found, decl)
	}
	p.StartBackground()
	waitFor(t, "the lookup", func() bool { return entries(p) == "10.0.0.1:8080 up 0" })
	if found, decl := declared("http://10.0.0.1:8080"); !found || !decl {
		t.Errorf("taken over: found %v, declared %v", found, decl)
	}
	if r := roundTrip(p, "GET", "http://api/x", nil); r.err != nil || r.body != "a" {
		t.Errorf("through the group: %v", r)
	}
	dns.set(nil, "10.0.0.2")
	waitFor(t, "10.0.0.1 dropped", func() bool {
		found, _ := declared("http://10.0.0.1:8080")
		return entries(p) == "10.0.0.2:8080 up 0" && !found
	})
}
