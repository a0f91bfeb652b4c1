//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package pool

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHalfCloseAroundTheLook: the backend shuts its side of an idle
// connection down, and reads on, at the two moments the look at the
// socket before a request could miss it: just before Go's poller resets
// the socket's readiness (a close seen by nothing but the look, which
// must therefore come after the reset), and just after the look, before
// the write (seen by the wait, which the close's readiness ends at once).
// Neither waits for request_timeout. Before the look, the request is not
// written: it goes on another connection, whatever its method. After
// it, the request was written: a GET is sent again, a POST is lost (and
// sent once).
func TestHalfCloseAroundTheLook(t *testing.T) {
	tests := []struct {
		name      string
		afterLook bool
		method    string
		wantErr   bool
		onFirst   int    // requests the first connection received
		retries   uint64 // the stats' Retries
	}{
		{"before the reset, GET", false, "GET", false, 1, 0},
		{"before the reset, POST", false, "POST", false, 1, 0},
		{"after the look, GET", true, "GET", false, 2, 1},
		{"after the look, POST", true, "POST", true, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			received := map[int32]int{}
			b := newRawBackend(t, func(c *rawConn) {
				c.each(func(req *http.Request) bool {
					mu.Lock()
					received[c.n]++
					n := received[c.n]
					mu.Unlock()
					if c.n == 1 && n > 1 {
						return true // shut down for writing: it only reads
					}
					c.write(ok(req.URL.Path))
					return true
				})
			})
			p := testPool(t, func(s *Settings) { s.RequestTimeout = 2 * time.Second })
			if r := roundTrip(p, "GET", b.url("/a"), nil); r.err != nil || r.body != "/a" {
				t.Fatalf("/a: %v", r)
			}
			hooked := 0
			testHookSend = func(c *conn, afterLook bool) {
				if afterLook != tt.afterLook || hooked > 0 {
					return
				}
				hooked++
				b.mu.Lock()
				first := b.conns[0].(*net.TCPConn)
				b.mu.Unlock()
				if err := first.CloseWrite(); err != nil {
					t.Errorf("CloseWrite: %v", err)
				}
				seeClose(t, c)
				// Time for the poller to note the close's readiness,
				// which the reset then clears.
				time.Sleep(20 * time.Millisecond)
			}
			defer func() { testHookSend = nil }()
			r := roundTrip(p, tt.method, b.url("/b"), nil)
			testHookSend = nil
			if hooked != 1 {
				t.Fatalf("hook called %d times, want 1", hooked)
			}
			switch {
			case tt.wantErr && (r.err == nil || isTimeout(r.err)):
				t.Errorf("%s /b: %v, want a lost request (not a timeout)", tt.method, r)
			case !tt.wantErr && (r.err != nil || r.body != "/b"):
				t.Errorf("%s /b: %v, want /b", tt.method, r)
			}
			counts := func() (onFirst, total int) {
				mu.Lock()
				defer mu.Unlock()
				for _, n := range received {
					total += n
				}
				return received[1], total
			}
			wantTotal := 2 // /a, and /b once
			if tt.afterLook && !tt.wantErr {
				wantTotal = 3 // /b on both connections
			}
			// The backend may count a request it was sent after its
			// answer (or the error) came back.
			waitFor(t, "the backend's count", func() bool { _, total := counts(); return total >= wantTotal })
			time.Sleep(10 * time.Millisecond) // anything more lands
			onFirst, total := counts()
			if onFirst != tt.onFirst || total != wantTotal {
				t.Errorf("the first connection received %d requests, %d in all; want %d and %d", onFirst, total, tt.onFirst, wantTotal)
			}
			if st := stats(t, p); st.Retries != tt.retries {
				t.Errorf("retries %d, want %d", st.Retries, tt.retries)
			}
		})
	}
}

