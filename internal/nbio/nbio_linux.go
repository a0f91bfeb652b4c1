package nbio

import (
	"syscall"
	"unsafe"
)

// Read reads from the non-blocking socket fd into p, as syscall.Read.
func Read(fd int, p []byte) (int, error) { return rw(syscall.SYS_READ, fd, p) }

// Write writes p to the non-blocking socket fd, as syscall.Write: it may
// write only part of p (a full socket buffer), or nothing (EAGAIN).
func Write(fd int, p []byte) (int, error) { return rw(syscall.SYS_WRITE, fd, p) }

// rw makes the read or write system call trap on fd and p.
func rw(trap uintptr, fd int, p []byte) (int, error) {
	for {
		n, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		if e == 0 {
			return int(n), nil
		}
		if e != syscall.EINTR {
			return 0, e
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
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if e == 0 {
			return int(n), nil
		}
		if e != syscall.EINTR {
			return 0, e
		}
	}
}
