package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCallerReadsSameResponses: the calls that read their own responses
// (depth 1) get what the reader goroutine hands over (depth 2), for every
// kind of answer; and the connection is reused, or not, alike.
func TestCallerReadsSameResponses(t *testing.T) {
	big := pattern(100 << 10) // over MaxBuffered: streamed
	tests := []struct {
		name   string
		method string
		answer string // the answer to the first request; the second gets ok(path)
		closes bool   // the backend closes the connection after it
	}{
		{"length", "GET", ok("/first"), false},
		{"empty", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false},
		{"chunked whole", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", false},
		{"chunked trailer", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 42\r\n\r\n", false},
		{"streamed", "GET", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(big), big), false},
		{"streamed chunked", "GET", fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(big), big), false},
		{"head", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", false},
		{"204", "GET", "HTTP/1.1 204 No Content\r\n\r\n", false},
		{"304", "GET", "HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n", false},
		{"interim", "GET", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok("/first"), false},
		{"close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", true},
		{"http/1.0 keep-alive", "GET", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", false},
		{"http/1.0 until close", "GET", "HTTP/1.0 200 OK\r\n\r\nuntil close", true},
		{"bytes after a 204", "GET", "HTTP/1.1 204 No Content\r\n\r\nextra", false},
		{"both framings", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"bad chunk", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", false},
		{"bad status", "GET", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", false},
		{"cut in the head", "GET", "HTTP/1.1 200 OK\r\nContent-Le", true},
		{"cut in the body", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n/1", true},
	}
	// outcome is what a client sees of two requests in a row, and how
	// many connections they took.
	type outcome struct {
		first, second string
		conns         int32
	}
	run := func(t *testing.T, depth int, method, answer string, closes bool) outcome {
		b := newRawBackend(t, func(c *rawConn) {
			c.each(func(req *http.Request) bool {
				if req.URL.Path != "/first" || c.n > 1 {
					c.write(ok(req.URL.Path))
					return true
				}
				c.write(answer)
				if closes {
					return false
				}
				return true
			})
		})
		p := testPool(t, func(s *Settings) { s.Workers, s.PipelineDepth = 1, depth })
		first := describe(p, method, b.url("/first"))
		second := describe(p, "GET", b.url("/second"))
		return outcome{first, second, b.accepted.Load()}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			own := run(t, 1, tt.method, tt.answer, tt.closes)
			handed := run(t, 2, tt.method, tt.answer, tt.closes)
			if own != handed {
				t.Errorf("reading their own responses: %+v\nwith a reader goroutine:   %+v", own, handed)
			}
			if !strings.Contains(own.second, `"/second"`) {
				t.Errorf("second request: %s, want /second", own.second)
			}
		})
	}
}

// describe sends one request and says what its client saw: the status,
// the body (or its length when long), the trailers, the error's type.
func describe(p *Pool, method, url string) string {
	req, _ := http.NewRequest(method, url, nil)
	resp, err := p.RoundTrip(req)
	if err != nil {
		var fe *FramingError
		if errors.As(err, &fe) {
			return "framing error"
		}
		return fmt.Sprintf("error %T", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	body := string(b)
	if len(body) > 64 {
		body = fmt.Sprintf("%d bytes", len(b))
	}
	return fmt.Sprintf("%d %q length %d trailer %v close %v read error %v", resp.StatusCode, body, resp.ContentLength, resp.Trailer, resp.Close, err)
}

// TestIdleClosedByBackend: the backend closes a connection while it is
// idle, which nobody sees (no reader goroutine). The look at the socket
// before each request on a connection that answered before sees it: no
// request is sent on it, none is sent twice, none needs a retry.
func TestIdleClosedByBackend(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		retries uint64 // the stats' Retries after the second request
	}{
		{"GET", "GET", 0}, // seen closed by the look before the request: not sent there
		{"DELETE", "DELETE", 0},
		{"POST", "POST", 0},
		{"PATCH", "PATCH", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string]int{}
			// One request per connection, then a close without notice.
			b := newRawBackend(t, func(c *rawConn) {
				req, _, err := c.request()
				if err != nil {
					return
				}
				mu.Lock()
				seen[req.Method+" "+req.URL.Path]++
				mu.Unlock()
				c.write(ok(req.URL.Path))
			})
			p := testPool(t, nil)
			if r := roundTrip(p, "GET", b.url("/a"), nil); r.body != "/a" {
				t.Fatalf("/a: %v", r)
			}
			waitFor(t, "the backend's close", func() bool { return !backendOpen(b) })
			time.Sleep(10 * time.Millisecond) // the close lands
			if st := stats(t, p); st.Open != 1 {
				// The janitor looks at idle connections every second.
				t.Skipf("the janitor dropped the closed connection first (%d open)", st.Open)
			}
			var body io.Reader
			if tt.method != "GET" && tt.method != "DELETE" {
				body = strings.NewReader("payload")
			}
			if r := roundTrip(p, tt.method, b.url("/b"), body); r.err != nil || r.body != "/b" {
				t.Errorf("%s /b: %v, want /b", tt.method, r)
			}
			mu.Lock()
			n := seen[tt.method+" /b"]
			mu.Unlock()
			if n != 1 {
				t.Errorf("%s /b received %d times, want 1", tt.method, n)
			}
			if st := stats(t, p); st.Retries != tt.retries || b.accepted.Load() != 2 {
				t.Errorf("retries %d, %d connections; want %d and 2", st.Retries, b.accepted.Load(), tt.retries)
			}
		})
	}
}

// TestIdleCloseSeenByJanitor: a connection the backend closes while it
// is idle, which no goroutine reads, is dropped by the janitor's look at
// it (within a tick or two), as well as one the backend sends bytes on.
func TestIdleCloseSeenByJanitor(t *testing.T) {
	for _, tt := range []struct {
		name     string
		after    string // written after the answer, before the close
		poisoned uint64
	}{
		{"closed", "", 0},
		{"bytes, then closed", ok("/stale"), 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newRawBackend(t, func(c *rawConn) {
				req, _, err := c.request()
				if err != nil {
					return
				}
				c.write(ok(req.URL.Path))
				time.Sleep(10 * time.Millisecond)
				c.write(tt.after)
			})
			p := testPool(t, nil)
			if r := roundTrip(p, "GET", b.url("/a"), nil); r.body != "/a" {
				t.Fatalf("/a: %v", r)
			}
			waitFor(t, "the closed connection dropped", func() bool { return stats(t, p).Open == 0 })
			if st := stats(t, p); st.Poisoned != tt.poisoned || st.Retries != 0 {
				t.Errorf("poisoned %d, retries %d; want %d and 0", st.Poisoned, st.Retries, tt.poisoned)
			}
		})
	}
}

// backendOpen reports whether the backend still serves a connection.
func backendOpen(b *rawBackend) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		// A closed net.Conn fails SetDeadline.
		if c.SetDeadline(time.Now().Add(hang)) == nil {
			return true
		}
	}
	return false
}

