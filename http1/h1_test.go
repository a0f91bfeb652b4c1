package http1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startH1 serves h with an Server, its bounds changed by opts, on a loopback port
// and returns its address; the server is shut down at the end of the test.
func startH1(t *testing.T, h http.Handler, opts ...func(*Options)) (*Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{HeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, MaxHeaderBytes: 4096}
	for _, f := range opts {
		f(&o)
	}
	s := NewServer(h, o, nil)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("Serve: %v, want http.ErrServerClosed", err)
		}
	})
	return s, l.Addr().String()
}

// exchange writes req on a new connection and reads every response until
// the server closes the connection or answers want responses.
func exchange(t *testing.T, addr, req string, want int) ([]*http.Response, []string, bool) {
	t.Helper()
	c := dialH1(t, addr)
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var resps []*http.Response
	var bodies []string
	for len(resps) < want {
		resp, err := http.ReadResponse(br, &http.Request{Method: methodOf(req, len(resps))})
		if err != nil {
			return resps, bodies, true
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return resps, bodies, true // a truncated answer
		}
		resps = append(resps, resp)
		bodies = append(bodies, string(b))
	}
	// Is the connection still open? A closed one reads EOF at once.
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := br.Peek(1)
	var ne net.Error
	open := errors.As(err, &ne) && ne.Timeout()
	return resps, bodies, !open
}

// dialH1 connects to addr with a 5 s deadline; the connection is closed
// at the end of the test.
func dialH1(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// methodOf returns the method of the i-th request line in req.
func methodOf(req string, i int) string {
	n := 0
	for _, line := range strings.Split(req, "\r\n") {
		for _, m := range []string{"GET ", "HEAD ", "POST "} {
			if strings.HasPrefix(line, m) {
				if n == i {
					return strings.TrimSpace(m)
				}
				n++
			}
		}
	}
	return "GET"
}

// echo answers with the method, path and body it received.
func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	switch r.URL.Path {
	case "/stream":
		// No Content-Length: chunked in HTTP/1.1, close-delimited in 1.0.
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "part1,")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part2")
		return
	case "/nocontent":
		w.Header().Set("Content-Length", "5")
		w.WriteHeader(http.StatusNoContent)
		io.WriteString(w, "ghost")
		return
	case "/short":
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "short")
		return
	case "/close":
		w.Header().Set("Connection", "close")
	}
	body := fmt.Sprintf("%s %s %s", r.Method, r.URL.Path, b)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	io.WriteString(w, body)
}

