//go:build linux

package nbio

import (
	"syscall"
	"testing"
)

// TestSocketPair writes, peeks at and reads a pair of non-blocking
// sockets: the bytes, EAGAIN when there is nothing, the end of the
// stream, and the error of a closed descriptor.
func TestSocketPair(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := fds[0], fds[1]
	defer syscall.Close(a)

	buf := make([]byte, 16)
	if n, err := Read(b, buf); n != 0 || err != syscall.EAGAIN {
		t.Fatalf("Read of an empty socket = %d, %v, want 0, EAGAIN", n, err)
	}
	if n, err := Peek(b); n != 0 || err != syscall.EAGAIN {
		t.Fatalf("Peek at an empty socket = %d, %v, want 0, EAGAIN", n, err)
	}
	if n, err := Write(a, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v, want 5, nil", n, err)
	}
	if n, err := Peek(b); n != 1 || err != nil {
		t.Fatalf("Peek at a socket with bytes = %d, %v, want 1, nil", n, err)
	}
	if n, err := Read(b, buf); n != 5 || err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %d, %v (%q), want 5, nil (\"hello\")", n, err, buf[:n])
	}
	if n, err := Write(a, nil); n != 0 || err != nil {
		t.Fatalf("Write of nothing = %d, %v, want 0, nil", n, err)
	}
	syscall.Close(b)
	if n, err := Read(b, buf); n != 0 || err != syscall.EBADF {
		t.Fatalf("Read of a closed descriptor = %d, %v, want 0, EBADF", n, err)
	}
	if _, err := Write(a, []byte("x")); err != syscall.EPIPE {
		t.Fatalf("Write to a socket whose peer is closed: %v, want EPIPE", err)
	}

	fds, err = syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[1])
	syscall.Close(fds[0])
	if n, err := Peek(fds[1]); n != 0 || err != nil {
		t.Fatalf("Peek at the end of the stream = %d, %v, want 0, nil", n, err)
	}
	if n, err := Read(fds[1], buf); n != 0 || err != nil {
		t.Fatalf("Read at the end of the stream = %d, %v, want 0, nil", n, err)
	}
}

// TestWriteFull checks a write to a full socket buffer: part of it, then
// EAGAIN.
func TestWriteFull(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	p := make([]byte, 1<<16)
	total := 0
	for i := 0; ; i++ {
		n, err := Write(fds[0], p)
		if err == syscall.EAGAIN {
			break
		}
		if err != nil || i > 1000 {
			t.Fatalf("Write: %d, %v after %d bytes", n, err, total)
		}
		total += n
	}
	if total == 0 {
		t.Fatal("nothing written before EAGAIN")
	}
}
