//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package pool

import (
	"io"
	"net"
	"os"
	"syscall"

	"github.com/ocsiproxy/ocsiproxy/internal/nbio"
)

// rawSendable says that this system lets a request be written from
// within syscall.RawConn.Read (conn.rawSend).
const rawSendable = true

// testHookSend, set by tests, is called by sendAndWait before the
// poller resets the socket's readiness (afterLook false), and by sendStep
// between its look at the socket and its write (afterLook true).
var testHookSend func(c *conn, afterLook bool)

// sendAndWait writes the request head in c.out (rawSend) and waits for the
// first bytes of its answer. The head is written from within
// syscall.RawConn.Read (sendStep), once the socket's readiness has been
// reset: the answer cannot come before its request, so the wait starts at
// once, without the read that would find nothing (and its system call).
// It returns the write's error, or the read's (for readFor); or, with
// nothing written, what the look at the socket before the write saw when
// it found the connection unusable (c.lookFirst: closed, or holding bytes
// nobody asked for). Written in part (a full socket buffer: not expected,
// the backend read the previous request), the head is finished by a
// blocking write, which the write deadline bounds and the sweeper cuts.
//
// The look comes after the reset, so no readiness is lost: a close that
// came before it is seen by it, and one that comes after it ends the
// wait at once.
func (c *conn) sendAndWait(k *call) (werr, rerr error, seen sockState) {
	c.sendOut, c.wrote, c.rest, c.werr, c.rerr, c.peeked = c.out, false, nil, nil, nil, sockIdle
	if cap(c.out) > writeBufferSize {
		c.out = nil // a long head: its memory is not kept
	} else {
		c.out = c.out[:0]
	}
	if testHookSend != nil {
		testHookSend(c, false)
	}
	c.sending = k
	err := c.rc.Read(c.sendFn)
	werr, rerr, wrote, rest := c.werr, c.rerr, c.wrote, c.rest
	c.sendOut, c.rest, c.werr, c.rerr, c.lookFirst, c.sending = nil, nil, nil, nil, false, nil
	if rest == nil {
		k.writing.Store(false) // written whole (sendStep cleared it already), or not at all
	}
	switch {
	case werr != nil:
		return werr, nil, sockIdle
	case !wrote && c.peeked != sockIdle:
		return nil, nil, c.peeked
	case !wrote:
		// The wait ended before it began (the sweeper's cut, or the
		// connection closed): the request was not sent.
		return nil, err, sockIdle
	case rest != nil:
		_, err := c.nc.Write(rest) // k.writing is still set (see call.send)
		k.writing.Store(false)
		if err != nil {
			return err, nil, sockIdle
		}
		_, rerr = c.br.Peek(1)
		return nil, rerr, sockIdle
	case rerr != nil:
		return nil, rerr, sockIdle
	}
	return nil, err, sockIdle
}

// sendStep is the syscall.RawConn.Read function of sendAndWait (as
// c.sendFn, made once per connection: a request allocates nothing). Its
// first call looks at the socket when c.lookFirst says to (and stops there
// when the connection cannot take the request), writes c.sendOut and asks
// to wait; the next ones read.
func (c *conn) sendStep(fd uintptr) bool {
	if !c.wrote {
		if c.lookFirst {
			if c.peekStep(fd); c.peeked != sockIdle {
				return true
			}
		}
		if testHookSend != nil {
			testHookSend(c, true)
		}
		c.wrote = true
		out := c.sendOut
		n, err := nbio.Write(int(fd), out)
		switch {
		case err == syscall.EAGAIN:
			c.rest = out
			return true
		case err != nil:
			c.werr = &net.OpError{Op: "write", Net: "tcp", Source: c.raw.LocalAddr(), Addr: c.raw.RemoteAddr(), Err: os.NewSyscallError("write", err)}
			return true
		case n < len(out):
			c.rest = out[n:]
			return true
		}
		c.sending.writing.Store(false) // written: a due call's read is what is cut
		return false                   // nothing can have been answered yet: wait
	}
	c.lc.fd = int(fd)
	_, c.rerr = c.br.Peek(1)
	c.lc.fd = -1
	if c.rerr == syscall.EAGAIN {
		c.rerr = nil
		return false // woken early: wait again
	}
	return true
}

// readRaw reads the socket l.fd once.
func (l *limitedConn) readRaw(p []byte) (int, error) {
	n, err := nbio.Read(l.fd, p)
	switch {
	case err == syscall.EAGAIN:
		return 0, err
	case err != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: l.LocalAddr(), Addr: l.RemoteAddr(), Err: os.NewSyscallError("read", err)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
