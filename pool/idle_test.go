package pool

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestIdleStack checks the idle stack that BestWorker takes connections
// from (pushIdle, popIdle): the connection that went idle last is taken
// first; one busy again or kept for another call is dropped from it, and
// the look at every connection still finds an idle one that is not on
// it; a connection that leaves conns leaves the stack too.
func TestIdleStack(t *testing.T) {
	u := idleUpstream(8)
	a, b, c := openIdleTest(u), openIdleTest(u), openIdleTest(u)
	names := map[*conn]string{a: "a", b: "b", c: "c", nil: "none"}
	k, other := &call{}, &call{}
	// take picks a connection for k as dispatch would, and assigns it.
	take := func() string {
		t.Helper()
		got, _, _ := u.pick(k, 0, false)
		if got != nil {
			got.reserved++
		}
		return names[got]
	}
	done := func(x *conn) { // its call answered: idle again
		x.reserved = 0
		u.pushIdle(x)
	}
	stack := func() string {
		var s []string
		for _, x := range u.idle {
			if !x.inIdle {
				t.Errorf("%s in the stack without inIdle", names[x])
			}
			s = append(s, names[x])
		}
		return "[" + strings.Join(s, " ") + "]"
	}

	// All three idle, none on the stack: the look at every connection
	// finds the oldest.
	if got := take(); got != "a" {
		t.Fatalf("first pick %s, want a", got)
	}
	b.reserved, c.reserved = 1, 1
	done(a)
	done(b)
	u.pushIdle(b) // pushed twice, kept once
	if got := stack(); got != "[a b]" {
		t.Fatalf("stack %s, want [a b]", got)
	}
	if got := take(); got != "b" {
		t.Fatalf("pick %s, want b, the latest idle", got)
	}
	if got := take(); got != "a" {
		t.Fatalf("pick %s, want a", got)
	}
	// c goes idle and is pushed, then becomes busy again before a pick
	// (as when its connection was given to a waiting call directly):
	// the pick drops it and finds nothing idle.
	done(c)
	c.reserved = 1
	if got := take(); got != "none" {
		t.Fatalf("pick %s, want none (all busy)", got)
	}
	if got := stack(); got != "[]" {
		t.Fatalf("stack %s, want [] (c dropped)", got)
	}
	// b idle but not on the stack: the look at every connection finds it.
	b.reserved = 0
	if got := take(); got != "b" {
		t.Fatalf("pick %s, want b (found by the look at every connection)", got)
	}
	// a idle on the stack but kept for another call: dropped, not taken.
	done(a)
	a.reservedFor = other
	if got := take(); got != "none" {
		t.Fatalf("pick %s, want none (a kept for another call)", got)
	}
	a.reservedFor = nil
	// A connection removed from conns leaves the stack.
	done(a)
	done(b)
	a.closing, a.broken = true, true
	u.removeConn(a)
	if got := stack(); got != "[b]" || a.inIdle {
		t.Fatalf("stack %s after a was removed (inIdle %v), want [b]", got, a.inIdle)
	}
	if got := take(); got != "b" {
		t.Fatalf("pick %s, want b", got)
	}
}

// TestIdleStackAgrees drives an upstream's connections through random
// changes of state (going idle, busy, kept for another call, closed,
// opened) and checks after each that a best_worker pick finds an idle
// connection exactly when one can take the call (the look at every
// connection's answer), and that the stack holds only connections of
// conns, each once, each marked inIdle.
func TestIdleStackAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	u := idleUpstream(16)
	k, other := &call{}, &call{}
	open := func() { openIdleTest(u) }
	for range 4 {
		open()
	}
	for step := range 20000 {
		if len(u.conns) == 0 {
			open()
		}
		c := u.conns[rng.IntN(len(u.conns))]
		switch rng.IntN(7) {
		case 0, 1: // its call answered: idle again
			c.reserved = 0
			u.pushIdle(c)
		case 2: // given a call by a path that does not pick
			c.reserved = 1
		case 3:
			c.reservedFor = other
		case 4:
			c.reservedFor = nil
		case 5:
			if rng.IntN(4) == 0 {
				c.closing, c.broken = true, true
				u.removeConn(c)
			} else if len(u.conns) < u.set.Workers {
				open()
			}
		case 6: // a pick, as dispatch makes it
			want := false
			for _, x := range u.conns {
				if n, ok := u.load(x, k, false); ok && n == 0 {
					want = true
				}
			}
			got, _, _ := u.pick(k, 0, false)
			if (got != nil) != want {
				t.Fatalf("step %d: pick %v, want an idle connection: %v", step, got != nil, want)
			}
			if got != nil {
				if n, ok := u.load(got, k, false); !ok || n != 0 {
					t.Fatalf("step %d: picked a connection that cannot take the call (%d in flight, %v)", step, n, ok)
				}
				got.reserved = 1
			}
		}
		seen := map[*conn]bool{}
		for _, x := range u.idle {
			if seen[x] || !x.inIdle || !slices.Contains(u.conns, x) {
				t.Fatalf("step %d: stack holds a connection twice, unmarked or closed", step)
			}
			seen[x] = true
		}
	}
}

// idleUpstream returns an upstream with no connection, for the idle
// stack's tests: best_worker, no pipelining, at most workers connections.
func idleUpstream(workers int) *upstream {
	return &upstream{p: &Pool{}, set: Settings{Workers: workers, PipelineDepth: 1, Strategy: BestWorker}}
}

// openIdleTest adds an idle connection (without a socket) to u.
func openIdleTest(u *upstream) *conn {
	c := &conn{u: u}
	u.conns = append(u.conns, c)
	u.p.openConns.Add(1)
	return c
}
