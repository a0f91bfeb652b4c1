//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package pool

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/nbio"
)

// TestEarlyAnswerOutlivesReset checks what answerWaits relies on: a
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
