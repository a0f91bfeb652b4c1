package pool

import (
	"net/http"
	"testing"
	"time"
)

// TestCoarseClockNeverGoesBack: the coarse clock takes the latest of the
// times it is given, whatever their order.
func TestCoarseClockNeverGoesBack(t *testing.T) {
	p := New(Config{})
	defer p.Close()
	t0 := time.Now()
	p.tick(t0.Add(time.Second))
	p.tick(t0)
	if got := p.epoch.Add(time.Duration(p.coarse.Load())); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("coarse clock at %v, want %v", got.Sub(t0), time.Second)
	}
}

// noDeadlines leaves the calls without deadlines: the sweeper does not
// run, and the janitor alone advances the coarse clock.
func noDeadlines(s *Settings) { s.CallTimeout, s.RequestTimeout = 0, 0 }

// TestCoarseClockRefreshed: while a connection is open, the janitor
// advances the coarse clock every janitorTick.
func TestCoarseClockRefreshed(t *testing.T) {
	b := newRawBackend(t, echoServe)
	p := testPool(t, noDeadlines)
	if r := roundTrip(p, "GET", b.url("/a"), nil); r.err != nil {
		t.Fatal(r)
	}
	c0 := p.coarse.Load()
	waitFor(t, "a janitor tick", func() bool { return p.coarse.Load() > c0 })
	if d := time.Since(p.epoch.Add(time.Duration(p.coarse.Load()))); d < 0 || d > janitorTick {
		t.Errorf("coarse clock %v behind, want within [0, %v]", d, janitorTick)
	}
}

// idleSince returns the idle time recorded by the only connection of p's
// only upstream.
func idleSince(t *testing.T, p *Pool) time.Time {
	t.Helper()
	ups := p.upstreams()
	if len(ups) != 1 {
		t.Fatalf("%d upstreams, want 1", len(ups))
	}
	u := ups[0]
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.conns) != 1 {
		t.Fatalf("%d connections, want 1", len(u.conns))
	}
	return u.conns[0].idleSince
}

// TestIdleSinceTolerance: the time a connection records when it goes idle
// is no later than that moment and at most janitorTick earlier, so that
// the janitor closes it after between IdleTimeout-janitorTick and
// IdleTimeout+janitorTick of idleness (clock.go).
func TestIdleSinceTolerance(t *testing.T) {
	b := newRawBackend(t, echoServe)
	p := testPool(t, func(s *Settings) { s.IdleTimeout = time.Minute })
	roundTrip(p, "GET", b.url("/a"), nil) // opens the connection
	before := time.Now()
	if r := roundTrip(p, "GET", b.url("/b"), nil); r.err != nil {
		t.Fatal(r)
	}
	after := time.Now()
	since := idleSince(t, p)
	if since.After(after) || since.Before(before.Add(-janitorTick)) {
		t.Fatalf("idle since %v after the call's start, want within [%v, %v]", since.Sub(before), -janitorTick, after.Sub(before))
	}
	p.reap(before.Add(time.Minute-janitorTick-time.Millisecond), false)
	if stats(t, p).Open != 1 {
		t.Fatalf("closed after less than IdleTimeout-janitorTick")
	}
	p.reap(after.Add(time.Minute), false)
	waitFor(t, "the idle connection closed", func() bool { return stats(t, p).Open == 0 })
}

// TestIdleSinceAfterSlowCall: a connection that goes idle after a call
// longer than a janitor tick (with no deadline: the sweeper does not run)
// does not record the call's start, which the janitor would take for a
// long idleness, but a time the janitor's ticks brought forward
// meanwhile.
func TestIdleSinceAfterSlowCall(t *testing.T) {
	slow := janitorTick + janitorTick/4
	b := newRawBackend(t, func(c *rawConn) {
		c.each(func(req *http.Request) bool {
			time.Sleep(slow)
			c.write(ok(req.URL.Path))
			return true
		})
	})
	p := testPool(t, func(s *Settings) { noDeadlines(s); s.IdleTimeout = slow })
	start := time.Now()
	if r := roundTrip(p, "GET", b.url("/a"), nil); r.err != nil {
		t.Fatal(r)
	}
	end := time.Now()
	since := idleSince(t, p)
	if !since.After(start) || since.After(end) || since.Before(end.Add(-janitorTick)) {
		t.Fatalf("idle since %v after the call's start, want within (0, %v] and at most %v before its end", since.Sub(start), end.Sub(start), janitorTick)
	}
	p.reap(start.Add(slow), false)
	if stats(t, p).Open != 1 {
		t.Fatalf("closed as if idle since the call's start")
	}
}