// TestH1Framing checks the answers' framing and when the connection is
// kept, for the shapes of request and answer a client can meet.
func TestH1Framing(t *testing.T) {
	_, addr := startH1(t, http.HandlerFunc(echo))
	tests := []struct {
		name   string
		req    string
		n      int
		bodies []string
		// header checks on the last response: name -> value ("" absent).
		header map[string]string
		closed bool
	}{
		{"keep-alive", "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 1, []string{"GET /a "}, map[string]string{"Connection": "", "Content-Length": "7"}, false},
		{"pipelined in order", "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: h\r\n\r\n", 3,
			[]string{"GET /1 ", "POST /2 abc", "GET /3 "}, nil, false},
		{"chunked request body", "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 1, []string{"POST /c abcde"}, nil, false},
		{"client asks to close", "GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 1, []string{"GET /a "}, map[string]string{"Connection": "close"}, true},
		{"handler asks to close", "GET /close HTTP/1.1\r\nHost: h\r\n\r\n", 1, []string{"GET /close "}, map[string]string{"Connection": "close"}, true},
		{"HTTP/1.0 closes", "GET /a HTTP/1.0\r\n\r\n", 1, []string{"GET /a "}, map[string]string{"Connection": "close"}, true},
		{"HTTP/1.0 keep-alive", "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1, []string{"GET /a "}, map[string]string{"Connection": "keep-alive"}, false},
		{"unknown length chunked", "GET /stream HTTP/1.1\r\nHost: h\r\n\r\n", 1, []string{"part1,part2"}, map[string]string{"Transfer-Encoding": "chunked"}, false},
		{"unknown length in 1.0 ends with the connection", "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1, []string{"part1,part2"}, map[string]string{"Connection": "close"}, true},
		{"HEAD keeps Content-Length, no body", "HEAD /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n", 2, []string{"", "GET /b "}, nil, false},
		{"204 drops Content-Length and body", "GET /nocontent HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n", 2, []string{"", "GET /b "}, nil, false},
		{"short body closes", "GET /short HTTP/1.1\r\nHost: h\r\n\r\n", 0, nil, nil, true},
		{"leading CRLF after a POST", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx\r\nGET /g HTTP/1.1\r\nHost: h\r\n\r\n", 2, []string{"POST /p x", "GET /g "}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resps, bodies, closed := exchange(t, addr, tt.req, max(tt.n, 1))
			if len(resps) != tt.n {
				t.Fatalf("%d responses (%q), want %d", len(resps), bodies, tt.n)
			}
			for i, want := range tt.bodies {
				if bodies[i] != want {
					t.Errorf("response %d body %q, want %q", i, bodies[i], want)
				}
			}
			if tt.n > 0 {
				last := resps[len(resps)-1]
				for k, want := range tt.header {
					// net/http's client moves these out of the header.
					got := strings.Join(last.Header[k], ",")
					switch {
					case k == "Transfer-Encoding":
						got = strings.Join(last.TransferEncoding, ",")
					case k == "Connection" && last.Close:
						got = "close"
					}
					if got != want {
						t.Errorf("%s: %q, want %q", k, got, want)
					}
				}
				if d := last.Header.Get("Date"); d == "" {
					t.Error("no Date")
				}
			}
			if closed != tt.closed {
				t.Errorf("connection closed %v, want %v", closed, tt.closed)
			}
		})
	}
}

// TestH1Refusals checks the answers to requests refused before any
// handler runs: each closes the connection.
func TestH1Refusals(t *testing.T) {
	_, addr := startH1(t, http.HandlerFunc(echo))
	tests := []struct {
		name, req string
		status    int
	}{
		{"head over the bound", "GET /a HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("b", 10000) + "\r\n\r\n", 431},
		{"HTTP/2.0 GET", "GET /a HTTP/2.0\r\nHost: h\r\n\r\n", 505},
		{"unsupported coding", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"header name with space", "GET /a HTTP/1.1\r\nHost: h\r\nX Y: 1\r\n\r\n", 400},
		{"garbage", "hello\r\n\r\n", 400},
		{"unknown expectation", "POST /a HTTP/1.1\r\nHost: h\r\nExpect: tea\r\nContent-Length: 1\r\n\r\nx", 417},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resps, _, closed := exchange(t, addr, tt.req, 1)
			if len(resps) != 1 || resps[0].StatusCode != tt.status {
				t.Fatalf("responses %v, want one %d", statusesOf(resps), tt.status)
			}
			if !closed {
				t.Error("connection kept after a refusal")
			}
		})
	}
}

func statusesOf(resps []*http.Response) []int {
	var s []int
	for _, r := range resps {
		s = append(s, r.StatusCode)
	}
	return s
}

// TestH1ExpectContinue checks that 100 (Continue) is sent when the handler
// reads the body, and only then.
func TestH1ExpectContinue(t *testing.T) {
	_, addr := startH1(t, http.HandlerFunc(echo))
	expectContinue(t, dialH1(t, addr))
}

// expectContinue sends a POST with "Expect: 100-continue" on c, checks
// that the interim answer comes before the body is sent, then that the
// echo handler answers "POST /e body".
func expectContinue(t *testing.T, c io.ReadWriter) {
	t.Helper()
	io.WriteString(c, "POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q (%v), want 100 Continue", line, err)
	}
	if l, _ := br.ReadString('\n'); l != "\r\n" {
		t.Fatalf("interim head not ended: %q", l)
	}
	io.WriteString(c, "body")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "POST /e body" {
		t.Errorf("%d %q, want 200 \"POST /e body\"", resp.StatusCode, b)
	}
}

// TestH1ClientGone checks that a request whose client went away has its
// context cancelled, so that the backend call is abandoned.
func TestH1ClientGone(t *testing.T) {
	cancelled := make(chan time.Duration, 1)
	_, addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		select {
		case <-r.Context().Done():
			cancelled <- time.Since(start)
		case <-time.After(5 * time.Second):
			cancelled <- -1
		}
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	c.Close()
	if d := <-cancelled; d < 0 {
		t.Fatal("the handler's context was not cancelled within 5 s of the client leaving")
	} else {
		t.Logf("cancelled %v after the request started", d)
	}
}

// TestH1WatchKeepsPipelinedRequest checks that a request arriving while
// the previous one runs long (the connection is watched) is answered.
func TestH1WatchKeepsPipelinedRequest(t *testing.T) {
	_, addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(3 * watchDelay)
		}
		echo(w, r)
	}))
	c := dialH1(t, addr)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(2 * watchDelay) // the watch is reading now
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"GET /slow ", "GET /next "} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != want {
			t.Errorf("body %q, want %q", b, want)
		}
	}
}

