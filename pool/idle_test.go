package pool

import (
	"strings"
	"testing"
)

// TestIdleStack checks the idle stack that BestWorker takes connections
// from (pushIdle, popIdle): the connection that went idle last is taken
// first; one busy again or kept for another call is dropped from it, and
// the look at every connection still finds an idle one that is not on
// it; a connection that leaves conns leaves the stack too.
func TestIdleStack(t *testing.T) {
	p := &Pool{}
	u := &upstream{p: p, set: Settings{Workers: 8, PipelineDepth: 1, Strategy: BestWorker}}
	open := func() *conn {
		c := &conn{u: u}
		u.conns = append(u.conns, c)
		p.openConns.Add(1)
		return c
	}
	a, b, c := open(), open(), open()
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
