package pool

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/testwait"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

// hang bounds every wait of the tests: nothing is timed, but a bug must
// fail a test rather than hang it.
const hang = 20 * time.Second

// rawBackend is a scripted backend on a loopback port: each accepted
// connection is given, numbered from 1, to serve in its own goroutine.
type rawBackend struct {
	t        *testing.T
	ln       net.Listener
	addr     string
	accepted atomic.Int32
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
}

// rawConn is one connection of a rawBackend.
type rawConn struct {
	net.Conn
	br *bufio.Reader
	n  int32 // 1 for the first connection accepted
}

func newRawBackend(t *testing.T, serve func(c *rawConn)) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{t: t, ln: ln, addr: ln.Addr().String()}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := b.accepted.Add(1)
			c.SetDeadline(time.Now().Add(hang))
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				serve(&rawConn{Conn: c, br: bufio.NewReader(c), n: n})
			}()
		}
	}()
	t.Cleanup(b.close)
	return b
}

func (b *rawBackend) close() {
	b.ln.Close()
	b.mu.Lock()
	for _, c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *rawBackend) url(path string) string { return "http://" + b.addr + path }

// request reads one request and its body.
func (c *rawConn) request() (*http.Request, string, error) {
	req, err := http.ReadRequest(c.br)
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(req.Body)
	return req, string(body), err
}

// each serves the requests of c in turn (their bodies read), until the
// connection ends or serve returns false.
func (c *rawConn) each(serve func(req *http.Request) bool) {
	for {
		req, _, err := c.request()
		if err != nil || !serve(req) {
			return
		}
	}
}

func (c *rawConn) write(s string) {
	io.WriteString(c.Conn, s)
}

// ok is a response with a Content-Length body.
func ok(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// echoServe answers every request with its path, until the connection
// ends.
func echoServe(c *rawConn) {
	c.each(func(req *http.Request) bool {
		c.write(ok(req.URL.Path))
		return true
	})
}

// testPool returns a pool with the default settings changed by set.
func testPool(t *testing.T, set func(s *Settings)) *Pool {
	t.Helper()
	s := DefaultSettings(hang)
	if set != nil {
		set(&s)
	}
	p := New(Config{Defaults: s})
	t.Cleanup(func() { p.Close() })
	return p
}

// result is the outcome of one round trip, body read.
type result struct {
	status int
	body   string
	err    error
}

func (r result) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprintf("%d %q", r.status, r.body)
}

func roundTrip(p *Pool, method, url string, body io.Reader) result {
	return roundTripCtx(context.Background(), p, method, url, body)
}

func roundTripCtx(ctx context.Context, p *Pool, method, url string, body io.Reader) result {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return result{err: err}
	}
	return roundTripReq(p, req)
}

// roundTripReq sends req and reads its answer whole.
func roundTripReq(p *Pool, req *http.Request) result {
	resp, err := p.RoundTrip(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, body: string(b), err: err}
}

// goRoundTrip runs roundTrip in a goroutine.
func goRoundTrip(p *Pool, method, url string, body io.Reader) <-chan result {
	ch := make(chan result, 1)
	go func() { ch <- roundTrip(p, method, url, body) }()
	return ch
}

func wait(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(hang):
		t.Fatalf("no result within %v", hang)
		return result{}
	}
}

// waitFor polls cond until it holds (a bug makes the test fail after
// hang, not hang).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, what, hang, cond)
}

// stats returns the only upstream's stats.
func stats(t *testing.T, p *Pool) Stats {
	t.Helper()
	st := p.Stats()
	switch len(st) {
	case 0:
		return Stats{} // no call made yet
	case 1:
		return st[0]
	}
	t.Errorf("%d upstreams, want 1", len(st))
	return st[0]
}

// signal is a one-shot event between a test and its backend.
type signal chan struct{}

func newSignal() signal { return make(signal) }
func (s signal) fire()  { close(s) }
func (s signal) wait(t *testing.T) {
	if s == nil {
		return
	}
	select {
	case <-s:
	case <-time.After(hang):
		if t != nil {
			t.Errorf("signal not fired within %v", hang)
		}
	}
}

// paths joins request paths for messages.
func paths(reqs []*http.Request) string {
	var p []string
	for _, r := range reqs {
		p = append(p, r.URL.Path)
	}
	return strings.Join(p, " ")
}

// newHoldingBackend answers "/never" with nothing (it reads on until the
// connection ends), "/hold" with a head at once and a chunked body that
// holds the connection until release fires, and any other path at once;
// seen, when not nil, is told each request's path.
func newHoldingBackend(t *testing.T, release signal, seen func(path string)) *rawBackend {
	return newRawBackend(t, func(c *rawConn) {
		c.each(func(req *http.Request) bool {
			if seen != nil {
				seen(req.URL.Path)
			}
			switch req.URL.Path {
			case "/never":
				io.Copy(io.Discard, c.br)
				return false
			case "/hold":
				c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nhold\r\n")
				release.wait(t)
				c.write("0\r\n\r\n")
			default:
				c.write(ok(req.URL.Path))
			}
			return true
		})
	})
}

// wireRequest returns hr in the pool's form ([requestFromHTTP]).
func wireRequest(t testing.TB, hr *http.Request) *wire.Request {
	t.Helper()
	req, err := requestFromHTTP(hr)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
