package server

import (
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// sendDeadline is the rule of both send bounds (connWriter, sendTimeoutConn):
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

// sendTimeoutConn bounds the writes to a connection: a write that makes
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
type sendTimeoutConn struct {
	net.Conn
	timeout time.Duration

	mu       sync.Mutex
	deadline time.Time // the write deadline in force, zero when none
	explicit bool      // deadline was set by SetWriteDeadline/SetDeadline
	off      bool      // unbound was called
}

func (c *sendTimeoutConn) Write(p []byte) (int, error) {
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

func (c *sendTimeoutConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline, c.explicit = t, !t.IsZero()
	return c.Conn.SetWriteDeadline(t)
}

func (c *sendTimeoutConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline, c.explicit = t, !t.IsZero()
	return c.Conn.SetDeadline(t)
}

// unbound lifts the bound on writes, for a tunnel (a protocol switch), as
// h1Conn does for a hijacked connection.
func (c *sendTimeoutConn) unbound() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off = true
	c.Conn.SetWriteDeadline(time.Time{})
}

// unboundTunnel lifts the send timeout of a hijacked HTTPS connection.
func unboundTunnel(conn net.Conn) {
	if tc, ok := conn.(*tls.Conn); ok {
		if sc, ok := tc.NetConn().(*sendTimeoutConn); ok {
			sc.unbound()
		}
	}
}
