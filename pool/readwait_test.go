package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// steps are the one-shot events between a case of TestReaderWaits and its
// backend.
type steps struct {
	next signal // test -> backend: go on
	sent signal // backend -> test: written
}

// pattern is n bytes that a shifted or truncated copy does not match.
func pattern(n int) string {
	var sb strings.Builder
	for i := 0; sb.Len() < n; i++ {
		fmt.Fprintf(&sb, "%07d\n", i)
	}
	return sb.String()[:n]
}

// TestReaderWaits: the reads of a backend connection that find the socket
// empty and wait, and what ends the wait: an answer that comes late, bytes
// that came while nobody was reading, the backend closing or resetting the
// connection, the caller going away, the pool closing, a drain deadline;
// and answers larger than the read buffer, read in full pieces. The
// outcomes are checked, never the time taken; the short sleeps only make
// the waits likelier.
func TestReaderWaits(t *testing.T) {
	big := pattern(300 << 10) // streamed (over MaxBuffered), in pieces over readBufferSize
	mid := pattern(60 << 10)  // buffered (under MaxBuffered), over readBufferSize
	tests := []struct {
		name  string
		serve func(c *rawConn, s steps)
		check func(t *testing.T, p *Pool, b *rawBackend, s steps)
	}{
		{
			name: "late answers",
			serve: func(c *rawConn, s steps) {
				c.each(func(req *http.Request) bool {
					time.Sleep(20 * time.Millisecond)
					c.write(ok(req.URL.Path))
					return true
				})
			},
			check: func(t *testing.T, p *Pool, b *rawBackend, s steps) {
				for _, path := range []string{"/a", "/b", "/c"} {
					if r := roundTrip(p, "GET", b.url(path), nil); r.err != nil || r.body != path {
						t.Errorf("%s: %v", path, r)
					}
				}
				if n := b.accepted.Load(); n != 1 {
					t.Errorf("%d connections, want 1", n)
				}
			},
		},
		{
			// The rest of a body is in the socket before its reader
			// reads again: the read must find it, not wait for more.
			name: "bytes waiting before the read",
			serve: func(c *rawConn, s steps) {
				if c.n > 1 {
					echoServe(c)
					return
				}
				if _, _, err := c.request(); err != nil {
					return
				}
				c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
				s.next.wait(nil)
				c.write("6\r\nsecond\r\n0\r\n\r\n")
				s.sent.fire()
				echoServe(c)
			},
			check: func(t *testing.T, p *Pool, b *rawBackend, s steps) {
				resp := openBody(t, p, context.Background(), b.url("/chunks"), "first")
				s.next.fire()
				s.sent.wait(t)
				time.Sleep(20 * time.Millisecond) // the bytes land; nobody reads
				rest, err := readAllBounded(t, resp.Body)
				resp.Body.Close()
				if err != nil || rest != "second" {
					t.Fatalf("rest of the body: %q %v", rest, err)
				}
				if r := roundTrip(p, "GET", b.url("/again"), nil); r.err != nil || r.body != "/again" {
					t.Errorf("/again: %v", r)
				}
				if n := b.accepted.Load(); n != 1 {
					t.Errorf("%d connections, want 1", n)
				}
			},
		},
		{
			name: "closed after an answer",
			serve: func(c *rawConn, s steps) {
				req, _, err := c.request()
				if err != nil {
					return
				}
				c.write(ok(req.URL.Path))
				if c.n > 1 {
					echoServe(c)
				}
			},
			check: func(t *testing.T, p *Pool, b *rawBackend, s steps) {
				if r := roundTrip(p, "GET", b.url("/a"), nil); r.err != nil || r.body != "/a" {
					t.Fatalf("/a: %v", r)
				}
				if readsItself(p) {
					// Nobody reads an idle connection: the close is seen
					// by the next request, which is sent again.
					time.Sleep(20 * time.Millisecond) // the close lands
				} else {
					waitFor(t, "the idle connection seen closed", func() bool { return stats(t, p).Open == 0 })
				}
				if r := roundTrip(p, "GET", b.url("/b"), nil); r.err != nil || r.body != "/b" {
					t.Errorf("/b: %v", r)
				}
				if n := b.accepted.Load(); n != 2 {
					t.Errorf("%d connections, want 2", n)
				}
			},
		},
		{
			name: "closed mid-body",
			serve: func(c *rawConn, s steps) {
				if _, _, err := c.request(); err != nil {
					return
				}
				c.write("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n0123456789")
				s.next.wait(nil)
			},
			check: func(t *testing.T, p *Pool, b *rawBackend, s steps) {
				resp := openBody(t, p, context.Background(), b.url("/cut"), "0123456789")
				s.next.fire()
				_, err := readAllBounded(t, resp.Body)
				resp.Body.Close()
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("body read: %v, want unexpected EOF", err)
				}
				waitFor(t, "the connection closed", func() bool { return stats(t, p).Open == 0 })
			},
		},
		{
			name: "reset mid-body",
			serve: func(c *rawConn, s steps) {
				if _, _, err := c.request(); err != nil {
					return
				}
				c.write("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n0123456789")
				s.next.wait(nil)
				c.Conn.(*net.TCPConn).SetLinger(0) // close sends RST
			},
			check: func(t *testing.T, p *Pool, b *rawBackend, s steps) {
				resp := openBody(t, p, context.Background(), b.url("/reset"), "0123456789")
				s.next.fire()
				_, err := readAllBounded(t, resp.Body)
				resp.Body.Close()
				checkReadError(t, err, syscall.ECONNRESET)
				waitFor(t, "the connection closed", func() bool { return stats(t, p).Open == 0 })
			},
		},
		{
			name:  "caller gone while waiting",
			serve: stallAfterHead,
			check: func(t *testing.T, p *Pool, b *rawBackend, s steps) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				resp := openBody(t, p, ctx, b.url("/stall"), "0123456789")
				done := make(chan error, 1)
				go func() {
					_, err := io.ReadAll(resp.Body)
					done <- err
				}()
				time.Sleep(20 * time.Millisecond) // the read waits
				cancel()
				err := waitErr(t, done)
				resp.Body.Close()
				checkReadError(t, err, os.ErrDeadlineExceeded)
				if !isTimeout(err) {
					t.Errorf("%v: not a timeout", err)
				}
				waitFor(t, "the connection closed", func() bool { return stats(t, p).Open == 0 })
			},
		},
		{
			name:  "pool closed while waiting",
			serve: stallAfterHead,
			check: func(t *testing.T, p *Pool, b *rawBackend, s steps) {
				resp := openBody(t, p, context.Background(), b.url("/stall"), "0123456789")
				done := make(chan error, 1)
				go func() {
					_, err := io.ReadAll(resp.Body)
					done <- err
				}()
				time.Sleep(20 * time.Millisecond) // the read waits
				p.Close()
				err := waitErr(t, done)
				resp.Body.Close()
				checkReadError(t, err, net.ErrClosed)
			},
		},
		{
			// The rest of an abandoned body never comes: the drain's
			// read deadline gives the connection up.
			name: "drain deadline",
			serve: func(c *rawConn, s steps) {
				if c.n == 1 {
					stallAfterHead(c, s)
					return
				}
				echoServe(c)
			},
			check: func(t *testing.T, p *Pool, b *rawBackend, s steps) {
				resp := openBody(t, p, context.Background(), b.url("/stall"), "0123456789")
				resp.Body.Close()
				waitFor(t, "the undrained connection closed", func() bool { return stats(t, p).Open == 0 })
				if r := roundTrip(p, "GET", b.url("/next"), nil); r.err != nil || r.body != "/next" {
					t.Errorf("/next: %v", r)
				}
				if st := stats(t, p); st.Drained != 0 || b.accepted.Load() != 2 {
					t.Errorf("drained %d, %d connections; want 0 and 2", st.Drained, b.accepted.Load())
				}
			},
		},
		{
			name: "answers larger than the read buffer",
			serve: func(c *rawConn, s steps) {
				for {
					req, _, err := c.request()
					if err != nil {
						return
					}
					body := mid
					if req.URL.Path == "/big" {
						body = big
					}
					resp := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
					for len(resp) > 0 {
						n := min(len(resp), 100<<10)
						c.write(resp[:n])
						resp = resp[n:]
						time.Sleep(5 * time.Millisecond)
					}
				}
			},
			check: func(t *testing.T, p *Pool, b *rawBackend, s steps) {
				for _, path := range []string{"/mid", "/big", "/mid", "/big"} {
					want := mid
					if path == "/big" {
						want = big
					}
					r := roundTrip(p, "GET", b.url(path), nil)
					if r.err != nil || r.body != want {
						t.Errorf("%s: %d bytes, %v; want %d bytes", path, len(r.body), r.err, len(want))
					}
				}
				if n := b.accepted.Load(); n != 1 {
					t.Errorf("%d connections, want 1", n)
				}
			},
		},
	}
	// Each case with the calls reading their own responses (depth 1),
	// and with a reader goroutine per connection (depth 2).
	for _, depth := range []int{1, 2} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("depth %d/%s", depth, tc.name), func(t *testing.T) {
				s := steps{next: newSignal(), sent: newSignal()}
				b := newRawBackend(t, func(c *rawConn) { tc.serve(c, s) })
				// One connection at a time: each case knows how many it needs.
				p := testPool(t, func(s *Settings) { s.Workers, s.HOLTimeout, s.PipelineDepth = 1, Never, depth })
				tc.check(t, p, b, s)
			})
		}
	}
}

