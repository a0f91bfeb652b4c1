package pool

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// lateSlack is how much later than its deadline plus sweepTick a timeout
// may come in these tests: generous, for a loaded 2-core machine and the
// race detector. The lower bound (never before the deadline) is exact.
const lateSlack = 2 * time.Second

// sweeperOn reports whether p's sweeper goroutine runs, and how many
// times it was started.
func sweeperOn(p *Pool) (bool, int) {
	p.sweepMu.Lock()
	defer p.sweepMu.Unlock()
	return p.sweepOn, p.sweepRuns
}

// watchedCalls is how many calls p's upstreams have watched.
func watchedCalls(p *Pool) int {
	return sumUpstreams(p, func(u *upstream) int { return len(u.watched) })
}

// TestTimeoutBounds: a call_timeout or request_timeout fires no earlier
// than its deadline and at most about one sweep tick later, with the
// error that names it, and nothing stays watched after it.
func TestTimeoutBounds(t *testing.T) {
	release := newSignal()
	b := newHoldingBackend(t, release, nil)
	defer release.fire()
	const short = 150 * time.Millisecond
	tests := []struct {
		name    string
		set     func(s *Settings)
		hold    bool // a streamed response holds the only connection
		path    string
		timeout time.Duration // the one that fires, from RoundTrip
		which   string
	}{
		{"request_timeout", func(s *Settings) { s.RequestTimeout = short }, false, "/never", short, "request_timeout"},
		{"call_timeout, sent", func(s *Settings) { s.CallTimeout = short }, false, "/never", short, "call_timeout"},
		{"call_timeout before request_timeout", func(s *Settings) { s.CallTimeout, s.RequestTimeout = short, 3*short }, false, "/never", short, "call_timeout"},
		{"request_timeout before call_timeout", func(s *Settings) { s.CallTimeout, s.RequestTimeout = 3*short, short }, false, "/never", short, "request_timeout"},
		{"call_timeout while queued", func(s *Settings) { s.Workers, s.CallTimeout, s.HOLTimeout = 1, short, Never }, true, "/queued", short, "call_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPool(t, tt.set)
			if tt.hold {
				// Not timed out: the head comes at once.
				hold := goRoundTrip(p, "GET", b.url("/hold"), nil)
				waitFor(t, "/hold in flight", func() bool { return stats(t, p).InFlight == 1 })
				defer func() {
					p.Close()
					wait(t, hold)
				}()
			}
			start := time.Now()
			r := roundTrip(p, "GET", b.url(tt.path), nil)
			took := time.Since(start)
			var te *timeoutError
			if !errors.As(r.err, &te) || !strings.HasSuffix(te.msg, "within "+tt.which) || !errors.Is(r.err, context.DeadlineExceeded) {
				t.Fatalf("%v, want a %s error", r, tt.which)
			}
			if took < tt.timeout {
				t.Errorf("timed out after %v, before its %v", took, tt.timeout)
			}
			if max := tt.timeout + sweepTick + lateSlack; took > max {
				t.Errorf("timed out after %v, over %v", took, max)
			}
			if n := watchedCalls(p); n != 0 {
				t.Errorf("%d calls still watched", n)
			}
			if st := stats(t, p); st.Timeouts != 1 || st.Abandoned != 1 {
				t.Errorf("timeouts %d, abandoned %d, want 1 and 1", st.Timeouts, st.Abandoned)
			}
		})
	}
}

// TestDeadlinesFromStart: a request that says when the server began to
// serve it (wire.Request.Start) has its call_timeout counted from then,
// not from when the pool reads the clock.
func TestDeadlinesFromStart(t *testing.T) {
	release := newSignal()
	b := newHoldingBackend(t, release, nil)
	defer release.fire()
	const timeout, before = 2 * time.Second, 1800 * time.Millisecond
	p := testPool(t, func(s *Settings) { s.CallTimeout = timeout })
	hr, _ := http.NewRequest("GET", b.url("/never"), nil)
	req := wireRequest(t, hr)
	begun := time.Now()
	req.Start = begun.Add(-before)
	_, err := p.Send(req)
	took := time.Since(begun)
	var te *timeoutError
	if !errors.As(err, &te) || !strings.HasSuffix(te.msg, "within call_timeout") {
		t.Fatalf("%v, want a call_timeout error", err)
	}
	if took < timeout-before {
		t.Errorf("timed out %v after the call, before its deadline (%v after it)", took, timeout-before)
	}
	// Counted from the call instead, it could not end before timeout.
	if took >= timeout {
		t.Errorf("timed out %v after the call: call_timeout counted from the call, not from Start", took)
	}
}

