package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPipelinesSafeRequests: once a connection passed probation, GETs
// that find it busy are pipelined on it, and every caller gets the
// response to its own request.
func TestPipelinesSafeRequests(t *testing.T) {
	got := make(chan string, 10)
	b := newRawBackend(t, func(c *rawConn) {
		req, _, err := c.request() // the probation request, alone
		if err != nil {
			return
		}
		c.write(ok(req.URL.Path))
		var reqs []*http.Request
		for len(reqs) < 3 { // the backend answers only once it holds three
			req, _, err := c.request()
			if err != nil {
				t.Errorf("backend: %v after %d pipelined requests", err, len(reqs))
				return
			}
			reqs = append(reqs, req)
		}
		got <- paths(reqs)
		for _, r := range reqs {
			c.write(ok("for " + r.URL.Path))
		}
		echoServe(c)
	})
	p := testPool(t, func(s *Settings) { s.Workers, s.PipelineDepth = 1, 4 })
	if r := roundTrip(p, "GET", b.url("/warm"), nil); r.body != "/warm" {
		t.Fatalf("warm-up: %v", r)
	}
	var chs []<-chan result
	for i := 0; i < 3; i++ {
		chs = append(chs, goRoundTrip(p, "GET", b.url(fmt.Sprintf("/r%d", i)), nil))
	}
	for i, ch := range chs {
		if r := wait(t, ch); r.status != 200 || r.body != fmt.Sprintf("for /r%d", i) {
			t.Errorf("request %d: %v", i, r)
		}
	}
	t.Logf("backend read before answering: %s", <-got)
	st := stats(t, p)
	if st.Pipelined < 2 || st.MaxDepth < 3 || b.accepted.Load() != 1 {
		t.Errorf("pipelined %d, max depth %d, connections %d; want >= 2, >= 3, 1", st.Pipelined, st.MaxDepth, b.accepted.Load())
	}
}

// TestProbation: a new connection carries one request at a time until it
// has answered persistently in HTTP/1.1.
func TestProbation(t *testing.T) {
	var p *Pool
	b := newRawBackend(t, func(c *rawConn) {
		req, _, err := c.request()
		if err != nil {
			return
		}
		// The other two must be queued in the pool, not on the wire.
		waitFor(t, "two queued calls", func() bool { return stats(t, p).Waiting == 2 })
		c.write(ok(req.URL.Path))
		r2, _, err2 := c.request()
		r3, _, err3 := c.request() // pipelined: read before answering r2
		if err2 != nil || err3 != nil {
			t.Errorf("backend: %v %v", err2, err3)
			return
		}
		c.write(ok(r2.URL.Path) + ok(r3.URL.Path))
		echoServe(c)
	})
	p = testPool(t, func(s *Settings) { s.Workers, s.PipelineDepth = 1, 4 })
	first := goRoundTrip(p, "GET", b.url("/1"), nil)
	waitFor(t, "the first request in flight", func() bool { return stats(t, p).InFlight == 1 })
	a, c := goRoundTrip(p, "GET", b.url("/a"), nil), goRoundTrip(p, "GET", b.url("/b"), nil)
	for _, ch := range []<-chan result{first, a, c} {
		if r := wait(t, ch); r.status != 200 {
			t.Errorf("%v", r)
		}
	}
}

// TestHTTP10NeverTrusted: a backend answering HTTP/1.0 keep-alive is
// reused but never pipelined on.
func TestHTTP10NeverTrusted(t *testing.T) {
	var p *Pool
	b := newRawBackend(t, func(c *rawConn) {
		c.each(func(req *http.Request) bool {
			if req.URL.Path == "/hold" {
				waitFor(t, "one queued call", func() bool { return stats(t, p).Waiting == 1 })
			}
			c.write("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok")
			return true
		})
	})
	p = testPool(t, func(s *Settings) { s.Workers, s.PipelineDepth = 1, 4 })
	roundTrip(p, "GET", b.url("/warm"), nil)
	roundTrip(p, "GET", b.url("/warm"), nil)
	h := goRoundTrip(p, "GET", b.url("/hold"), nil)
	waitFor(t, "the held request in flight", func() bool { return stats(t, p).InFlight == 1 })
	other := goRoundTrip(p, "GET", b.url("/other"), nil)
	if r := wait(t, h); r.body != "ok" {
		t.Errorf("%v", r)
	}
	if r := wait(t, other); r.body != "ok" {
		t.Errorf("%v", r)
	}
	if st := stats(t, p); st.Pipelined != 0 || b.accepted.Load() != 1 {
		t.Errorf("pipelined %d, connections %d; want 0 and 1 (kept alive)", st.Pipelined, b.accepted.Load())
	}
}