// TestH1EndAnswer checks that EndAnswer sends the answer at once, before
// the handler returns (the engine then writes the access line), and that
// an answer whose connection already holds the next, pipelined, request
// waits to go out with that request's answer.
func TestH1EndAnswer(t *testing.T) {
	proceed := make(chan struct{}) // the test lets the handler return
	_, addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		echo(w, r)
		if r.URL.Path == "/first" {
			w.(interface{ EndAnswer() }).EndAnswer()
			select {
			case <-proceed:
			case <-time.After(5 * time.Second):
			}
		}
	}))
	c := dialH1(t, addr)
	br := bufio.NewReader(c)
	read := func(want string) {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the answer %q: %v", want, err)
		}
		if b, _ := io.ReadAll(resp.Body); string(b) != want {
			t.Errorf("body %q, want %q", b, want)
		}
	}
	// Alone: the answer comes while the handler waits.
	io.WriteString(c, "GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	read("GET /first ")
	proceed <- struct{}{}

	// Pipelined: no answer while the handler of the first waits.
	io.WriteString(c, "GET /first HTTP/1.1\r\nHost: h\r\n\r\nGET /second HTTP/1.1\r\nHost: h\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := br.Peek(1); err == nil {
		t.Errorf("an answer to pipelined requests was sent before the handler returned")
	}
	proceed <- struct{}{}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	read("GET /first ")
	read("GET /second ")
}

// TestH1EndAnswerBodyInFlight checks that EndAnswer leaves an early answer,
// given while the request's body is still being read (as the pool's body
// writer reads it), to the server: it goes out once the handler has
// returned, and EndAnswer does not touch the connection's reader meanwhile
// (the race detector watches that).
func TestH1EndAnswerBodyInFlight(t *testing.T) {
	_, addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		read := make(chan struct{})
		go func() {
			io.Copy(io.Discard, r.Body)
			close(read)
		}()
		io.WriteString(w, "early")
		w.(interface{ EndAnswer() }).EndAnswer()
		select {
		case <-read:
		case <-time.After(5 * time.Second):
		}
	}))
	c := dialH1(t, addr)
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := br.Peek(1); err == nil {
		t.Errorf("the answer was sent while the body was being read")
	}
	io.WriteString(c, "0\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "early" {
		t.Errorf("body %q, want %q", b, "early")
	}
}