// TestSweeperStops: the sweeper runs only while calls wait with a
// deadline: it stops once the calls are answered, after a timeout, after
// a cancellation, and when the pool is closed with a call waiting; calls
// answered leave nothing watched.
func TestSweeperStops(t *testing.T) {
	b := newRawBackend(t, func(c *rawConn) {
		c.each(func(req *http.Request) bool {
			if req.URL.Path == "/never" {
				io.Copy(io.Discard, c.br)
				return false
			}
			c.write(ok(req.URL.Path))
			return true
		})
	})
	stopped := func(t *testing.T, p *Pool) {
		t.Helper()
		waitFor(t, "the sweeper stopped", func() bool { on, _ := sweeperOn(p); return !on })
	}
	tests := []struct {
		name string
		run  func(t *testing.T, p *Pool)
	}{
		{"answered", func(t *testing.T, p *Pool) {
			for i := 0; i < 20; i++ {
				if r := roundTrip(p, "GET", b.url("/a"), nil); r.err != nil || r.body != "/a" {
					t.Fatalf("%v", r)
				}
			}
			if n := watchedCalls(p); n != 0 {
				t.Errorf("%d calls still watched", n)
			}
		}},
		{"timed out", func(t *testing.T, p *Pool) {
			u, _ := p.upstreamFor(wireRequest(t, mustRequest(t, b.url("/"))))
			u.set.RequestTimeout = 50 * time.Millisecond
			if r := roundTrip(p, "GET", b.url("/never"), nil); !isTimeout(r.err) {
				t.Fatalf("%v, want a timeout", r)
			}
		}},
		{"cancelled", func(t *testing.T, p *Pool) {
			ctx, cancel := context.WithCancel(context.Background())
			ch := make(chan result, 1)
			go func() { ch <- roundTripCtx(ctx, p, "GET", b.url("/never"), nil) }()
			waitFor(t, "the call watched", func() bool { return watchedCalls(p) == 1 })
			cancel()
			if r := wait(t, ch); !errors.Is(r.err, context.Canceled) {
				t.Fatalf("%v, want context.Canceled", r)
			}
			if n := watchedCalls(p); n != 0 {
				t.Errorf("%d calls still watched", n)
			}
		}},
		{"closed", func(t *testing.T, p *Pool) {
			ch := goRoundTrip(p, "GET", b.url("/never"), nil)
			waitFor(t, "the call watched", func() bool { return watchedCalls(p) == 1 })
			if on, _ := sweeperOn(p); !on {
				t.Errorf("a call waits with a deadline, and no sweeper")
			}
			p.Close()
			if r := wait(t, ch); r.err == nil {
				t.Errorf("%v after Close, want an error", r)
			}
			stopped(t, p)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPool(t, nil) // deadlines of `hang`: watched, never due
			tt.run(t, p)
			stopped(t, p)
			if _, runs := sweeperOn(p); runs == 0 {
				t.Errorf("the sweeper never ran")
			}
			if n := watchedCalls(p); n != 0 {
				t.Errorf("%d calls still watched", n)
			}
		})
	}
	t.Run("restarts", func(t *testing.T) {
		p := testPool(t, nil)
		for i := 1; i <= 2; i++ {
			if r := roundTrip(p, "GET", b.url("/a"), nil); r.err != nil {
				t.Fatal(r)
			}
			stopped(t, p)
		}
		// The first call waits for a dial and the second is watched once
		// sent: each started the sweeper, which stopped in between.
		if _, runs := sweeperOn(p); runs != 2 {
			t.Errorf("sweeper started %d times, want 2", runs)
		}
	})
}

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestBlockedWriteTimesOut: a request whose write blocks (a backend that
// reads nothing, small socket buffers, a head of megabytes) still times
// out on time, by the sweeper, although the connection's write deadline
// is much later; its connection is given up.
func TestBlockedWriteTimesOut(t *testing.T) {
	b := deafBackend(t)
	for _, tt := range []struct {
		name  string
		set   func(s *Settings)
		which string
	}{
		{"call_timeout", func(s *Settings) { s.CallTimeout = 200 * time.Millisecond }, "call_timeout"},
		{"request_timeout", func(s *Settings) { s.RequestTimeout = 200 * time.Millisecond }, "request_timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := testPool(t, tt.set)
			smallSendBuffers(p)
			req := mustRequest(t, b.url("/big"))
			u, _ := p.upstreamFor(wireRequest(t, req))
			u.wslack = hang // only the sweeper can end the write in time
			req.Header.Set("X-Big", strings.Repeat("x", 16<<20))
			start := time.Now()
			_, err := p.RoundTrip(req)
			took := time.Since(start)
			var te *timeoutError
			if !errors.As(err, &te) || !strings.HasSuffix(te.msg, "within "+tt.which) {
				t.Fatalf("%v, want a %s error", err, tt.which)
			}
			if took < 200*time.Millisecond || took > 200*time.Millisecond+sweepTick+lateSlack {
				t.Errorf("timed out after %v, want 200ms to %v", took, 200*time.Millisecond+sweepTick+lateSlack)
			}
			waitFor(t, "the connection given up", func() bool { return stats(t, p).Open == 0 })
			if st := stats(t, p); st.Timeouts != 1 || st.Abandoned != 1 {
				t.Errorf("timeouts %d, abandoned %d, want 1 and 1", st.Timeouts, st.Abandoned)
			}
		})
	}
}

