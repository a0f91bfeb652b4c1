package http1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

const (
	// hotCutBy is when the sweeper has cut a hot wait at the latest.
	hotCutBy = (hotTicks + 1) * watchTick
	// hotLate is the slack given to timers on a busy machine.
	hotLate = 800 * time.Millisecond
)

// TestHotWait checks the hot wait, over plain TCP and over TLS: right after an answer the connection
// waits on its worker (counted in workers.hot); a pause longer than the
// hot wait hands it to a waiting goroutine (the count drops to zero) and
// its next request is still answered; after the cut, the idle bound is
// still IdleTimeout (the sweeper's past deadline is replaced), and a
// partial head is still bounded by HeaderTimeout.
func TestHotWait(t *testing.T) {
	const (
		idle   = 1500 * time.Millisecond
		header = 400 * time.Millisecond
		cutBy  = hotCutBy
		late   = hotLate
	)
	tests := []struct {
		name string
		// pauses are waited before each request after the first.
		pauses []time.Duration
		// tail is written after the last answer (a partial head), or "".
		tail     string
		min, max time.Duration
	}{
		{"answered within the hot wait", []time.Duration{cutBy / 4, 0}, "", idle, idle + idleSlack(idle) + late},
		{"answered after the cut", []time.Duration{3 * cutBy}, "", idle, idle + idleSlack(idle) + late},
		{"hot, cut, hot", []time.Duration{0, 3 * cutBy, cutBy / 4}, "", idle, idle + idleSlack(idle) + late},
		{"partial head in the hot wait", nil, "GET /y HTTP/1.1\r\nHost: h\r\n", header, header + late},
		{"partial head after the cut", []time.Duration{3 * cutBy}, "GET /y HTTP/1.1\r\nHost: h\r\n", header, header + late},
	}
	for _, tt := range tests {
		for _, overTLS := range []bool{false, true} {
			name := tt.name
			if overTLS {
				name += " over TLS"
			}
			t.Run(name, func(t *testing.T) {
				s, c := startHot(t, overTLS, func(o *Options) {
					o.IdleTimeout, o.HeaderTimeout = idle, header
				})
				testHotWait(t, s, c, tt.pauses, tt.tail, tt.min, tt.max)
			})
		}
	}
}

// startHot starts a server answering with echo, over TLS or not, its
// bounds changed by opts, and returns it with a client connection.
func startHot(t *testing.T, overTLS bool, opts ...func(*Options)) (*Server, net.Conn) {
	t.Helper()
	if !overTLS {
		s, addr := startH1(t, http.HandlerFunc(echo), opts...)
		return s, dialH1(t, addr)
	}
	s, addr, roots := startTLS(t, http.HandlerFunc(tlsEcho), nil, opts...)
	c, _ := dialTLS(t, addr, roots, "http/1.1")
	return s, c
}

// testHotWait is one case of TestHotWait on the client connection c of s:
// two requests, then one after each of pauses, then tail, and the close
// by the server within [min, max] of the last answer.
func testHotWait(t *testing.T, s *Server, c net.Conn, pauses []time.Duration, tail string, min, max time.Duration) {
	br := bufio.NewReader(c)
	answer := func(i int) {
		t.Helper()
		if b := getAnswered(t, c, br); b != "GET /x " {
			t.Fatalf("answer %d: %q", i, b)
		}
	}
	// Two requests: a connection waits hot from its second on.
	answer(0)
	answer(0)
	for i, p := range pauses {
		if p >= hotCutBy {
			waitHotCount(t, s, 1, hotCutBy)
			time.Sleep(p)
			waitHotCount(t, s, 0, hotLate)
		} else {
			time.Sleep(p)
		}
		answer(i + 1)
	}
	last := time.Now()
	if tail != "" {
		io.WriteString(c, tail)
	}
	d := closedAfter(t, c, br, last, max+time.Second)
	if d < min || d > max {
		t.Errorf("closed %v after the last answer, want within [%v, %v]", d, min, max)
	}
	if n := s.workers.hot.Load(); n != 0 {
		t.Errorf("%d connections counted as waiting hot after the close", n)
	}
}

// waitHotCount waits up to d for the server's count of hot waits to be n.
func waitHotCount(t *testing.T, s *Server, n int32, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		got := s.workers.hot.Load()
		if got == n {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%d connections waiting hot after %v, want %d", got, d, n)
		}
	}
}

// TestHotWaitBounded checks that at most maxHot connections wait hot, that
// a connection waits hot only from its second request on, and that short
// idle bounds turn the hot wait off.
func TestHotWaitBounded(t *testing.T) {
	t.Run("maxHot", func(t *testing.T) {
		s, addr := startH1(t, http.HandlerFunc(echo))
		s.workers.hot.Store(maxHot) // as many as may wait hot already
		c := dialH1(t, addr)
		br := bufio.NewReader(c)
		for range 2 {
			getAnswered(t, c, br)
			time.Sleep(20 * time.Millisecond)
			if n := s.workers.hot.Load(); n != maxHot {
				t.Fatalf("%d waiting hot, want %d: the bound was passed", n, maxHot)
			}
		}
		s.workers.hot.Store(0)
	})
	t.Run("one request", func(t *testing.T) {
		s, addr := startH1(t, http.HandlerFunc(echo))
		c := dialH1(t, addr)
		br := bufio.NewReader(c)
		for i := range 2 {
			getAnswered(t, c, br)
			want := int32(i) // hot from the second answer on
			waitHotCount(t, s, want, time.Second)
		}
	})
	t.Run("short idle bound", func(t *testing.T) {
		s, addr := startH1(t, http.HandlerFunc(echo), func(o *Options) { o.IdleTimeout = hotWaitMinIdle / 2 })
		c := dialH1(t, addr)
		br := bufio.NewReader(c)
		for range 2 { // two: the second would wait hot
			getAnswered(t, c, br)
		}
		time.Sleep(20 * time.Millisecond)
		if n := s.workers.hot.Load(); n != 0 {
			t.Fatalf("%d waiting hot with an idle bound of %v", n, hotWaitMinIdle/2)
		}
	})
}

// getAnswered sends a GET of /x on c and returns the body of its answer,
// read from br.
func getAnswered(t *testing.T, c net.Conn, br *bufio.Reader) string {
	t.Helper()
	if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("answer body: %v", err)
	}
	return string(b)
}

// closedAfter waits up to wait for the server to close c (br reads EOF)
// and returns how long after last that came; it fails t when c stays
// open or reads anything else.
func closedAfter(t *testing.T, c net.Conn, br *bufio.Reader, last time.Time, wait time.Duration) time.Duration {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := br.ReadByte()
	d := time.Since(last)
	if !errors.Is(err, io.EOF) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %v", d)
		}
		rest, _ := br.Peek(br.Buffered())
		t.Fatalf("read after the last answer: %v, want EOF (read %q after %v)", err, rest, d)
	}
	return d
}