// TestNoPipeliningAroundUnsafeRequests: a request with a body, or with a
// method that is not safe, waits for a connection of its own, and nothing
// is pipelined behind it.
func TestNoPipeliningAroundUnsafeRequests(t *testing.T) {
	for _, tc := range []struct {
		method, body string
	}{
		{"POST", "payload"},
		{"DELETE", ""},
		{"GET", "a GET with a body"},
	} {
		t.Run(tc.method, func(t *testing.T) {
			var p *Pool
			b := newRawBackend(t, func(c *rawConn) {
				for {
					req, body, err := c.request()
					if err != nil {
						return
					}
					switch req.URL.Path {
					case "/hold":
						// A GET in flight: the unsafe request queues.
						waitFor(t, "the unsafe request queued", func() bool { return stats(t, p).Waiting == 1 })
					case "/unsafe":
						// The unsafe request in flight: the GETs queue.
						waitFor(t, "two GETs queued", func() bool { return stats(t, p).Waiting == 2 })
						if body != tc.body {
							t.Errorf("body %q, want %q", body, tc.body)
						}
					}
					c.write(ok(req.Method + " " + req.URL.Path))
				}
			})
			p = testPool(t, func(s *Settings) { s.Workers, s.PipelineDepth = 1, 8 })
			roundTrip(p, "GET", b.url("/warm"), nil)
			hold := goRoundTrip(p, "GET", b.url("/hold"), nil)
			waitFor(t, "/hold in flight", func() bool { return stats(t, p).InFlight == 1 })
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			unsafe := goRoundTrip(p, tc.method, b.url("/unsafe"), body)
			r := wait(t, hold)
			waitFor(t, "the unsafe request in flight", func() bool { return stats(t, p).InFlight == 1 })
			g1, g2 := goRoundTrip(p, "GET", b.url("/g1"), nil), goRoundTrip(p, "GET", b.url("/g2"), nil)
			for _, r2 := range []result{r, wait(t, unsafe), wait(t, g1), wait(t, g2)} {
				if r2.status != 200 {
					t.Errorf("%v", r2)
				}
			}
			if st := stats(t, p); st.Pipelined == 0 {
				t.Logf("the two GETs were not pipelined after the unsafe request (allowed)")
			}
		})
	}
}

// pipelinedFailure runs three GETs pipelined on a trusted connection
// whose backend reads all three, then does what misbehave says with
// them; later connections echo. It returns the three results and the
// pool.
func pipelinedFailure(t *testing.T, set func(*Settings), misbehave func(c *rawConn, reqs []*http.Request)) ([]result, *Pool, *rawBackend) {
	t.Helper()
	arrived := make(chan string, 3)
	b := newRawBackend(t, func(c *rawConn) {
		if c.n > 1 {
			echoServe(c)
			return
		}
		req, _, err := c.request()
		if err != nil {
			return
		}
		c.write(ok(req.URL.Path))
		var reqs []*http.Request
		for len(reqs) < 3 {
			req, _, err := c.request()
			if err != nil {
				t.Errorf("backend: %v", err)
				return
			}
			arrived <- req.URL.Path
			reqs = append(reqs, req)
		}
		misbehave(c, reqs)
	})
	p := testPool(t, func(s *Settings) {
		s.Workers, s.PipelineDepth = 1, 4
		if set != nil {
			set(s)
		}
	})
	if r := roundTrip(p, "GET", b.url("/warm"), nil); r.status != 200 {
		t.Fatalf("warm-up: %v", r)
	}
	// Each request is on the wire before the next is made, so that the
	// pipeline's order is /1 /2 /3.
	var chs []<-chan result
	for i := 1; i <= 3; i++ {
		path := fmt.Sprintf("/%d", i)
		chs = append(chs, goRoundTrip(p, "GET", b.url(path), nil))
		select {
		case got := <-arrived:
			if got != path {
				t.Fatalf("backend read %s, want %s", got, path)
			}
		case <-time.After(hang):
			t.Fatalf("%s not sent", path)
		}
	}
	return []result{wait(t, chs[0]), wait(t, chs[1]), wait(t, chs[2])}, p, b
}

