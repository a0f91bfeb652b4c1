//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package pool

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/nbio"
)

// TestEarlyAnswerOutlivesReset checks what answerMayCome relies on: a
// backend that answers early and closes with part of the request body
// unread resets the connection, and once a write of the body fails on
// that reset, the answer it sent before is still in the socket for a
// non-blocking look (and then for the read).
func TestEarlyAnswerOutlivesReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const answer = "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbig"
	done := make(chan struct{})
	go func() {
		defer close(done)
		s, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 16)
		io.ReadFull(s, buf) // part of the body only
		s.Write([]byte(answer))
		s.Close() // body bytes unread: a reset
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	chunk := make([]byte, 4096)
	var werr error
	for i := 0; i < 10000 && werr == nil; i++ {
		_, werr = c.Write(chunk)
		if werr == nil {
			time.Sleep(time.Millisecond)
		}
	}
	<-done
	if !errors.Is(werr, syscall.EPIPE) && !errors.Is(werr, syscall.ECONNRESET) {
		t.Fatalf("write: %v, want a broken pipe or a reset", werr)
	}
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var perr error
	rc.Control(func(fd uintptr) { n, perr = nbio.Peek(int(fd)) })
	if perr != nil || n != 1 {
		t.Fatalf("look after the failed write: %d, %v; want the answer's first byte", n, perr)
	}
	got := make([]byte, len(answer))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != answer {
		t.Fatalf("read after the failed write: %q, %v; want the early answer", got, err)
	}
}

// TestBodyWriteFailsAfterTheAnswerIsRead: a backend answers early and
// resets the connection while the request body is being sent. The answer
// is delivered even when its head was already taken from the socket when
// the body's write failed (a look at the socket then finds nothing), by
// the caller (depth 1) as by the reader goroutine (depth 2). When no
// answer comes, the call ends: the connection was lost (the read or the
// write saw the reset first).
func TestBodyWriteFailsAfterTheAnswerIsRead(t *testing.T) {
	const answer = "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbig"
	for _, depth := range []int{1, 2} {
		for _, answers := range []bool{true, false} {
			t.Run(fmt.Sprintf("depth %d/answers %v", depth, answers), func(t *testing.T) {
				b := newRawBackend(t, func(c *rawConn) {
					if _, err := http.ReadRequest(c.br); err != nil {
						return
					}
					if answers {
						c.write(answer)
					}
					c.Conn.(*net.TCPConn).SetLinger(0) // a reset, whatever is unread
					c.Close()
				})
				// bodyEnded fires when the body's writer has given the
				// body up, after it decided what its failed write means.
				bodyEnded := newSignal()
				testHookAnswerHead = func(*conn) { bodyEnded.wait(t) }
				t.Cleanup(func() { testHookAnswerHead = nil })
				p := testPool(t, func(s *Settings) { s.PipelineDepth = depth })
				pr, pw := io.Pipe()
				go func() {
					defer bodyEnded.fire()
					for {
						if _, err := pw.Write([]byte("more")); err != nil {
							return
						}
						time.Sleep(time.Millisecond)
					}
				}()
				defer pw.Close()
				req, _ := http.NewRequest("POST", b.url("/up"), pr)
				req.ContentLength = -1 // unknown: sent chunked
				r := roundTripReq(p, req)
				switch {
				case answers && (r.err != nil || r.status != 413 || r.body != "big"):
					t.Errorf("%v, want the early 413", r)
				case !answers && (r.err == nil || !strings.Contains(r.err.Error(), "connection lost before the response")):
					t.Errorf("%v, want the connection lost", r)
				}
				waitFor(t, "no call left, no connection", func() bool {
					st := stats(t, p)
					return st.InFlight == 0 && st.Waiting == 0 && st.Open == 0
				})
			})
		}
	}
}