// TestNotIdempotentNeverTwice: a request that is not idempotent, on a
// reused connection that the backend closes after receiving it, or that
// holds bytes nobody asked for, is sent once at most: an error, or the
// answer from a connection that was alive.
func TestNotIdempotentNeverTwice(t *testing.T) {
	tests := []struct {
		name string
		// second serves the second request of connection 1.
		second   func(c *rawConn)
		stale    string // written after the first answer, while idle
		wantErr  bool
		poisoned uint64
	}{
		{"closed after receiving it", func(c *rawConn) {}, "", true, 0},
		{"unsolicited bytes while idle", func(c *rawConn) { c.write(ok("/wrong")) }, ok("/stale"), false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			posts := 0
			staleSent := newSignal()
			b := newRawBackend(t, func(c *rawConn) {
				for i := 0; ; i++ {
					req, _, err := c.request()
					if err != nil {
						return
					}
					if req.Method == "POST" {
						mu.Lock()
						posts++
						mu.Unlock()
					}
					switch {
					case c.n == 1 && i == 0:
						c.write(ok(req.URL.Path))
						if tt.stale != "" {
							time.Sleep(10 * time.Millisecond)
							c.write(tt.stale)
							staleSent.fire()
						}
					case c.n == 1:
						tt.second(c)
						return
					default:
						c.write(ok(req.URL.Path))
					}
				}
			})
			p := testPool(t, nil)
			if r := roundTrip(p, "GET", b.url("/a"), nil); r.body != "/a" {
				t.Fatalf("/a: %v", r)
			}
			if tt.stale != "" {
				staleSent.wait(t)
				time.Sleep(20 * time.Millisecond) // the bytes land
			}
			r := roundTrip(p, "POST", b.url("/p"), strings.NewReader("payload"))
			if tt.wantErr != (r.err != nil) || r.err == nil && r.body != "/p" {
				t.Errorf("POST: %v, want error %v (else /p)", r, tt.wantErr)
			}
			mu.Lock()
			n := posts
			mu.Unlock()
			if n != 1 {
				t.Errorf("POST received %d times, want 1", n)
			}
			if st := stats(t, p); st.Poisoned != tt.poisoned {
				t.Errorf("poisoned %d, want %d", st.Poisoned, tt.poisoned)
			}
		})
	}
}