// deafBackend returns a backend that accepts connections, with a small
// receive buffer, and reads nothing from them until the test ends: a
// long enough request head blocks its write.
func deafBackend(t *testing.T) *rawBackend {
	done := newSignal()
	b := newRawBackend(t, func(c *rawConn) {
		if tc, ok := c.Conn.(*net.TCPConn); ok {
			tc.SetReadBuffer(4 << 10)
		}
		done.wait(nil) // reads nothing
	})
	t.Cleanup(done.fire) // before the backend's own clean-up (last in, first run)
	return b
}

// smallSendBuffers has p dial connections with a small send buffer.
func smallSendBuffers(p *Pool) {
	d := &net.Dialer{}
	p.dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetWriteBuffer(4 << 10)
		}
		return c, err
	}
}

// deadlineConn records the write deadlines set on it.
type deadlineConn struct {
	net.Conn
	set []time.Time
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.set = append(c.set, t)
	return nil
}

// TestSetWriteDeadline: the write deadline in force is never earlier than
// a request's deadline nor more than wslack later, and moves only when it
// must.
func TestSetWriteDeadline(t *testing.T) {
	const slack = time.Second
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	steps := []struct {
		due  time.Time // zero: no deadline
		move bool
		want time.Time // the deadline in force after
	}{
		{at(0), true, at(slack)},
		{at(0), false, at(slack)},
		{at(300 * time.Millisecond), false, at(slack)},
		{at(slack), false, at(slack)},
		{at(slack + 1), true, at(2*slack + 1)},
		{at(0), true, at(slack)}, // over slack later than needed
		{time.Time{}, true, time.Time{}},
		{time.Time{}, false, time.Time{}},
		{at(5 * time.Second), true, at(5*time.Second + slack)},
	}
	dc := &deadlineConn{}
	c := &conn{u: &upstream{wslack: slack}, nc: dc}
	for i, s := range steps {
		n := len(dc.set)
		c.setWriteDeadline(s.due)
		moved := len(dc.set) > n
		if moved != s.move || !c.wdl.Equal(s.want) || (moved && !dc.set[len(dc.set)-1].Equal(s.want)) {
			t.Errorf("step %d (due %v): moved %v, deadline %v; want %v, %v", i, s.due.Sub(t0), moved, c.wdl.Sub(t0), s.move, s.want.Sub(t0))
		}
		if !s.due.IsZero() && (c.wdl.Before(s.due) || c.wdl.Sub(s.due) > slack) {
			t.Errorf("step %d: deadline %v for a request due at %v", i, c.wdl.Sub(t0), s.due.Sub(t0))
		}
	}
}

func TestWriteSlack(t *testing.T) {
	for _, tt := range []struct {
		call, req, want time.Duration
	}{
		{0, 0, time.Second},
		{30 * time.Second, 30 * time.Second, time.Second},
		{2 * time.Second, 0, 500 * time.Millisecond},
		{30 * time.Second, 100 * time.Millisecond, 25 * time.Millisecond},
	} {
		if got := writeSlack(Settings{CallTimeout: tt.call, RequestTimeout: tt.req}); got != tt.want {
			t.Errorf("writeSlack(call %v, request %v) = %v, want %v", tt.call, tt.req, got, tt.want)
		}
	}
}

