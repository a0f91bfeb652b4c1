package http1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/idlepoll"
)

// idleConns opens n connections to addr, has each answered once, and
// returns them with their readers.
func idleConns(t *testing.T, addr string, n int) ([]net.Conn, []*bufio.Reader) {
	t.Helper()
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range n {
		conns[i] = dialH1(t, addr)
		readers[i] = bufio.NewReader(conns[i])
		getOne(t, conns[i], readers[i])
	}
	return conns, readers
}

// getOne sends a GET on c and reads its answer.
func getOne(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// waitingIs waits up to 2 s for the server's poller to hold n waits.
func waitingIs(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		got := 0
		if p := s.poller.Load(); p != nil {
			got = p.Waiting()
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections waiting in the poller, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closedByServer reports whether the server has closed c (its read ends
// within d).
func closedByServer(c net.Conn, br *bufio.Reader, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := br.ReadByte()
	return err == io.EOF
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
}

func skipWithoutPoller(t *testing.T) {
	if !idlepoll.Supported() {
		t.Skip("http1: idle connections wait on goroutines on this system")
	}
}

// TestIdleWaitsInPoller: connections that have answered wait in the
// poller, with no goroutine each, and are served again from there.
func TestIdleWaitsInPoller(t *testing.T) {
	skipWithoutPoller(t)
	s, addr := startH1(t, okHandler())
	const n = 100
	before := runtime.NumGoroutine()
	conns, readers := idleConns(t, addr, n)
	waitingIs(t, s, n)
	// The poller's goroutine and the sweeper's, give or take; a
	// goroutine per connection would be 100 more.
	if added := runtime.NumGoroutine() - before; added > 10 {
		t.Errorf("%d goroutines more with %d idle connections", added, n)
	}
	for i := range n {
		getOne(t, conns[i], readers[i])
	}
	waitingIs(t, s, n)
	// A client that goes away: its wait ends, the connection closes.
	conns[0].Close()
	waitingIs(t, s, n-1)
	deadline := time.Now().Add(2 * time.Second)
	for {
		s.mu.Lock()
		left := len(s.conns)
		s.mu.Unlock()
		if left == n-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections left, want %d", left, n-1)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIdleShortBoundOnGoroutine: an idle bound whose slack is shorter
// than the poller's deadlines can follow keeps the goroutine wait.
func TestIdleShortBoundOnGoroutine(t *testing.T) {
	skipWithoutPoller(t)
	s, addr := startH1(t, okHandler(), func(o *Options) { o.IdleTimeout = 3 * time.Second })
	conns, readers := idleConns(t, addr, 3)
	time.Sleep(50 * time.Millisecond)
	waitingIs(t, s, 0)
	getOne(t, conns[1], readers[1])
}

// TestIdleBoundInPoller: the poller closes a connection idle for its
// bound: not before IdleTimeout, not after IdleTimeout and its slack
// (and a scan's margin).
func TestIdleBoundInPoller(t *testing.T) {
	skipWithoutPoller(t)
	t.Parallel()
	const idle = 4 * time.Second
	s, addr := startH1(t, okHandler(), func(o *Options) { o.IdleTimeout = idle })
	conns, readers := idleConns(t, addr, 1)
	start := time.Now()
	waitingIs(t, s, 1)
	if !closedByServer(conns[0], readers[0], idle+idleSlack(idle)+time.Second) {
		t.Fatalf("still open %v after its answer", time.Since(start))
	}
	if at := time.Since(start); at < idle {
		t.Errorf("closed after %v, before IdleTimeout %v", at, idle)
	}
	waitingIs(t, s, 0)
}

// TestShutdownClosesPolled: a graceful shutdown takes the idle
// connections from the poller and closes them at once.
func TestShutdownClosesPolled(t *testing.T) {
	skipWithoutPoller(t)
	s, addr := startH1(t, okHandler())
	conns, readers := idleConns(t, addr, 20)
	waitingIs(t, s, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i := range conns {
		if !closedByServer(conns[i], readers[i], time.Second) {
			t.Fatalf("connection %d still open after Shutdown", i)
		}
	}
	if _, err := s.poller.Load().Add(0, nil, time.Time{}, false); err != idlepoll.ErrClosed {
		t.Errorf("poller after Shutdown: Add gave %v, want ErrClosed", err)
	}
}

// TestClosePolled: Close ends the idle connections, and Wait sees them
// all gone.
func TestClosePolled(t *testing.T) {
	skipWithoutPoller(t)
	s, addr := startH1(t, okHandler())
	conns, readers := idleConns(t, addr, 20)
	waitingIs(t, s, 20)
	s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.Wait(ctx)
	if ctx.Err() != nil {
		t.Fatal("Wait: connections left after Close")
	}
	for i := range conns {
		if !closedByServer(conns[i], readers[i], time.Second) {
			t.Fatalf("connection %d still open after Close", i)
		}
	}
}

// TestDrainPolled: a drain closes the idle connections of the retired
// listener that wait in the poller, and leaves the others.
func TestDrainPolled(t *testing.T) {
	skipWithoutPoller(t)
	s := NewServer(okHandler(), Options{HeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, MaxHeaderBytes: 4096}, nil)
	t.Cleanup(s.Close)
	retired := new(atomic.Bool)
	serveRetired := func() (net.Conn, *bufio.Reader) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		c := dialH1(t, l.Addr().String())
		nc, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		s.ServeConn(nc, retired)
		br := bufio.NewReader(c)
		getOne(t, c, br)
		return c, br
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	kept, keptBR := idleConns(t, l.Addr().String(), 2)
	gone, goneBR := serveRetired()
	waitingIs(t, s, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.Drain(ctx, retired)
	if ctx.Err() != nil {
		t.Fatal("Drain did not end before its context")
	}
	if !closedByServer(gone, goneBR, time.Second) {
		t.Fatal("the retired connection is still open after Drain")
	}
	waitingIs(t, s, 2)
	getOne(t, kept[0], keptBR[0])
}