// TestCallerReadTimesOut: a call blocked reading its own response is cut
// by the sweeper when it is due: a 504 timeout of the right kind, on
// time, and its connection given up.
func TestCallerReadTimesOut(t *testing.T) {
	const d = 150 * time.Millisecond
	tests := []struct {
		name  string
		set   func(s *Settings)
		which string
		part  string // what the backend sends of its answer
	}{
		{"request_timeout", func(s *Settings) { s.RequestTimeout = d }, "request_timeout", ""},
		{"call_timeout", func(s *Settings) { s.CallTimeout = d }, "call_timeout", ""},
		{"in the head", func(s *Settings) { s.RequestTimeout = d }, "request_timeout", "HTTP/1.1 200 OK\r\nX-A: b\r\n"},
		{"in the body", func(s *Settings) { s.RequestTimeout = d }, "request_timeout", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newRawBackend(t, func(c *rawConn) {
				if _, _, err := c.request(); err != nil {
					return
				}
				c.write(tt.part)
				io.Copy(io.Discard, c.br)
			})
			p := testPool(t, tt.set)
			start := time.Now()
			r := roundTrip(p, "GET", b.url("/x"), nil)
			took := time.Since(start)
			var te *timeoutError
			if !errors.As(r.err, &te) || !strings.HasSuffix(te.msg, "within "+tt.which) {
				t.Fatalf("%v, want a %s error", r, tt.which)
			}
			if took < d || took > d+sweepTick+lateSlack {
				t.Errorf("timed out after %v, want %v to %v", took, d, d+sweepTick+lateSlack)
			}
			waitFor(t, "the connection given up", func() bool { return stats(t, p).Open == 0 })
			if st := stats(t, p); st.Timeouts != 1 || st.Abandoned != 1 {
				t.Errorf("timeouts %d, abandoned %d, want 1 and 1", st.Timeouts, st.Abandoned)
			}
		})
	}
}