// TestClosedAtOnceBounded: a backend that shuts every connection down as
// soon as it accepts it. A POST is looked at before each write (a fresh
// connection, but not idempotent): not written, sent on a new connection,
// and given up after maxRequeues such connections, with an error.
func TestClosedAtOnceBounded(t *testing.T) {
	var requests atomic.Int32
	b := newRawBackend(t, func(c *rawConn) { halfClosed(c, &requests) })
	p := testPool(t, func(s *Settings) { s.RequestTimeout = 2 * time.Second })
	testHookSend = func(c *conn, afterLook bool) {
		if !afterLook {
			seeClose(t, c)
		}
	}
	defer func() { testHookSend = nil }()
	r := roundTrip(p, "POST", b.url("/p"), nil)
	if r.err == nil || isTimeout(r.err) {
		t.Errorf("POST: %v, want an error (not a timeout)", r)
	}
	if n := requests.Load(); n != 0 || b.accepted.Load() != maxRequeues+1 {
		t.Errorf("%d requests received on %d connections; want 0 on %d", n, b.accepted.Load(), maxRequeues+1)
	}
}

// seeClose waits, up to a second, until c's socket shows the backend's
// close.
func seeClose(t *testing.T, c *conn) {
	for i := 0; c.peekSocket() != sockClosed; i++ {
		if i == 1000 {
			t.Errorf("the backend's close did not arrive")
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFreshHalfClosed: the backend shuts a connection down for writing as
// it accepts it, and reads on. The first request on it, a GET (which
// would be sent again after a failure), is not written there either: the
// look before the write sees the close, which came before the poller's
// reset, and the GET goes on a second connection instead of waiting for
// request_timeout.
func TestFreshHalfClosed(t *testing.T) {
	var onFirst atomic.Int32
	b := newRawBackend(t, func(c *rawConn) {
		if c.n == 1 {
			halfClosed(c, &onFirst)
			return
		}
		echoServe(c)
	})
	p := testPool(t, func(s *Settings) { s.RequestTimeout = 2 * time.Second })
	hooked := 0
	testHookSend = func(c *conn, afterLook bool) {
		if !afterLook && hooked == 0 {
			hooked++
			seeClose(t, c)
			time.Sleep(20 * time.Millisecond) // the poller notes the close; the reset clears it
		}
	}
	defer func() { testHookSend = nil }()
	if r := roundTrip(p, "GET", b.url("/a"), nil); r.err != nil || r.body != "/a" {
		t.Errorf("GET /a: %v, want /a", r)
	}
	time.Sleep(10 * time.Millisecond) // a request written on the first connection lands
	if n := onFirst.Load(); n != 0 || b.accepted.Load() != 2 {
		t.Errorf("%d requests on the first connection, %d connections; want 0 and 2", n, b.accepted.Load())
	}
}

// halfClosed serves c as a backend that shut the connection down for
// writing as it accepted it: it counts the requests it reads in n, and
// answers none.
func halfClosed(c *rawConn, n *atomic.Int32) {
	c.Conn.(*net.TCPConn).CloseWrite()
	for {
		if _, _, err := c.request(); err != nil {
			return
		}
		n.Add(1)
	}
}

// TestDueBeforeRawWrite: a call that falls due after its head is built
// but before sendStep writes it (the hook holds the write past the
// deadline), to a backend that reads nothing, with a head too big for
// the socket buffers. The sweeper must give the connection up, which
// ends the write that blocks; cutting only the read (as for a call whose
// head was written) left that write blocked until the write's own slack,
// which the test sets to hang (20 s).
func TestDueBeforeRawWrite(t *testing.T) {
	b := deafBackend(t)
	p := testPool(t, func(s *Settings) { s.CallTimeout = 200 * time.Millisecond })
	smallSendBuffers(p)
	req := mustRequest(t, b.url("/big"))
	u, _ := p.upstreamFor(wireRequest(t, req))
	u.wslack = hang
	req.Header.Set("X-Big", strings.Repeat("x", 4<<20))
	var held atomic.Bool
	testHookSend = func(c *conn, afterLook bool) {
		if afterLook && !held.Swap(true) {
			time.Sleep(200*time.Millisecond + 3*sweepTick) // due, and swept
		}
	}
	defer func() { testHookSend = nil }()
	start := time.Now()
	_, err := p.RoundTrip(req)
	took := time.Since(start)
	var te *timeoutError
	if !errors.As(err, &te) || !strings.HasSuffix(te.msg, "within call_timeout") {
		t.Fatalf("%v, want a call_timeout error", err)
	}
	if !held.Load() {
		t.Fatal("the hook was not called: the head was not written from within the wait")
	}
	if took > 200*time.Millisecond+3*sweepTick+sweepTick+lateSlack {
		t.Errorf("timed out after %v, want at most %v", took, 200*time.Millisecond+4*sweepTick+lateSlack)
	}
}