// TestFramingErrorsPoison: a response that cannot be delimited closes the
// connection; its own request gets an error (502), and the requests
// pipelined behind it are sent again on another connection.
func TestFramingErrorsPoison(t *testing.T) {
	bad := map[string]string{
		"bad status line":              "HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok",
		"not HTTP":                     "SSH-2.0-OpenSSH\r\n\r\n",
		"Content-Length and chunked":   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"two Content-Lengths":          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!",
		"Content-Length list":          "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok",
		"signed Content-Length":        "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok",
		"gzip transfer coding":         "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		"chunked in HTTP/1.0":          "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"bad chunk size":               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
		"chunk without CRLF":           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX0\r\n\r\n",
		"bad header line":              "HTTP/1.1 200 OK\r\nNo colon here\r\nContent-Length: 2\r\n\r\nok",
		"101 nobody asked for":         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
		"HTTP/2 status line":           "HTTP/2 200\r\nContent-Length: 2\r\n\r\nok",
		"status line with bare code 9": "HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok",
	}
	for name, resp := range bad {
		t.Run(name, func(t *testing.T) {
			res, p, b := pipelinedFailure(t, nil, func(c *rawConn, reqs []*http.Request) {
				c.write(resp)
				io.Copy(io.Discard, c.br) // until the pool closes
			})
			var fe *FramingError
			if !errors.As(res[0].err, &fe) {
				t.Errorf("/1: %v, want a framing error", res[0])
			}
			if res[1].body != "/2" || res[2].body != "/3" {
				t.Errorf("/2, /3: %v, %v; want them resent and answered", res[1], res[2])
			}
			st := stats(t, p)
			if st.Poisoned != 1 || st.Retries != 2 || b.accepted.Load() != 2 {
				t.Errorf("poisoned %d, retries %d, connections %d; want 1, 2, 2", st.Poisoned, st.Retries, b.accepted.Load())
			}
		})
	}
}

// TestExtraBytes: bytes after a response's end are the next response's
// status line: that one fails (502) and poisons the connection.
func TestExtraBytes(t *testing.T) {
	res, p, _ := pipelinedFailure(t, nil, func(c *rawConn, reqs []*http.Request) {
		c.write(ok("/1") + "garbage\r\n")
		io.Copy(io.Discard, c.br)
	})
	var fe *FramingError
	if res[0].body != "/1" || !errors.As(res[1].err, &fe) || res[2].body != "/3" {
		t.Errorf("got %v, %v, %v; want /1, a framing error, /3", res[0], res[1], res[2])
	}
	if st := stats(t, p); st.Poisoned != 1 {
		t.Errorf("poisoned %d, want 1", st.Poisoned)
	}
}