// TestCallerReadCancelled: a call reading its own response whose client
// goes away gives up within a sweep tick (and the slack of a busy
// machine), with or without a deadline, and its connection is closed.
// Also once the call has read for ctxPushPolls ticks: its context is then
// watched by a context.AfterFunc, the sweeper no longer looks at it on
// its ticks, and the cancel cuts the read at once.
func TestCallerReadCancelled(t *testing.T) {
	for _, pushedCtx := range []bool{false, true} {
		for _, timeout := range []time.Duration{0, hang} {
			t.Run(fmt.Sprintf("pushed %v, timeout %v", pushedCtx, timeout), func(t *testing.T) {
				b := newRawBackend(t, func(c *rawConn) {
					if _, _, err := c.request(); err != nil {
						return
					}
					io.Copy(io.Discard, c.br) // never answers
				})
				p := testPool(t, func(s *Settings) { s.CallTimeout, s.RequestTimeout = timeout, timeout })
				inner, cancel := context.WithCancel(context.Background())
				defer cancel()
				ctx := &countingCtx{Context: inner}
				ch := make(chan result, 1)
				go func() { ch <- roundTripCtx(ctx, p, "GET", b.url("/never"), nil) }()
				waitFor(t, "the call reading", func() bool { return readers(p) == 1 })
				if pushedCtx {
					waitFor(t, "the call's context pushed", func() bool { return pushed(p) == 1 })
					if looks := ctx.errs.Load(); looks < ctxPushPolls {
						t.Errorf("the sweeper looked at the context %d times before pushing it, want %d at least", looks, ctxPushPolls)
					}
					before := ctx.errs.Load()
					time.Sleep(5 * sweepTick)
					if looks := ctx.errs.Load() - before; looks != 0 {
						t.Errorf("the sweeper looked at a pushed context %d times in 5 ticks, want none", looks)
					}
				}
				cancel()
				start := time.Now()
				r := wait(t, ch)
				if took := time.Since(start); took > sweepTick+lateSlack {
					t.Errorf("gave up %v after the cancel, want at most %v", took, sweepTick+lateSlack)
				}
				if !errors.Is(r.err, context.Canceled) {
					t.Errorf("%v, want context.Canceled", r)
				}
				waitFor(t, "the connection closed", func() bool { return stats(t, p).Open == 0 })
				if st := stats(t, p); st.Abandoned != 1 || st.Timeouts != 0 {
					t.Errorf("abandoned %d, timeouts %d; want 1 and 0", st.Abandoned, st.Timeouts)
				}
				if n := watchedCalls(p); n != 0 || readers(p) != 0 || pushed(p) != 0 {
					t.Errorf("%d calls watched, %d reading, %d pushed; want none", n, readers(p), pushed(p))
				}
			})
		}
	}
}