// TestH1Panic checks that a handler's panic closes its connection only.
func TestH1Panic(t *testing.T) {
	_, addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "part")
			panic(http.ErrAbortHandler)
		}
		echo(w, r)
	}))
	c := dialH1(t, addr)
	io.WriteString(c, "GET /panic HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != io.ErrUnexpectedEOF {
		t.Errorf("truncated body read %v, want io.ErrUnexpectedEOF", err)
	}
	if resps, bodies, _ := exchange(t, addr, "GET /after HTTP/1.1\r\nHost: h\r\n\r\n", 1); len(resps) != 1 || bodies[0] != "GET /after " {
		t.Errorf("after the panic: %q", bodies)
	}
}

// TestH1Shutdown checks that a graceful shutdown closes idle connections
// at once, lets a running request finish with Connection: close, and
// returns.
func TestH1Shutdown(t *testing.T) {
	release := make(chan struct{})
	s, addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			<-release
		}
		echo(w, r)
	}))
	idle := dialH1(t, addr)
	io.WriteString(idle, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
	ibr := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(ibr, nil); err != nil {
		t.Fatal(err)
	} else {
		io.ReadAll(resp.Body)
	}
	busy := dialH1(t, addr)
	io.WriteString(busy, "GET /wait HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(50 * time.Millisecond)

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	if _, err := ibr.Peek(1); err != io.EOF {
		t.Errorf("idle connection: %v, want io.EOF", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request running", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "GET /wait " || !resp.Close {
		t.Errorf("running request: %q, close %v; want its answer with Connection: close", b, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("new connection accepted after Shutdown")
	}
}

// streamConn is a net.Conn whose reads come from a fixed stream (then
// io.EOF) and whose writes are collected.
type streamConn struct {
	mu     sync.Mutex
	in     *strings.Reader
	out    strings.Builder
	once   sync.Once
	closed chan struct{} // closed by Close
}

func (c *streamConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.in.Read(p)
}

func (c *streamConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}

func (c *streamConn) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

func (c *streamConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *streamConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (c *streamConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}
}
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzH1Conn serves arbitrary client streams. The server must not panic;
// what it writes must parse as a sequence of whole HTTP/1.1 answers; and
// it must never hand the handler more requests than net/http's own
// parser reads off the stream (its refusals are a superset).
func FuzzH1Conn(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\nHEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET /stream HTTP/1.0\r\n\r\n",
		"POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
		"GET /nocontent HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stream string) {
		var calls atomic.Int32
		s := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			if err := w.(interface{ FramingError() error }).FramingError(); err != nil {
				w.Header().Set("Connection", "close")
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			if r.Method == http.MethodHead {
				return // read as GET below: an empty answer
			}
			echo(w, r)
		}), Options{MaxHeaderBytes: 1024}, log.New(io.Discard, "", 0))
		s.conns = map[*h1Conn]struct{}{}
		conn := &streamConn{in: strings.NewReader(stream), closed: make(chan struct{})}
		c := s.newConn(conn, nil)
		c.wait() // hands the connection to a worker, which serves until the stream ends
		select {
		case <-conn.closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("connection not closed 10 s after its stream %q ended", stream)
		}
		br := bufio.NewReader(strings.NewReader(conn.output()))
		answers := 0
		for {
			if _, err := br.Peek(1); err == io.EOF {
				break
			}
			resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatalf("answer %d unreadable: %v\nstream %q\noutput %q", answers, err, stream, conn.output())
			}
			if resp.StatusCode == http.StatusContinue {
				continue
			}
			io.Copy(io.Discard, resp.Body)
			answers++
		}
		n, _ := netHTTPRequests([]byte(stream))
		if int(calls.Load()) > n {
			t.Fatalf("handler called %d times, net/http reads %d requests from %q", calls.Load(), n, stream)
		}
		if int(calls.Load()) > answers {
			t.Fatalf("handler called %d times, %d answers", calls.Load(), answers)
		}
	})
}