// readsItself reports whether the calls of p's default upstreams read
// their own responses (no reader goroutine: PipelineDepth 1).
func readsItself(p *Pool) bool { return p.cfg.Defaults.PipelineDepth <= 1 }

// stallAfterHead answers with the head and 10 bytes of a 100000-byte
// body, then sends nothing more.
func stallAfterHead(c *rawConn, s steps) {
	if _, _, err := c.request(); err != nil {
		return
	}
	c.write("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n0123456789")
	io.Copy(io.Discard, c.br)
}

// openBody sends a GET and reads the first len(first) bytes of its
// streamed body, which must be first.
func openBody(t *testing.T, p *Pool, ctx context.Context, url, first string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := p.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(first))
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != first {
		resp.Body.Close()
		t.Fatalf("start of the body: %q %v, want %q", buf, err, first)
	}
	return resp
}

// readAllBounded reads r to its end; a read that never ends fails the
// test after hang rather than hang it.
func readAllBounded(t *testing.T, r io.Reader) (string, error) {
	t.Helper()
	type out struct {
		b   []byte
		err error
	}
	ch := make(chan out, 1)
	go func() {
		b, err := io.ReadAll(r)
		ch <- out{b, err}
	}()
	select {
	case o := <-ch:
		return string(o.b), o.err
	case <-time.After(hang):
		t.Fatalf("read still blocked after %v", hang)
		return "", nil
	}
}

func waitErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(hang):
		t.Fatalf("no outcome within %v", hang)
		return nil
	}
}

// checkReadError checks that err is what a read of a TCP connection gives
// for cause: a *net.OpError of Op "read" wrapping it.
func checkReadError(t *testing.T, err, cause error) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" || !errors.Is(err, cause) {
		t.Errorf("error %v (%T), want a read *net.OpError for %v", err, err, cause)
	}
}