// TestCallerReadPushedAnswered: a call answered after its context was
// pushed stops its AfterFunc: the response is the backend's, the
// connection is reused, and a cancel after it changes nothing.
func TestCallerReadPushedAnswered(t *testing.T) {
	release := make(chan struct{})
	b := newRawBackend(t, func(c *rawConn) {
		for i := 0; ; i++ {
			if _, _, err := c.request(); err != nil {
				return
			}
			if i == 0 {
				<-release
			}
			c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	p := testPool(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan result, 1)
	go func() { ch <- roundTripCtx(ctx, p, "GET", b.url("/slow"), nil) }()
	waitFor(t, "the call's context pushed", func() bool { return pushed(p) == 1 })
	close(release)
	if r := wait(t, ch); r.err != nil || r.status != 200 || r.body != "ok" {
		t.Fatalf("%+v, want 200 ok", r)
	}
	if readers(p) != 0 || pushed(p) != 0 {
		t.Errorf("%d reading, %d pushed; want none", readers(p), pushed(p))
	}
	cancel()
	if r := roundTrip(p, "GET", b.url("/again"), nil); r.err != nil || r.status != 200 {
		t.Fatalf("second request: %+v", r)
	}
	if st := stats(t, p); st.Dials != 1 || st.Abandoned != 0 {
		t.Errorf("dials %d, abandoned %d; want 1 and 0", st.Dials, st.Abandoned)
	}
}

// TestReaderGoneLate: the AfterFunc of a read that has ended, or of an
// earlier read of the same call, leaves the connection alone.
func TestReaderGoneLate(t *testing.T) {
	u := &upstream{swept: true, p: &Pool{}} // as if in the sweeper's list, which sleeps not
	nc, other := net.Pipe()
	defer nc.Close()
	defer other.Close()
	c := &conn{u: u, nc: nc}
	k := &call{u: u, conn: c, state: stSent, ctx: context.Background()}
	u.mu.Lock()
	c.startRead(k, time.Time{})
	gen := k.readGen
	u.pushCtx(k)
	u.mu.Unlock()
	for _, tc := range []struct {
		name string
		gen  uint64
		set  func()
	}{
		{"an earlier read", gen - 1, func() {}},
		{"the read ended", gen, func() { c.endRead() }},
	} {
		u.mu.Lock()
		tc.set()
		u.mu.Unlock()
		u.readerGone(c, k, tc.gen)
		if c.cut {
			t.Errorf("%s: the connection's read was cut", tc.name)
		}
	}
	if u.readers != 0 || u.pushed != 0 || k.ctxStop != nil {
		t.Errorf("readers %d, pushed %d, ctxStop set %v; want 0, 0, false", u.readers, u.pushed, k.ctxStop != nil)
	}
}

// countingCtx counts the calls of its Err method.
type countingCtx struct {
	context.Context
	errs atomic.Int64
}

func (c *countingCtx) Err() error {
	c.errs.Add(1)
	return c.Context.Err()
}

// pushed counts the calls of p whose context an AfterFunc watches.
func pushed(p *Pool) int { return sumUpstreams(p, func(u *upstream) int { return u.pushed }) }

// readers counts the calls of p reading their own responses.
func readers(p *Pool) int { return sumUpstreams(p, func(u *upstream) int { return u.readers }) }

// sumUpstreams adds up count over the upstreams of p, each under its lock.
func sumUpstreams(p *Pool, count func(u *upstream) int) int {
	n := 0
	for _, u := range p.upstreams() {
		u.mu.Lock()
		n += count(u)
		u.mu.Unlock()
	}
	return n
}

// TestCallerStreamedBody: a streamed body read by its client gives its
// connection back when it ends: idle again and reused, drained when
// closed early with little left, closed when closed early with much
// left.
func TestCallerStreamedBody(t *testing.T) {
	big := pattern(100 << 10)  // over MaxBuffered, under drainLimit
	huge := pattern(400 << 10) // over drainLimit
	tests := []struct {
		name    string
		body    string
		chunked bool
		read    int // bytes the client reads before closing; -1: all
		conns   int32
		drained uint64
	}{
		{"read whole", big, false, -1, 1, 0},
		{"chunked read whole", big, true, -1, 1, 0},
		{"closed early, drained", big, false, 100, 1, 1},
		{"chunked closed early, drained", big, true, 100, 1, 1},
		{"closed early, too much left", huge, false, 100, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newRawBackend(t, func(c *rawConn) {
				c.each(func(req *http.Request) bool {
					switch {
					case req.URL.Path != "/big":
						c.write(ok(req.URL.Path))
					case tt.chunked:
						c.write(fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(tt.body), tt.body))
					default:
						c.write(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(tt.body), tt.body))
					}
					return true
				})
			})
			p := testPool(t, func(s *Settings) { s.Workers = 1 })
			req, _ := http.NewRequest("GET", b.url("/big"), nil)
			resp, err := p.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body := resp.Body
			if tb, ok := body.(*trailerBody); ok {
				body = tb.ReadCloser // RoundTrip's wrapper of a chunked answer
			}
			if _, ok := body.(*streamBody); !ok {
				t.Fatalf("body %T, want a streamed one", body)
			}
			var got []byte
			if tt.read < 0 {
				got, err = io.ReadAll(resp.Body)
				if err != nil || !bytes.Equal(got, []byte(tt.body)) {
					t.Errorf("body: %d bytes, %v; want %d bytes", len(got), err, len(tt.body))
				}
			} else {
				got = make([]byte, tt.read)
				if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != tt.body[:tt.read] {
					t.Errorf("start of the body: %v", err)
				}
			}
			resp.Body.Close()
			waitFor(t, "the connection idle or closed", func() bool {
				st := stats(t, p)
				return st.InFlight == 0 && st.Idle == st.Open
			})
			if r := roundTrip(p, "GET", b.url("/next"), nil); r.err != nil || r.body != "/next" {
				t.Errorf("/next: %v", r)
			}
			if st := stats(t, p); b.accepted.Load() != tt.conns || st.Drained != tt.drained {
				t.Errorf("%d connections, drained %d; want %d and %d", b.accepted.Load(), st.Drained, tt.conns, tt.drained)
			}
		})
	}
}