// TestUnsolicitedBytes: bytes on an idle connection close it; the next
// request goes on a new one.
func TestUnsolicitedBytes(t *testing.T) {
	b := newRawBackend(t, func(c *rawConn) {
		req, _, err := c.request()
		if err != nil {
			return
		}
		if c.n == 1 {
			c.write(ok(req.URL.Path) + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
			io.Copy(io.Discard, c.br)
			return
		}
		c.write(ok(req.URL.Path))
		echoServe(c)
	})
	p := testPool(t, nil)
	if r := roundTrip(p, "GET", b.url("/a"), nil); r.body != "/a" {
		t.Fatalf("%v", r)
	}
	waitFor(t, "the poisoned connection closed", func() bool { return stats(t, p).Open == 0 })
	if r := roundTrip(p, "GET", b.url("/b"), nil); r.body != "/b" {
		t.Errorf("%v, want /b (never the stale bytes)", r)
	}
}

// TestEarlyClose: a backend that closes with pipelined requests
// unanswered gets them again on a new connection, and pipelining to it is
// off for a while.
func TestEarlyClose(t *testing.T) {
	res, p, b := pipelinedFailure(t, nil, func(c *rawConn, reqs []*http.Request) {
		c.write(ok("/1"))
	})
	if res[0].body != "/1" || res[1].body != "/2" || res[2].body != "/3" {
		t.Errorf("got %v %v %v", res[0], res[1], res[2])
	}
	st := stats(t, p)
	if st.EarlyCloses != 1 || st.Retries != 2 || !st.Distrusted || st.Distrusts != 1 || b.accepted.Load() != 2 {
		t.Errorf("%+v; want one early close, 2 retries, distrusted, 2 connections", st)
	}
}

// TestEarlyCloseMidResponse: a response cut short (within MaxBuffered)
// was never handed over: its request is sent again.
func TestEarlyCloseMidResponse(t *testing.T) {
	for name, cut := range map[string]string{
		"in the head": "HTTP/1.1 200 OK\r\nContent-Le",
		"in the body": "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n/1",
	} {
		t.Run(name, func(t *testing.T) {
			res, _, _ := pipelinedFailure(t, nil, func(c *rawConn, reqs []*http.Request) {
				c.write(cut)
			})
			for i, r := range res {
				if want := fmt.Sprintf("/%d", i+1); r.body != want {
					t.Errorf("got %v, want %s", r, want)
				}
			}
		})
	}
}

// TestRetriedOnce: a request is resent at most once; the second failure
// is its answer.
func TestRetriedOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	b := newRawBackend(t, func(c *rawConn) {
		req, _, err := c.request()
		if err != nil {
			return
		}
		mu.Lock()
		seen[req.URL.Path]++
		mu.Unlock()
		// Close without answering, every time.
	})
	p := testPool(t, nil)
	r := roundTrip(p, "GET", b.url("/x"), nil)
	if r.err == nil || isTimeout(r.err) {
		t.Errorf("%v, want a connection error", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["/x"] != 2 {
		t.Errorf("sent %d times, want 2", seen["/x"])
	}
}

// TestNonIdempotentNotRetried: a POST whose connection closes before the
// answer is not sent again.
func TestNonIdempotentNotRetried(t *testing.T) {
	var mu sync.Mutex
	n := 0
	b := newRawBackend(t, func(c *rawConn) {
		if _, _, err := c.request(); err != nil {
			return
		}
		mu.Lock()
		n++
		mu.Unlock()
	})
	p := testPool(t, nil)
	r := roundTrip(p, "POST", b.url("/x"), strings.NewReader("body"))
	if r.err == nil {
		t.Errorf("%v, want an error", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if n != 1 {
		t.Errorf("POST sent %d times, want 1", n)
	}
}

// TestPoliteClose: a response with "Connection: close" ends the
// connection; the requests pipelined behind it go again on a new one,
// without distrust.
func TestPoliteClose(t *testing.T) {
	res, p, _ := pipelinedFailure(t, nil, func(c *rawConn, reqs []*http.Request) {
		c.write("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n/1")
	})
	if res[0].body != "/1" || res[1].body != "/2" || res[2].body != "/3" {
		t.Errorf("got %v %v %v", res[0], res[1], res[2])
	}
	if st := stats(t, p); st.Requeued != 2 || st.Distrusted || st.Retries != 0 {
		t.Errorf("%+v; want 2 requeued, no distrust, no retry", st)
	}
}

// TestHeadOfLineBound: a response body streamed to a client that does
// not read it holds up other requests for HOLTimeout at most: those
// pipelined behind it are sent again on another connection, and those
// waiting for a connection get a new one. Both are answered while that
// body is still unread.
func TestHeadOfLineBound(t *testing.T) {
	const big = 1 << 20
	for _, behind := range []bool{true, false} {
		name := "pipelined behind"
		if !behind {
			name = "queued for the connection"
		}
		t.Run(name, func(t *testing.T) {
			gotBig := newSignal()
			b := newRawBackend(t, func(c *rawConn) {
				if c.n > 1 {
					echoServe(c)
					return
				}
				if _, _, err := c.request(); err != nil {
					return
				}
				gotBig.fire()
				if behind {
					if _, _, err := c.request(); err != nil { // /small, pipelined
						return
					}
				}
				c.write(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", big))
				c.write(strings.Repeat("x", big))
				c.write(ok("/small (stale)"))
				io.Copy(io.Discard, c.br)
			})
			p := testPool(t, func(s *Settings) {
				s.Workers, s.PipelineDepth, s.Probation = 1, 4, 0
				s.HOLTimeout = 20 * time.Millisecond
			})
			bigc := make(chan *http.Response, 1)
			go func() {
				req, _ := http.NewRequest("GET", b.url("/big"), nil)
				resp, err := p.RoundTrip(req)
				if err != nil {
					t.Error(err)
				}
				bigc <- resp
			}()
			var resp *http.Response
			gotBig.wait(t) // /big is on the wire
			if !behind {
				resp = <-bigc // its head is in: /small can only wait
			}
			start := time.Now()
			small := goRoundTrip(p, "GET", b.url("/small"), nil)
			if behind {
				resp = <-bigc
			}
			if resp == nil {
				t.FailNow()
			}
			r := wait(t, small) // the big body is not read yet
			t.Logf("/small answered after %v, while a %d-byte body ahead of it was unread", time.Since(start), big)
			if r.body != "/small" {
				t.Errorf("/small: %v", r)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if n != big || err != nil {
				t.Errorf("big body: %d bytes, %v", n, err)
			}
			if st := stats(t, p); behind && st.HOLResends != 1 {
				t.Errorf("%+v, want one HOL resend", st)
			}
		})
	}
}

// TestClose: closing the pool fails the calls waiting or in flight and
// every later call.
func TestClose(t *testing.T) {
	release := newSignal()
	b := newRawBackend(t, connServe(release))
	defer release.fire()
	p := testPool(t, func(s *Settings) { s.Workers = 1 })
	inFlight := goRoundTrip(p, "GET", b.url("/hold"), nil)
	waitFor(t, "/hold in flight", func() bool { return stats(t, p).InFlight == 1 })
	queued := goRoundTrip(p, "GET", b.url("/queued"), nil)
	waitFor(t, "/queued waiting", func() bool { return stats(t, p).Waiting == 1 })
	p.Close()
	for _, r := range []result{wait(t, inFlight), wait(t, queued), roundTrip(p, "GET", b.url("/later"), nil)} {
		if r.err == nil {
			t.Errorf("%v, want an error", r)
		}
	}
}

// TestCancelQueued: a request still waiting for a connection when its
// client goes away is never sent.
func TestCancelQueued(t *testing.T) {
	var mu sync.Mutex
	var got []string
	release := newSignal()
	b := newRawBackend(t, func(c *rawConn) {
		c.each(func(req *http.Request) bool {
			mu.Lock()
			got = append(got, req.URL.Path)
			mu.Unlock()
			if req.URL.Path == "/hold" {
				release.wait(t)
			}
			c.write(ok(req.URL.Path))
			return true
		})
	})
	p := testPool(t, func(s *Settings) { s.Workers = 1 })
	hold := goRoundTrip(p, "GET", b.url("/hold"), nil)
	waitFor(t, "/hold in flight", func() bool { return stats(t, p).InFlight == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan result, 1)
	go func() { gone <- roundTripCtx(ctx, p, "GET", b.url("/gone"), nil) }()
	waitFor(t, "/gone queued", func() bool { return stats(t, p).Waiting == 1 })
	cancel()
	if r := wait(t, gone); !errors.Is(r.err, context.Canceled) {
		t.Errorf("/gone: %v, want context.Canceled", r)
	}
	release.fire()
	wait(t, hold)
	roundTrip(p, "GET", b.url("/after"), nil)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, " ") != "/hold /after" {
		t.Errorf("backend saw %q, want /hold /after", got)
	}
}

// TestCancelPipelined: a pipelined request whose client goes away is
// answered by the backend all the same; that answer is read and dropped,
// and the next request on the connection gets its own.
func TestCancelPipelined(t *testing.T) {
	arrived := make(chan string, 4)
	answer := newSignal()
	b := newRawBackend(t, func(c *rawConn) {
		var reqs []*http.Request
		for len(reqs) < 2 {
			req, _, err := c.request()
			if err != nil {
				return
			}
			arrived <- req.URL.Path
			reqs = append(reqs, req)
		}
		answer.wait(t)
		for _, r := range reqs {
			c.write(ok(r.URL.Path))
		}
		echoServe(c)
	})
	p := testPool(t, func(s *Settings) { s.Workers, s.PipelineDepth, s.Probation = 1, 4, 0 })
	a := goRoundTrip(p, "GET", b.url("/a"), nil)
	<-arrived
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan result, 1)
	go func() { gone <- roundTripCtx(ctx, p, "GET", b.url("/gone"), nil) }()
	<-arrived
	cancel()
	if r := wait(t, gone); !errors.Is(r.err, context.Canceled) {
		t.Errorf("/gone: %v", r)
	}
	answer.fire()
	if r := wait(t, a); r.body != "/a" {
		t.Errorf("/a: %v", r)
	}
	if r := roundTrip(p, "GET", b.url("/c"), nil); r.body != "/c" {
		t.Errorf("/c: %v (never the dropped answer)", r)
	}
	if n := b.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestAbandonedBody: a response body its client stops reading is drained
// when little is left (the connection is kept), and the connection is
// closed otherwise; its bytes never reach another caller.
func TestAbandonedBody(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		drained bool
	}{
		{"small rest drained", 100 << 10, true},
		{"large rest closed", 4 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newRawBackend(t, func(c *rawConn) {
				c.each(func(req *http.Request) bool {
					if req.URL.Path == "/big" {
						c.write(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", tc.size, strings.Repeat("x", tc.size)))
						return true
					}
					c.write(ok(req.URL.Path))
					return true
				})
			})
			p := testPool(t, func(s *Settings) { s.Workers, s.HOLTimeout = 1, Never })
			req, _ := http.NewRequest("GET", b.url("/big"), nil)
			resp, err := p.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			io.ReadFull(resp.Body, buf)
			resp.Body.Close()
			if r := roundTrip(p, "GET", b.url("/next"), nil); r.body != "/next" {
				t.Errorf("%v", r)
			}
			st := stats(t, p)
			if kept := b.accepted.Load() == 1; kept != tc.drained || (st.Drained == 1) != tc.drained {
				t.Errorf("connections %d, drained %d; want drained=%t", b.accepted.Load(), st.Drained, tc.drained)
			}
		})
	}
}

// TestCancelStalledBody: a client that goes away while the backend
// stalls in the middle of a streamed body unblocks its read.
func TestCancelStalledBody(t *testing.T) {
	b := newRawBackend(t, func(c *rawConn) {
		if _, _, err := c.request(); err != nil {
			return
		}
		c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
		io.Copy(io.Discard, c.br) // stall
	})
	p := testPool(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", b.url("/sse"), nil)
	resp, err := p.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("first chunk: %q %v", buf, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := resp.Body.Read(buf)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("read after cancel: no error")
		}
	case <-time.After(hang):
		t.Fatal("read still blocked after cancel")
	}
	resp.Body.Close()
	waitFor(t, "the connection closed", func() bool { return stats(t, p).Open == 0 })
}

// TestTimeouts: request_timeout and call_timeout give errors that are
// net.Error timeouts (504).
func TestTimeouts(t *testing.T) {
	release := newSignal()
	var mu sync.Mutex
	var got []string
	b := newHoldingBackend(t, release, func(path string) {
		mu.Lock()
		got = append(got, path)
		mu.Unlock()
	})
	t.Run("request_timeout", func(t *testing.T) {
		p := testPool(t, func(s *Settings) { s.RequestTimeout = 50 * time.Millisecond })
		r := roundTrip(p, "GET", b.url("/never"), nil)
		var ne net.Error
		if !errors.As(r.err, &ne) || !ne.Timeout() || !errors.Is(r.err, context.DeadlineExceeded) {
			t.Errorf("%v, want a timeout", r)
		}
		waitFor(t, "the late connection closed", func() bool { return stats(t, p).Open == 0 })
	})
	t.Run("call_timeout while queued", func(t *testing.T) {
		p := testPool(t, func(s *Settings) { s.Workers, s.CallTimeout, s.HOLTimeout = 1, 50*time.Millisecond, Never })
		hold := goRoundTrip(p, "GET", b.url("/hold"), nil)
		waitFor(t, "/hold in flight", func() bool { return stats(t, p).InFlight == 1 })
		r := roundTrip(p, "GET", b.url("/queued"), nil)
		var ne net.Error
		if !errors.As(r.err, &ne) || !ne.Timeout() {
			t.Errorf("%v, want a timeout", r)
		}
		release.fire()
		if r := wait(t, hold); r.body != "hold" {
			t.Errorf("/hold: %v", r)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, g := range got {
			if g == "/queued" {
				t.Errorf("the queued request was sent after its caller gave up")
			}
		}
	})
}

// TestNoPipelineFreshConnections: req.Close (nopipeline) gets a new
// connection each time, says "Connection: close" and closes it after.
func TestNoPipelineFreshConnections(t *testing.T) {
	var mu sync.Mutex
	var closes []bool
	b := newRawBackend(t, func(c *rawConn) {
		c.each(func(req *http.Request) bool {
			mu.Lock()
			closes = append(closes, req.Close)
			mu.Unlock()
			c.write(ok(req.URL.Path))
			return true
		})
	})
	p := testPool(t, func(s *Settings) { s.Workers = 1 })
	roundTrip(p, "GET", b.url("/pooled"), nil) // an idle pooled connection holds the only slot
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("GET", b.url("/np"), nil)
		req.Close = true
		resp, err := p.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	waitFor(t, "every connection closed", func() bool { return stats(t, p).Open == 0 })
	if n := b.accepted.Load(); n != 4 {
		t.Errorf("%d connections, want 4", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(closes) != "[false true true true]" {
		t.Errorf("Connection: close seen %v", closes)
	}
}

// TestDialErrors: a backend that refuses gives a non-timeout error to
// every waiting call.
func TestDialErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := testPool(t, func(s *Settings) { s.Workers = 2 })
	var chs []<-chan result
	for i := 0; i < 5; i++ {
		chs = append(chs, goRoundTrip(p, "GET", "http://"+addr+"/", nil))
	}
	for _, ch := range chs {
		r := wait(t, ch)
		var oe *net.OpError
		if !errors.As(r.err, &oe) || isTimeout(r.err) {
			t.Errorf("%v, want a dial error", r)
		}
	}
}

// TestIdleTimeout: idle connections are closed after IdleTimeout.
func TestIdleTimeout(t *testing.T) {
	closed := newSignal()
	b := newRawBackend(t, func(c *rawConn) {
		echoServe(c)
		if c.n == 1 {
			closed.fire()
		}
	})
	p := testPool(t, func(s *Settings) { s.IdleTimeout = time.Minute })
	roundTrip(p, "GET", b.url("/a"), nil)
	p.reap(time.Now(), false)
	if stats(t, p).Open != 1 {
		t.Errorf("closed before its idle timeout")
	}
	p.reap(time.Now().Add(time.Minute), false)
	closed.wait(t)
	if stats(t, p).Open != 0 {
		t.Errorf("still open after its idle timeout")
	}
}
