//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package pool

import "syscall"

// peekSocket looks at the socket rc without blocking and without taking
// anything from it (recv with MSG_PEEK and MSG_DONTWAIT). Without a socket
// (rc nil) it says sockIdle.
func peekSocket(rc syscall.RawConn) sockState {
	if rc == nil {
		return sockIdle
	}
	st := sockIdle
	err := rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		for err == syscall.EINTR {
			n, _, err = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		}
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
		case err != nil || n == 0:
			st = sockClosed
		default:
			st = sockBytes
		}
	})
	if err != nil {
		return sockClosed
	}
	return st
}
