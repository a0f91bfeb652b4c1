//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package pool

import (
	"syscall"

	"github.com/ocsiproxy/ocsiproxy/internal/nbio"
)

// peekSocket looks at c's socket without blocking and without taking
// anything from it (recv with MSG_PEEK and MSG_DONTWAIT). Without a socket
// (c.rc nil) it says sockIdle.
func (c *conn) peekSocket() sockState {
	if c.rc == nil {
		return sockIdle
	}
	c.peeked = sockIdle
	if err := c.rc.Control(c.peekFn); err != nil {
		return sockClosed
	}
	return c.peeked
}

// peekStep is the syscall.RawConn.Control function of peekSocket (as
// c.peekFn, made once per connection: a look allocates nothing).
func (c *conn) peekStep(fd uintptr) {
	n, err := nbio.Peek(int(fd))
	switch {
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
	case err != nil || n == 0:
		c.peeked = sockClosed
	default:
		c.peeked = sockBytes
	}
}