// TestH1WriteTimeout checks that a client that stops reading is cut off
// after the write timeout: the handler's write fails instead of blocking
// for ever. A chunked answer is written by writev (each chunk's size,
// buffered, then the chunk); one of known length by raw writes
// (TestH1RawWrite). Either way the error is net.Conn's.
func TestH1WriteTimeout(t *testing.T) {
	for _, tc := range []struct {
		name   string
		length bool
		op     string
	}{
		{"chunked", false, "writev"},
		{"length", true, "write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			_, addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				chunk := make([]byte, 32<<10)
				if tc.length {
					w.Header().Set("Content-Length", strconv.Itoa(2048*len(chunk)))
				}
				for i := 0; i < 2048; i++ { // 64 MiB, far over the socket buffers
					if _, err := w.Write(chunk); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}), func(o *Options) { o.WriteTimeout = 200 * time.Millisecond })
			c := dialH1(t, addr)
			io.WriteString(c, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
			// The client reads nothing.
			select {
			case err := <-done:
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Errorf("handler's write ended with %v, want a timeout", err)
				}
				var oe *net.OpError
				if !errors.As(err, &oe) || oe.Op != tc.op || oe.Net != "tcp" || oe.Addr == nil {
					t.Errorf("handler's write ended with %#v, want a *net.OpError of Op %q", err, tc.op)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the handler's write still blocked 5 s after the client stopped reading")
			}
		})
	}
}

// TestH1RawWrite checks that a plain TCP connection's answers are
// written to the socket itself (connWriter.raw) and arrive whole when the
// socket's buffer fills: the client reads nothing for a while, so writes
// stop at EAGAIN and wait for room, several times.
func TestH1RawWrite(t *testing.T) {
	const chunk, chunks = 32 << 10, 64 // 2 MiB, far over the socket buffers
	body := make([]byte, chunk)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	s, addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(chunk*chunks))
		for range chunks {
			if _, err := w.Write(body); err != nil {
				t.Errorf("handler's write: %v", err)
				return
			}
		}
	}))
	c := dialH1(t, addr)
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(100 * time.Millisecond) // the server fills the socket's buffer
	s.mu.Lock()
	raw := 0
	for hc := range s.conns {
		if hc.out.raw {
			raw++
		}
	}
	s.mu.Unlock()
	if raw != 1 {
		t.Errorf("%d connections write raw, want the one", raw)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("body: %v after %d bytes", err, len(got))
	}
	if len(got) != chunk*chunks {
		t.Fatalf("body of %d bytes, want %d", len(got), chunk*chunks)
	}
	for i := 0; i < len(got); i += chunk {
		if !bytes.Equal(got[i:i+chunk], body) {
			t.Fatalf("body differs in bytes %d to %d", i, i+chunk)
		}
	}
}

// TestH1VerdictAfterPOSTCRLF checks that the CR and LF a server passes
// over after a POST do not shift the framing verdicts: a request carrying
// both Content-Length and Transfer-Encoding after "\r\r\n\n" is refused.
// The tracker once read those four bytes as a head of its own, and the
// smuggled request got that head's verdict (none). Each part of the
// stream comes in a read of its own, on a connection that has answered
// two requests, as a keep-alive client sends them; and all at once.
func TestH1VerdictAfterPOSTCRLF(t *testing.T) {
	_, addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := w.(interface{ FramingError() error }).FramingError(); err != nil {
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		echo(w, r)
	}))
	parts := []string{
		"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
		"\r\r\n\nGET /s HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	}
	want := []int{200, 200, 400}
	t.Run("apart", func(t *testing.T) {
		c := dialH1(t, addr)
		br := bufio.NewReader(c)
		for i, p := range parts {
			if _, err := io.WriteString(c, p); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, &http.Request{Method: methodOf(p, 0)})
			if err != nil {
				t.Fatalf("answer %d: %v", i, err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != want[i] {
				t.Fatalf("answer %d: %d, want %d", i, resp.StatusCode, want[i])
			}
		}
	})
	t.Run("together", func(t *testing.T) {
		resps, _, _ := exchange(t, addr, strings.Join(parts, ""), 3)
		if got := statusesOf(resps); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("answers %v, want %v", got, want)
		}
	})
}
