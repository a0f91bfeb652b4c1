package http1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/wire"
)

// TestH1ReadBounds checks the read deadlines of a kept connection now
// that they are moved only when needed: the idle bound is never shorter
// than IdleTimeout (and at most idleSlack longer), a head that is not
// whole is still bounded by HeaderTimeout, and a body is bounded by
// neither.
func TestH1ReadBounds(t *testing.T) {
	const (
		idle   = 400 * time.Millisecond
		header = 300 * time.Millisecond
		early  = 20 * time.Millisecond  // the client's clock starts before the server's
		late   = 800 * time.Millisecond // scheduling on a loaded machine
	)
	get := "GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
	slow := "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"
	tests := []struct {
		name string
		// steps are written in turn; a step "" waits pause; every
		// whole request is answered before the next step.
		steps  []string
		pause  time.Duration
		answer int // answers expected
		// min and max bound the time from the last answer (or step) to
		// the server closing the connection.
		min, max time.Duration
		idle     time.Duration // default idle
		header   time.Duration // default header
	}{
		{"idle", []string{get}, 0, 1, idle - early, idle + idleSlack(idle) + late, 0, 0},
		{"idle after a watched request", []string{slow}, 0, 1, idle - early, idle + idleSlack(idle) + late, 0, 0},
		{"idle bound moved by a later request", []string{get, "", get}, idle / 2, 2, idle - early, idle + idleSlack(idle) + late, 0, 0},
		{"idle bound moved after a short wait", []string{get, "", get}, idleSlack(idle) / 2, 2, idle - early, idle + idleSlack(idle) + late, 0, 0},
		// The first request's head bound is longer than the idle bound.
		{"idle bound shorter than the first head bound", []string{get}, 0, 1, idle - early, idle + idleSlack(idle) + late, 0, 10 * idle},
		{"partial head on a kept connection", []string{get, "GET /y HTTP/1.1\r\nHost: h\r\n"}, 0, 1, header - early, header + late, 0, 0},
		// The idle bound is too long to pass for the head bound.
		{"partial head, long idle bound", []string{get, "GET /y HTTP/1.1\r\nHost: h\r\n"}, 0, 1, header - early, header + late, 3 * idle, 0},
		{"partial head, then idle bound", []string{get, "GET /y HTTP/1.1\r\nHo", "st: h\r\n\r\n"}, 0, 2, idle - early, idle + idleSlack(idle) + late, 0, 0},
		// The head's time runs out in the middle of a line: closed
		// without an answer (not a 400 for the partial line).
		{"head cut mid-line", []string{get, "GET /y HTTP/1.1\r\nHo"}, 0, 1, header - early, header + late, 0, 0},
		{"first head cut mid-line", []string{"GET /y HTTP/1.1\r\nX-A: 1\r\nHo"}, 0, 0, header - early, header + late, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					time.Sleep(3 * watchDelay) // the watch runs and clears the deadline
				}
				echo(w, r)
			}), func(o *Options) {
				o.IdleTimeout, o.HeaderTimeout = idle, header
				if tt.idle > 0 {
					o.IdleTimeout = tt.idle
				}
				if tt.header > 0 {
					o.HeaderTimeout = tt.header
				}
			})
			c := dialH1(t, addr)
			br := bufio.NewReader(c)
			answers := 0
			var last time.Time
			for i, step := range tt.steps {
				if step == "" {
					time.Sleep(tt.pause)
					continue
				}
				if _, err := io.WriteString(c, step); err != nil {
					t.Fatal(err)
				}
				last = time.Now()
				for answers < tt.answer && wholeRequests(tt.steps[:i+1]) > answers {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatalf("answer %d: %v", answers+1, err)
					}
					io.ReadAll(resp.Body)
					answers++
					last = time.Now()
				}
			}
			if answers != tt.answer {
				t.Fatalf("%d answers, want %d", answers, tt.answer)
			}
			d := closedAfter(t, c, br, last, tt.max+time.Second)
			if d < tt.min || d > tt.max {
				t.Errorf("closed %v after the last answer, want within [%v, %v]", d, tt.min, tt.max)
			}
			t.Logf("closed %v after the last answer", d)
		})
	}
}

