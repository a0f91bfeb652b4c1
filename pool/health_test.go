package pool

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// healthBackend is an httptest backend on 127.0.0.1 whose /healthz
// answers status (which the test flips) and which counts the probes and
// the other requests apart.
type healthBackend struct {
	*httptest.Server
	status          atomic.Int32
	probes, clients atomic.Int32
	probeHost       atomic.Value
}

func newHealthBackend(t *testing.T, name string) *healthBackend {
	b := &healthBackend{}
	b.status.Store(200)
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			b.probes.Add(1)
			b.probeHost.Store(r.Host + " " + r.UserAgent())
			w.WriteHeader(int(b.status.Load()))
			return
		}
		b.clients.Add(1)
		fmt.Fprint(w, name)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *healthBackend) addr() string { return strings.TrimPrefix(b.URL, "http://") }

// TestProbe: what a probe counts as passing.
func TestProbe(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	tests := []struct {
		name   string
		status int32
		attrs  string
		addr   string // default: the backend's
		ok     bool
	}{
		{"200", 200, ``, "", true},
		{"301 in the default 200-399", 301, ``, "", true},
		{"503", 503, ``, "", false},
		{"200 not in status=204", 200, ` status="204"`, "", false},
		{"204 in a list", 204, ` status="200 204-205"`, "", true},
		{"refused", 200, ``, refusedAddr(t), false},
		{"no answer within timeout", 200, ``, strings.TrimPrefix(slow.URL, "http://"), false},
	}
	b := newHealthBackend(t, "a")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.addr
			if addr == "" {
				addr = b.addr()
			}
			p := groupPool(t, `<upstream name="api"><server url="http://`+addr+`"/>
<health path="/healthz" timeout="100ms" host="api.internal"`+tt.attrs+`/></upstream>`)
			b.status.Store(tt.status)
			g := p.groups["api"]
			start := time.Now()
			err := g.probe(context.Background(), g.members[0])
			if (err == nil) != tt.ok {
				t.Errorf("probe: %v, want ok %v", err, tt.ok)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("the probe took %v, its timeout is 100ms", d)
			}
		})
	}
	if got := b.probeHost.Load(); got != "api.internal ocsiproxy-health-check" {
		t.Errorf("probe's Host and User-Agent: %q", got)
	}
	if b.clients.Load() != 0 {
		t.Errorf("probes counted as client requests")
	}
}

// TestActiveHealth: a server is down after fall failed probes, excluded
// as passive health excludes, up after rise good ones; probes go on
// their own connections, not counted in the server's pool; they stop
// when StopBackground (or Close) returns.
func TestActiveHealth(t *testing.T) {
	a, b := newHealthBackend(t, "a"), newHealthBackend(t, "b")
	p := groupPool(t, `<upstream name="api" balance="first">
<server url="http://`+a.addr()+`"/><server url="http://`+b.addr()+`"/>
<health path="/healthz" interval="20ms" timeout="500ms" rise="2" fall="2"/>
</upstream>`)
	g := p.groups["api"]
	state := func() ServerState { return p.GroupStates()[0].Servers[0] }
	get := func() string {
		r := roundTrip(p, "GET", "http://api/x", nil)
		if r.err != nil {
			return r.err.Error()
		}
		return r.body
	}
	if got := get(); got != "a" {
		t.Fatalf("before any probe: %q (servers start up)", got)
	}
	p.StartBackground()
	p.StartBackground() // a second start does nothing
	// The pool counts a probe once its answer is read, after the backend
	// counted it: wait for the pool's counts.
	waitFor(t, "probes", func() bool {
		st := p.GroupStates()[0].Servers
		return st[0].Probes >= 2 && st[1].Probes >= 2
	})
	if n := g.probing.Load(); n != 2 {
		t.Errorf("%d probe goroutines, want 2 (one per server)", n)
	}
	if s := state(); s.State != StateUp || s.ProbeDown || s.Probes < 2 || s.ProbeFailures != 0 {
		t.Errorf("healthy: %+v", s)
	}
	a.status.Store(503)
	waitFor(t, "a down by probes", func() bool { return state().State == StateDown })
	if s := state(); !s.ProbeDown || s.ProbeFailures < 2 || !s.DownUntil.IsZero() {
		t.Errorf("down by probes: %+v", s)
	}
	before := a.clients.Load()
	for i := range 4 {
		if got := get(); got != "b" {
			t.Errorf("request %d with a down: %q", i, got)
		}
	}
	if a.clients.Load() != before {
		t.Errorf("a got client requests while down")
	}
	a.status.Store(200)
	waitFor(t, "a up again", func() bool { return state().State == StateUp })
	if got := get(); got != "a" {
		t.Errorf("a up again: %q", got)
	}
	// Probes are not the pool's traffic: a's pool saw the client
	// requests only.
	for _, st := range p.Stats() {
		if st.Upstream == "http://"+a.addr() && st.Requests != uint64(a.clients.Load()) {
			t.Errorf("a's pool counted %d requests, the client sent %d", st.Requests, a.clients.Load())
		}
	}
	// Everything down by probes: 503 with a Retry-After of rise
	// intervals (at least a second).
	a.status.Store(500)
	b.status.Store(500)
	waitFor(t, "all down", func() bool {
		st := p.GroupStates()[0].Servers
		return st[0].State == StateDown && st[1].State == StateDown
	})
	r := roundTrip(p, "GET", "http://api/x", nil)
	if ue, ok := r.err.(*UnavailableError); !ok || ue.RetryAfter() != time.Second {
		t.Errorf("all down: %v", r.err)
	}
	p.StopBackground()
	if n := g.probing.Load(); n != 0 {
		t.Errorf("%d probe goroutines left after StopBackground", n)
	}
	na, nb := a.probes.Load(), b.probes.Load()
	time.Sleep(100 * time.Millisecond) // five intervals
	if a.probes.Load() != na || b.probes.Load() != nb {
		t.Errorf("probes after StopBackground: %d and %d more", a.probes.Load()-na, b.probes.Load()-nb)
	}
	p.StartBackground() // stopped for good
	if n := g.probing.Load(); n != 0 {
		t.Errorf("StartBackground after StopBackground started %d goroutines", n)
	}
}

// TestActiveHealthClose: Close stops the probes too, even one waiting for
// an answer.
func TestActiveHealthClose(t *testing.T) {
	hang, arrived := make(chan struct{}), make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hang)
	c, errs := parsePoolConfig(t, `<upstream name="api"><server url="`+slow.URL+`"/><health path="/h" interval="10ms" timeout="1h"/></upstream>`)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	p := New(c)
	p.StartBackground()
	g := p.groups["api"]
	select {
	case <-arrived: // a probe waits for its answer
	case <-time.After(10 * time.Second):
		t.Fatal("no probe arrived")
	}
	if n := g.probing.Load(); n != 1 {
		t.Errorf("%d probe goroutines, want 1", n)
	}
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: the probe was not cut short")
	}
	if n := g.probing.Load(); n != 0 {
		t.Errorf("%d probe goroutines after Close", n)
	}
}
