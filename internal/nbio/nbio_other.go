//go:build unix && !linux

package nbio

import "syscall"

// Read reads from the non-blocking socket fd into p, as syscall.Read.
func Read(fd int, p []byte) (int, error) { return rw(syscall.Read, fd, p) }

// Write writes p to the non-blocking socket fd, as syscall.Write: it may
// write only part of p (a full socket buffer), or nothing (EAGAIN).
func Write(fd int, p []byte) (int, error) { return rw(syscall.Write, fd, p) }

// rw calls op (syscall.Read or syscall.Write) on fd and p.
func rw(op func(int, []byte) (int, error), fd int, p []byte) (int, error) {
	for {
		n, err := op(fd, p)
		if err != syscall.EINTR {
			if err != nil {
				n = 0
			}
			return n, err
		}
	}
}

// Peek looks at the socket fd without taking anything from it and
// without waiting (recv with MSG_PEEK and MSG_DONTWAIT): 1 when bytes
// are there, 0 at the end of the stream, EAGAIN when there is nothing
// yet.
func Peek(fd int) (int, error) {
	var b [1]byte
	for {
		n, _, err := syscall.Recvfrom(fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err != syscall.EINTR {
			return n, err
		}
	}
}
