package pool

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// settleRecorder is a request's recycler that records whether the pool
// settled the request before its release.
type settleRecorder struct{ recycled bool }

func (s *settleRecorder) Recycle() { s.recycled = true }

// TestSendSettles checks which requests the pool settles (lets go of for
// good when Send returns, so that their memory may be reused) and which
// answers it lets the receiver give back: a bodiless request answered
// with a body read whole is settled and its answer recyclable; a request
// with a body, one on a connection of its own and one whose caller gave
// up are not settled.
func TestSendSettles(t *testing.T) {
	p := testPool(t, nil)
	b := newRawBackend(t, answerEach(func(req *http.Request) string {
		if req.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		return ok(req.URL.Path)
	}))
	tests := []struct {
		name        string
		method      string
		path        string
		body        string
		close       bool
		cancel      bool
		wantSettled bool
	}{
		{"GET answered whole", "GET", "/a", "", false, false, true},
		{"HEAD answered whole", "HEAD", "/h", "", false, false, true},
		{"POST with a body", "POST", "/p", "data", false, false, false},
		{"Connection: close", "GET", "/c", "", true, false, false},
		{"caller gave up", "GET", "/slow", "", false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			hr, err := http.NewRequestWithContext(ctx, tt.method, b.url(tt.path), body)
			if err != nil {
				t.Fatal(err)
			}
			hr.Close = tt.close
			req := wireRequest(t, hr)
			var rec settleRecorder
			req.SetRecycler(&rec)
			if tt.cancel {
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			resp, err := p.Send(req)
			if err == nil {
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if tt.method != "HEAD" && string(got) != tt.path {
					t.Errorf("body %q, want %q", got, tt.path)
				}
				resp.Release()
			} else if !tt.cancel {
				t.Fatalf("Send: %v", err)
			}
			req.Release()
			if rec.recycled != tt.wantSettled {
				t.Errorf("request recycled: %v, want %v", rec.recycled, tt.wantSettled)
			}
		})
	}
}

// TestReleasedAnswersStayApart sends many requests in turn and at once,
// releasing each answer once read, and checks that every answer is the
// one asked for: a head given back and reused for the next answer never
// shows through in an earlier one.
func TestReleasedAnswersStayApart(t *testing.T) {
	p := testPool(t, nil)
	b := newRawBackend(t, answerEach(func(req *http.Request) string {
		return "HTTP/1.1 200 OK\r\nX-Path: " + req.URL.Path + "\r\nContent-Length: " +
			strconv.Itoa(len(req.URL.Path)) + "\r\n\r\n" + req.URL.Path
	}))
	const workers, each = 8, 100
	errs := make(chan string, workers)
	for w := range workers {
		go func() {
			for i := range each {
				path := "/w" + strconv.Itoa(w) + "/" + strconv.Itoa(i)
				hr, _ := http.NewRequest("GET", b.url(path), nil)
				req := wireRequest(t, hr)
				resp, err := p.Send(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				h := resp.Header.Get("X-Path")
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if h != path || string(got) != path {
					errs <- "asked " + path + ", got X-Path " + h + " and body " + string(got)
					return
				}
				resp.Release()
				req.Release()
			}
			errs <- ""
		}()
	}
	for range workers {
		select {
		case e := <-errs:
			if e != "" {
				t.Fatal(e)
			}
		case <-time.After(hang):
			t.Fatal("workers did not finish")
		}
	}
}

// TestHeadsOverReadBuffer checks answers whose head does not fit in a
// connection's read buffer (readBufferSize): they are parsed by the slow
// path, field for field and in order, and the connection goes on.
func TestHeadsOverReadBuffer(t *testing.T) {
	p := testPool(t, nil)
	long := strings.Repeat("c", 3*readBufferSize)
	b := newRawBackend(t, answerEach(func(req *http.Request) string {
		return "HTTP/1.1 200 OK\r\nSet-Cookie: a=" + long + "\r\nX-Path: " + req.URL.Path +
			"\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nok"
	}))
	for _, path := range []string{"/1", "/2", "/3"} {
		hr, _ := http.NewRequest("GET", b.url(path), nil)
		resp, err := p.Send(wireRequest(t, hr))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cookies := resp.Header.Values("Set-Cookie")
		if string(body) != "ok" || resp.Header.Get("X-Path") != path || len(cookies) != 2 || cookies[0] != "a="+long || cookies[1] != "b=2" {
			t.Fatalf("%s: body %q, X-Path %q, %d cookies", path, body, resp.Header.Get("X-Path"), len(cookies))
		}
	}
	if n := b.accepted.Load(); n != 1 {
		t.Errorf("%d connections for 3 answers, want 1", n)
	}
}

// answerEach is a backend's serve function that writes answer(req) for
// every request of the connection, until it ends.
func answerEach(answer func(req *http.Request) string) func(c *rawConn) {
	return func(c *rawConn) {
		c.each(func(req *http.Request) bool {
			c.write(answer(req))
			return true
		})
	}
}