// TestCallerReadsNoGoroutines: the idle connections of an upstream that
// does not pipeline have no goroutine (one that may pipeline has its
// reader), and none of the pool's goroutines is left after Close.
func TestCallerReadsNoGoroutines(t *testing.T) {
	for _, depth := range []int{1, 2} {
		t.Run(fmt.Sprintf("depth %d", depth), func(t *testing.T) {
			// Those of other tests still ending are not this pool's.
			base := poolGoroutines("ocsiproxy/pool.(*")
			readersBefore := poolGoroutines("(*conn).readLoop")
			release := newSignal()
			b := newRawBackend(t, func(c *rawConn) {
				req, _, err := c.request()
				if err != nil {
					return
				}
				release.wait(nil)
				c.write(ok(req.URL.Path))
				echoServe(c)
			})
			p := testPool(t, func(s *Settings) { s.PipelineDepth = depth })
			// Four requests at once: four connections, idle once answered.
			var chs []<-chan result
			for i := 0; i < 4; i++ {
				chs = append(chs, goRoundTrip(p, "GET", b.url(fmt.Sprintf("/%d", i)), nil))
			}
			waitFor(t, "four requests at the backend", func() bool { return stats(t, p).InFlight == 4 && stats(t, p).Open == 4 })
			release.fire()
			for _, ch := range chs {
				if r := wait(t, ch); r.err != nil {
					t.Fatalf("%v", r)
				}
			}
			want := 0
			if depth > 1 {
				want = 4
			}
			if n := poolGoroutines("(*conn).readLoop") - readersBefore; n != want {
				t.Errorf("%d reader goroutines for 4 idle connections, want %d", n, want)
			}
			p.Close()
			deadline := time.Now().Add(hang)
			for poolGoroutines("ocsiproxy/pool.(*") > base {
				if time.Now().After(deadline) {
					t.Fatalf("goroutines of the pool left after Close:\n%s", goroutines("ocsiproxy/pool.(*"))
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

// poolGoroutines counts the goroutines with a frame whose function name
// contains fn.
func poolGoroutines(fn string) int {
	return strings.Count(goroutines(fn), "\n\n")
}

// goroutines returns the stacks of the goroutines with a frame whose
// function name contains fn, each followed by an empty line.
func goroutines(fn string) string {
	var buf bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&buf, 2)
	var out strings.Builder
	for g := range strings.SplitSeq(buf.String(), "\n\n") {
		if strings.Contains(g, fn) {
			out.WriteString(strings.TrimSpace(g) + "\n\n")
		}
	}
	return out.String()
}

// TestCallerReadsWithBody: a request with a body whose call reads its
// own response (depth 1) behaves as with a reader goroutine (depth 2): an
// early answer while the body is still being sent, the clocks stopped
// while it is sent, a timeout after it, a client gone in the middle of it.
func TestCallerReadsWithBody(t *testing.T) {
	const d = 150 * time.Millisecond
	const slow = 2 * d // the time the body takes
	tests := []struct {
		name string
		// serve answers the request, whose head was read.
		serve func(c *rawConn, req *http.Request)
		// body writes the request body, then closes it; stop fires when
		// the test is over.
		body   func(w *io.PipeWriter, stop signal)
		cancel bool // the client goes away once the backend has the head
		check  func(t *testing.T, r result, took time.Duration)
	}{
		{
			name: "early answer",
			serve: func(c *rawConn, req *http.Request) {
				c.write("HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbig")
			},
			body: func(w *io.PipeWriter, stop signal) {
				for {
					if _, err := w.Write([]byte("more")); err != nil {
						return
					}
					select {
					case <-stop:
						w.Close()
						return
					case <-time.After(time.Millisecond):
					}
				}
			},
			check: func(t *testing.T, r result, took time.Duration) {
				if r.err != nil || r.status != 413 || r.body != "big" {
					t.Errorf("%v, want the early 413", r)
				}
			},
		},
		{
			name: "slow body, answer",
			serve: func(c *rawConn, req *http.Request) {
				b, _ := io.ReadAll(req.Body)
				c.write(ok(fmt.Sprintf("%d bytes", len(b))))
			},
			body: slowBody(slow),
			check: func(t *testing.T, r result, took time.Duration) {
				if r.err != nil || r.body != "3 bytes" {
					t.Errorf("%v, want the answer (no timeout while the body is sent)", r)
				}
			},
		},
		{
			name: "slow body, no answer",
			serve: func(c *rawConn, req *http.Request) {
				io.ReadAll(req.Body)
				io.Copy(io.Discard, c.br)
			},
			body: slowBody(slow),
			check: func(t *testing.T, r result, took time.Duration) {
				var te *timeoutError
				if !errors.As(r.err, &te) || !strings.HasSuffix(te.msg, "within request_timeout") {
					t.Fatalf("%v, want a request_timeout error", r)
				}
				if took < slow+d || took > slow+d+sweepTick+lateSlack {
					t.Errorf("timed out after %v, want %v to %v", took, slow+d, slow+d+sweepTick+lateSlack)
				}
			},
		},
		{
			name: "client gone while the body is sent",
			serve: func(c *rawConn, req *http.Request) {
				io.Copy(io.Discard, c.br)
			},
			body:   func(w *io.PipeWriter, stop signal) { stop.wait(nil); w.Close() },
			cancel: true,
			check: func(t *testing.T, r result, took time.Duration) {
				if !errors.Is(r.err, context.Canceled) {
					t.Errorf("%v, want context.Canceled", r)
				}
				if took > sweepTick+lateSlack {
					t.Errorf("gave up %v after the cancel, want at most %v", took, sweepTick+lateSlack)
				}
			},
		},
	}
	for _, depth := range []int{1, 2} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("depth %d/%s", depth, tt.name), func(t *testing.T) {
				headRead := newSignal()
				b := newRawBackend(t, func(c *rawConn) {
					req, err := http.ReadRequest(c.br)
					if err != nil {
						return
					}
					headRead.fire()
					tt.serve(c, req)
				})
				p := testPool(t, func(s *Settings) { s.RequestTimeout, s.PipelineDepth = d, depth })
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				pr, pw := io.Pipe()
				stop := newSignal()
				var once sync.Once
				end := func() { once.Do(stop.fire) }
				defer end()
				go tt.body(pw, stop)
				ch := make(chan result, 1)
				start := time.Now()
				go func() {
					req, _ := http.NewRequestWithContext(ctx, "POST", b.url("/up"), pr)
					req.ContentLength = -1 // unknown: sent chunked
					ch <- roundTripReq(p, req)
				}()
				if tt.cancel {
					headRead.wait(t)
					time.Sleep(20 * time.Millisecond) // the body is being sent
					start = time.Now()
					cancel()
				}
				r := wait(t, ch)
				tt.check(t, r, time.Since(start))
				end()
				waitFor(t, "no call left", func() bool { st := stats(t, p); return st.InFlight == 0 && st.Waiting == 0 })
			})
		}
	}
}

// slowBody writes "abc" over d, a byte at a time.
func slowBody(d time.Duration) func(w *io.PipeWriter, stop signal) {
	return func(w *io.PipeWriter, stop signal) {
		for _, c := range []byte("abc") {
			time.Sleep(d / 3)
			if _, err := w.Write([]byte{c}); err != nil {
				return
			}
		}
		w.Close()
	}
}

// TestRawSend: on a plain TCP connection whose calls read their own
// answers, a head of at most writeBufferSize bytes is written from within
// the wait for its answer (rawSend), a longer one by send; on a connection
// that is not a bare *net.TCPConn, by send always. Answers go to their
// requests either way, on one connection, and a backend that closes the
// connection after reading a request has it sent again.
func TestRawSend(t *testing.T) {
	long := strings.Repeat("x", writeBufferSize+1000)
	for _, tt := range []struct {
		name    string
		wrap    bool
		wantRaw bool
	}{
		{"plain TCP", false, true},
		{"wrapped", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newRawBackend(t, func(c *rawConn) {
				c.each(func(req *http.Request) bool {
					if req.URL.Path == "/close" && c.n == 1 {
						c.Close() // read, not answered: sent again
						return false
					}
					c.write(ok(req.URL.Path + " " + strconv.Itoa(len(req.Header.Get("X-Long")))))
					return true
				})
			})
			p := testPool(t, nil)
			if tt.wrap {
				d := &net.Dialer{}
				p.dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
					c, err := d.DialContext(ctx, network, addr)
					if err != nil {
						return nil, err
					}
					return struct{ net.Conn }{c}, nil
				}
			}
			for i, step := range []struct {
				path, header string
			}{
				{"/a", ""}, {"/b", long}, {"/c", ""}, {"/d", "short"}, {"/close", ""}, {"/e", ""},
			} {
				req := mustRequest(t, b.url(step.path))
				if step.header != "" {
					req.Header.Set("X-Long", step.header)
				}
				if r, want := roundTripReq(p, req), step.path+" "+strconv.Itoa(len(step.header)); r.err != nil || r.body != want {
					t.Fatalf("step %d: %v, want %q", i, r, want)
				}
				if i == 0 {
					u, _ := p.upstreamFor(wireRequest(t, req))
					u.mu.Lock()
					raw := len(u.conns) == 1 && u.conns[0].rawSend
					u.mu.Unlock()
					if raw != tt.wantRaw {
						t.Errorf("rawSend %v, want %v", raw, tt.wantRaw)
					}
				}
			}
			st := stats(t, p)
			if st.Dials != 2 || st.Retries != 1 {
				t.Errorf("%d dials, %d retries; want 2 and 1 (one connection until /close, sent again on a second)", st.Dials, st.Retries)
			}
		})
	}
}

// TestSendAllocs checks what a proxied GET costs the pool in allocations
// with the default settings (a caller reading its own answer, written from
// within its wait on a plain TCP connection): none, once the connection
// is open and its answers' strings made (wire.Strings makes them for many
// answers at a time). The functions syscall.RawConn calls are made once
// per connection; made per request, they cost 7 allocations.
func TestSendAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts vary under the race detector (sync.Pool drops items at random)")
	}
	bb := newBenchBackend(t, 0, false)
	p := New(Config{Defaults: DefaultSettings(30 * time.Second)})
	defer p.Close()
	hr, _ := http.NewRequest("GET", "http://"+bb.ln.Addr().String()+"/index.html", nil)
	req := wireRequest(t, hr)
	send := func() {
		resp, err := p.Send(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		resp.Release()
	}
	send()
	// The fewest of several counts: AllocsPerRun also counts what other
	// goroutines of the test binary allocate meanwhile.
	least := math.Inf(1)
	for range 5 {
		least = min(least, testing.AllocsPerRun(200, send))
	}
	if least > 0.1 {
		t.Errorf("%v allocations per request, want none (at most one in ten: the answers' strings)", least)
	}
}