// TestWakeSweeper: a watch wakes the sweeper only when it sleeps past the
// time the watch needs it (the zero time: its next tick).
func TestWakeSweeper(t *testing.T) {
	base := time.Unix(1000, 0)
	for _, tc := range []struct {
		name  string
		until int64 // p.sweepUntil
		at    time.Time
		woken bool
	}{
		{"ticking", 0, base, false},
		{"ticking, a reader", 0, time.Time{}, false},
		{"asleep, a deadline after it", base.UnixNano(), base.Add(time.Second), false},
		{"asleep, a deadline at its end", base.UnixNano(), base, false},
		{"asleep, a deadline before it", base.UnixNano(), base.Add(-time.Millisecond), true},
		{"asleep, a reader", base.UnixNano(), time.Time{}, true},
		{"deciding", math.MaxInt64, base.Add(time.Hour), true},
	} {
		p := &Pool{sweepKick: make(chan struct{}, 1)}
		p.sweepUntil.Store(tc.until)
		p.wakeSweeper(tc.at)
		p.wakeSweeper(tc.at) // a second wake does not block
		if woken := len(p.sweepKick) == 1; woken != tc.woken {
			t.Errorf("%s: woken %v, want %v", tc.name, woken, tc.woken)
		}
	}
}

// TestSweeperSleeps: with every watched call's context pushed and no
// deadline near, the sweeper sleeps instead of ticking; a call watched
// then wakes it: one whose client goes away at once gives up within a
// tick (and the slack of a busy machine), one with a near deadline times
// out on time; and a pushed call's deadline ends its sleep.
func TestSweeperSleeps(t *testing.T) {
	defer func(d time.Duration) { maxSweepSleep = d }(maxSweepSleep)
	maxSweepSleep = hang // no wake but a kick or a deadline
	b := newRawBackend(t, func(c *rawConn) {
		if _, _, err := c.request(); err != nil {
			return
		}
		io.Copy(io.Discard, c.br) // never answers
	})
	const timeout = 4 * time.Second
	p := testPool(t, func(s *Settings) { s.CallTimeout = timeout })
	held := make(chan result, 2)
	start := time.Now()
	for range 2 {
		go func() { held <- roundTrip(p, "GET", b.url("/held"), nil) }()
	}
	waitFor(t, "both calls pushed", func() bool { return pushed(p) == 2 })
	waitFor(t, "the sweeper asleep", func() bool { return p.sweepUntil.Load() != 0 && p.sweepUntil.Load() != math.MaxInt64 })
	passes := func() int {
		p.sweepMu.Lock()
		defer p.sweepMu.Unlock()
		return p.sweepPasses
	}
	before := passes()
	time.Sleep(10 * sweepTick)
	if n := passes() - before; n != 0 {
		t.Errorf("the sweeper made %d passes in 10 ticks with nothing to do, want none", n)
	}

	// A new call's client goes away at once.
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan result, 1)
	go func() { gone <- roundTripCtx(ctx, p, "GET", b.url("/gone"), nil) }()
	waitFor(t, "the new call reading", func() bool { return readers(p) == 3 })
	cancel()
	began := time.Now()
	if r := wait(t, gone); !errors.Is(r.err, context.Canceled) {
		t.Errorf("%v, want context.Canceled", r)
	}
	if took := time.Since(began); took > sweepTick+lateSlack {
		t.Errorf("gave up %v after the cancel, want at most %v", took, sweepTick+lateSlack)
	}

	// A new call whose deadline is 300 ms away, once the sweeper sleeps
	// again.
	waitFor(t, "the sweeper asleep", func() bool { return p.sweepUntil.Load() != 0 && p.sweepUntil.Load() != math.MaxInt64 })
	const left = 300 * time.Millisecond
	hr, _ := http.NewRequest("GET", b.url("/near"), nil)
	req := wireRequest(t, hr)
	begun := time.Now()
	req.Start = begun.Add(left - timeout)
	_, err := p.Send(req)
	took := time.Since(begun)
	var te *timeoutError
	if !errors.As(err, &te) || !strings.HasSuffix(te.msg, "within call_timeout") {
		t.Fatalf("%v, want a call_timeout error", err)
	}
	if took < left || took > left+sweepTick+lateSlack {
		t.Errorf("timed out %v after the call, want between %v and %v", took, left, left+sweepTick+lateSlack)
	}

	// The held calls time out at their deadline, which ends the sleep.
	for range 2 {
		r := wait(t, held)
		if !errors.As(r.err, &te) || !strings.HasSuffix(te.msg, "within call_timeout") {
			t.Errorf("%v, want a call_timeout error", r)
		}
	}
	if took := time.Since(start); took < timeout || took > timeout+sweepTick+lateSlack {
		t.Errorf("the held calls timed out after %v, want between %v and %v", took, timeout, timeout+sweepTick+lateSlack)
	}
	if n := watchedCalls(p); n != 0 || readers(p) != 0 || pushed(p) != 0 {
		t.Errorf("%d calls watched, %d reading, %d pushed; want none", n, readers(p), pushed(p))
	}
}
