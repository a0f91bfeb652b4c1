//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package pool

import (
	"io"
	"net"
	"os"
	"syscall"
)

// rawSendable says that this system lets a request be written from
// within syscall.RawConn.Read (conn.rawSend).
const rawSendable = true

// sendAndWait writes the request head in c.out (rawSend) and waits for the
// first bytes of its answer. The head is written from within
// syscall.RawConn.Read (sendStep), once the socket's readiness has been
// reset: the answer cannot come before its request, so the wait starts at
// once, without the read that would find nothing (and its system call).
// It returns the write's error, or the read's (for readFor). The head is
// at most writeBufferSize long (send writes a longer one itself); written
// in part (a full socket buffer), it is finished by a blocking write.
//
// Readiness noted before the reset is lost: should the backend close the
// connection between the look at its socket before the request
// (call.goneFor) and the reset, some microseconds, the close is seen when
// the write makes the backend's system reset the connection, or, for a
// backend that only shut its side down and reads on, at the request's
// timeout (a 504).
func (c *conn) sendAndWait(k *call) (werr, rerr error) {
	c.sendOut, c.wrote, c.rest, c.werr, c.rerr = c.out, false, nil, nil, nil
	c.out = c.out[:0]
	err := c.rc.Read(c.sendFn)
	werr, rerr, wrote, rest := c.werr, c.rerr, c.wrote, c.rest
	c.sendOut, c.rest, c.werr, c.rerr = nil, nil, nil, nil
	switch {
	case werr != nil:
		return werr, nil
	case !wrote:
		// The wait ended before it began (the sweeper's cut, or the
		// connection closed): the request was not sent.
		return nil, err
	case rest != nil:
		// Not expected: the head fits in the write buffer, and the
		// backend read the connection's previous request. The write
		// deadline bounds this write.
		k.writing.Store(true)
		_, err := c.nc.Write(rest)
		k.writing.Store(false)
		if err != nil {
			return err, nil
		}
		_, rerr = c.br.Peek(1)
		return nil, rerr
	case rerr != nil:
		return nil, rerr
	}
	return nil, err
}

// sendStep is the syscall.RawConn.Read function of sendAndWait (as
// c.sendFn, made once per connection: a request allocates nothing). Its
// first call writes c.sendOut and asks to wait; the next ones read.
func (c *conn) sendStep(fd uintptr) bool {
	if !c.wrote {
		c.wrote = true
		out := c.sendOut
		n, err := syscall.Write(int(fd), out)
		for err == syscall.EINTR {
			n, err = syscall.Write(int(fd), out)
		}
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
		return false // nothing can have been answered yet: wait
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
	n, err := syscall.Read(l.fd, p)
	for err == syscall.EINTR {
		n, err = syscall.Read(l.fd, p)
	}
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