// wholeRequests counts the requests whose head ends in steps.
func wholeRequests(steps []string) int {
	n := 0
	var buf []byte
	for _, s := range steps {
		buf = append(buf, s...)
	}
	for i := 0; i+3 < len(buf); i++ {
		if string(buf[i:i+4]) == "\r\n\r\n" {
			n++
		}
	}
	return n
}

// TestH1BodyNotBoundByIdle checks that a request body that takes longer
// than both the idle and the head bound to arrive is read whole: the idle
// deadline left in place for a whole head must not cut it.
func TestH1BodyNotBoundByIdle(t *testing.T) {
	_, addr := startH1(t, http.HandlerFunc(echo), func(o *Options) {
		o.IdleTimeout, o.HeaderTimeout = 300*time.Millisecond, 200*time.Millisecond
	})
	c := dialH1(t, addr)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	} else {
		io.ReadAll(resp.Body)
	}
	io.WriteString(c, "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n")
	time.Sleep(700 * time.Millisecond)
	io.WriteString(c, "body")
	resp, err := http.ReadResponse(br, &http.Request{Method: "POST"})
	if err != nil {
		t.Fatalf("answer to the slow body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "POST /b body" {
		t.Errorf("body %q, want %q", b, "POST /b body")
	}
}

// TestWatchSweeperEnds checks that the goroutine starting watches ends
// once no request runs, and that a later request starts it again (its
// client going away is still noticed).
func TestWatchSweeperEnds(t *testing.T) {
	cancelled := make(chan bool, 2)
	s, addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled <- true
		case <-time.After(5 * time.Second):
			cancelled <- false
		}
	}))
	for round := range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
		time.Sleep(150 * time.Millisecond)
		if !s.sweeping.Load() {
			t.Errorf("round %d: no sweeper while a request runs", round)
		}
		c.Close()
		if !<-cancelled {
			t.Fatalf("round %d: the handler's context was not cancelled within 5 s of the client leaving", round)
		}
		deadline := time.Now().Add(sweepLinger*watchTick + 3*time.Second)
		for s.sweeping.Load() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the sweeper still runs %v after the last request", round, sweepLinger*watchTick+3*time.Second)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestHeadWhole(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
		{"GET / HTTP/1.1\nHost: h\n\n", true},
		{"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\n", true},
		{"GET / HTTP/1.1\r\nHost: h\r\n", false},
		{"GET / HTTP/1.1\r\nHo", false},
		{"", false},
		{"\r\n", false},
	}
	for _, tt := range tests {
		if got := headWhole([]byte(tt.in)); got != tt.want {
			t.Errorf("headWhole(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestWriteFields checks the header block written, for fields that fit
// the buffer's free space and fields that do not, and values holding CR
// or LF (replaced by spaces).
func TestWriteFields(t *testing.T) {
	long := strings.Repeat("v", 5000)
	tests := []struct {
		name string
		h    http.Header
		want string
	}{
		{"plain", http.Header{"X-A": {"1", "2"}}, "X-A: 1\r\nX-A: 2\r\n"},
		{"framing fields left out", http.Header{"Connection": {"close"}, "Transfer-Encoding": {"chunked"}, "Keep-Alive": {"x"}}, ""},
		{"CR and LF replaced", http.Header{"X-B": {"a\r\nb"}}, "X-B: a  b\r\n"},
		{"larger than the buffer", http.Header{"X-C": {long}}, "X-C: " + long + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out recordingWriter
			bw := newSendBuf(4096)
			bw.Reset(&out)
			bw.WriteString(strings.Repeat("s", 4000)) // little room left
			h := wire.FromHTTP(tt.h)
			writeFields(bw, &h, nil)
			bw.Flush()
			if got := out.String()[4000:]; got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
