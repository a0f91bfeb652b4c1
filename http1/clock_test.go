package http1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/testwait"
)

// waitUntil polls cond until it holds, failing after ten seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, what, 10*time.Second, cond)
}

// TestCoarseClockKept: the sweeper a request starts keeps the coarse
// clock, tick after tick, and clears it when it stops.
func TestCoarseClockKept(t *testing.T) {
	s, addr := startH1(t, http.HandlerFunc(echo))
	if _, _, closed := exchange(t, addr, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 1); closed {
		t.Fatal("no answer")
	}
	var first time.Time
	waitUntil(t, "the coarse clock", func() bool {
		t, ok := s.coarseNow()
		first = t
		return ok
	})
	waitUntil(t, "the coarse clock's next tick", func() bool {
		t, ok := s.coarseNow()
		return ok && t.After(first)
	})
	if now, _ := s.coarseNow(); now.After(time.Now()) {
		t.Errorf("coarse clock %v ahead of the time", now.Sub(time.Now()))
	}
	waitUntil(t, "the sweeper to stop and clear the clock", func() bool {
		_, ok := s.coarseNow()
		return !ok
	})
}

// TestBoundIdleCoarse follows the time of a busy connection, answered
// every few milliseconds, with a coarse clock a tick behind at most: after
// every answer its idle bound is within [IdleTimeout, IdleTimeout+slack]
// of the present (never early, at most the slack late), and it is moved
// about once per slack, not per answer.
func TestBoundIdleCoarse(t *testing.T) {
	for _, idle := range []time.Duration{400 * time.Millisecond, 2 * time.Second, 30 * time.Second} {
		s := &Server{}
		nc, peer := net.Pipe()
		defer nc.Close()
		defer peer.Close()
		c := &h1Conn{s: s, o: &Options{IdleTimeout: idle}, nc: nc}
		slack := idleSlack(idle)
		t0 := time.Now()
		span := 4 * idle
		moves := 0
		for d := time.Duration(0); d < span; d += 7 * time.Millisecond {
			now := t0.Add(d)
			tick := t0.Add(d / watchTick * watchTick)
			s.clock.Store(&tick)
			before := c.rdl
			c.boundIdle()
			if !c.rdl.Equal(before) {
				moves++
			}
			if left := c.rdl.Sub(now); left < idle || left > idle+slack {
				t.Fatalf("idle %v, at %v: bound %v ahead, want within [%v, %v]", idle, d, left, idle, idle+slack)
			}
		}
		if most := int(span/(slack-watchTick)) + 2; moves > most {
			t.Errorf("idle %v: bound moved %d times in %v, want at most %d", idle, moves, span, most)
		}
	}
}

// TestBoundIdleRead: without the sweeper, the idle bound is set from the
// time read.
func TestBoundIdleRead(t *testing.T) {
	const idle = 2 * time.Second
	nc, peer := net.Pipe()
	defer nc.Close()
	defer peer.Close()
	c := &h1Conn{s: &Server{}, o: &Options{IdleTimeout: idle}, nc: nc}
	before := time.Now()
	c.boundIdle()
	after := time.Now()
	if c.rdl.Before(before.Add(idle+idleSlack(idle))) || c.rdl.After(after.Add(idle+idleSlack(idle))) {
		t.Errorf("bound %v after the call, want %v", c.rdl.Sub(after), idle+idleSlack(idle))
	}
}

// TestDateAfterSlowAnswer: an answer written long after its request came
// carries the time it is written, whether the sweeper still runs (a
// handler shorter than its linger) or has stopped and cleared the clock.
func TestDateAfterSlowAnswer(t *testing.T) {
	for _, delay := range []time.Duration{sweepLinger * watchTick / 2, sweepLinger*watchTick + 300*time.Millisecond} {
		_, addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(delay)
			echo(w, r)
		}))
		c := dialH1(t, addr)
		if _, err := io.WriteString(c, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		got := time.Now()
		date, err := http.ParseTime(resp.Header.Get("Date"))
		if err != nil {
			t.Fatal(err)
		}
		// Date has a second's resolution and may be a tick late.
		if date.After(got) || got.Sub(date) > time.Second+watchTick+100*time.Millisecond {
			t.Errorf("handler of %v: Date %v before the answer came, want less than a second", delay, got.Sub(date))
		}
	}
}

// TestHTTPDateNotBack: a time a second behind the date last formatted (a
// coarse clock's tick just before the second turned) gives that date.
func TestHTTPDateNotBack(t *testing.T) {
	now := time.Now()
	d := httpDate(now)
	if got := httpDate(now.Add(-time.Second)); got != d {
		t.Errorf("a second back: %s, want %s", got, d)
	}
	if got, want := httpDate(now.Add(time.Second)), now.Add(time.Second).UTC().Format(http.TimeFormat); got != want {
		t.Errorf("a second on: %s, want %s", got, want)
	}
}
