package http1

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// sendDeadline is the rule of both send bounds (connWriter, SendTimeoutConn):
// before a write, the write deadline cur moves to timeout from now, but
// only once less than three quarters of timeout are left (a deadline
// costs a timer update). move reports whether it must be set.
func sendDeadline(cur time.Time, timeout time.Duration) (next time.Time, move bool) {
	now := time.Now()
	if cur.Sub(now) < timeout-timeout/4 {
		return now.Add(timeout), true
	}
	return cur, false
}

// SendTimeoutConn bounds the writes to a connection: a write that makes
// no progress for timeout fails (nginx's send_timeout), as connWriter
// does on plain-HTTP ports. HTTPS ports put it beneath TLS (dispatch), so
// that HTTP/1.1 and HTTP/2 answers alike cannot hold a connection and its
// backend call for ever behind a client that reads nothing (net/http's
// WriteTimeout would instead bound a whole answer, long streams
// included).
//
// It moves its write deadline timeout ahead before a write, at most
// every quarter of timeout (a deadline costs a timer update). A
// deadline set explicitly (net/http bounds the TLS handshake so) is kept
// until it is cleared; a tunnel lifts the bound for good (unbound).
type SendTimeoutConn struct {
	net.Conn
	timeout time.Duration

	mu       sync.Mutex
	deadline time.Time // the write deadline in force, zero when none
	explicit bool      // deadline was set by SetWriteDeadline/SetDeadline
	off      bool      // Unbound was called
}

// NewSendTimeoutConn returns c with each write bounded by timeout (nginx's
// send_timeout), for the servers beneath TLS.
func NewSendTimeoutConn(c net.Conn, timeout time.Duration) *SendTimeoutConn {
	return &SendTimeoutConn{Conn: c, timeout: timeout}
}

func (c *SendTimeoutConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.off && !c.explicit {
		if next, move := sendDeadline(c.deadline, c.timeout); move {
			c.deadline = next
			c.Conn.SetWriteDeadline(next)
		}
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *SendTimeoutConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline, c.explicit = t, !t.IsZero()
	return c.Conn.SetWriteDeadline(t)
}

func (c *SendTimeoutConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline, c.explicit = t, !t.IsZero()
	return c.Conn.SetDeadline(t)
}

// Unbound lifts the bound on writes, for a tunnel (a protocol switch), as
// the HTTP/1 server does for a hijacked connection. A handler reaches it
// through the hijacked *tls.Conn's NetConn.
func (c *SendTimeoutConn) Unbound() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off = true
	c.Conn.SetWriteDeadline(time.Time{})
}

// SyscallConn returns the socket beneath, on which the HTTP/1 server
// waits for an idle TLS connection's next request.
func (c *SendTimeoutConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("http1: connection without a socket")
	}
	return sc.SyscallConn()
}
