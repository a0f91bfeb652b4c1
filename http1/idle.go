package http1

import (
	"os"

	"github.com/ocsiproxy/ocsiproxy/internal/idlepoll"
)

// Idle connections without a goroutine. A plain-TCP connection that has
// answered and is not waiting hot (hotwait.go) waits for its next
// request in the server's poller (internal/idlepoll) rather than on a
// goroutine parked in a read: an idle connection then holds its
// h1Conn, its socket and its context, not a goroutine's stack (the
// suite's idle scenario, 10,000 connections after one answer each: RSS
// per connection 5.04 KiB before, 2.56 after; nginx's 0.63). When its
// socket becomes readable, the poller starts a goroutine that reads the
// first bytes and serves the request as wait does (awaitRaw); when its
// idle bound (the read deadline boundIdle set) has come, the poller
// closes it.
//
// The registration is made under s.mu, and its key kept in c.pollKey,
// so that a shutdown (closeIdleOf), a Close or a drain that finds the
// connection idle takes it from the poller (takePolled) and closes it
// itself; when the poller has ended the wait already (Ready, Expired),
// the shutdown closes the socket and whoever the poller told closes
// the connection, as with a goroutine waiting in a read. New
// connections, TLS connections, and connections whose idle bound is
// shorter than the poller's deadlines can follow (pollMinSlack) wait on
// a goroutine, as before.

// pollMinSlack is the least idle slack (idleSlack) with which a
// connection waits in the poller: the poller ends a wait up to
// idlepoll.ScanPeriod before its deadline, which must stay within the
// slack (at least IdleTimeout after the wait began). With a ScanPeriod
// of 250 ms, an IdleTimeout of 4 s or more.
const pollMinSlack = 2 * idlepoll.ScanPeriod

// waitPolled has the server's poller wait for the next request of c, an
// idle connection that has answered, and reports true; false when c
// does not wait so (not plain TCP, an idle bound too short, no poller):
// the caller then waits the usual way (wait).
func (c *h1Conn) waitPolled() bool {
	if c.tls != nil || c.rc == nil || !c.out.raw {
		return false
	}
	if idle := c.o.IdleTimeout; idle > 0 && idleSlack(idle) < pollMinSlack {
		return false
	}
	p := c.s.idlePoller()
	if p == nil {
		return false
	}
	if c.pollFD < 0 {
		if err := c.rc.Control(func(fd uintptr) { c.pollFD = int(fd) }); err != nil {
			return false
		}
	}
	c.limitHead()
	s := c.s
	s.mu.Lock()
	// Idle before the check of ending, as in wait, and both under s.mu
	// with the registration: a shutdown sees the connection either
	// active (and tries again) or idle with its key.
	c.state.Store(stateIdle)
	if c.ending() {
		s.mu.Unlock()
		c.close()
		return true
	}
	k, err := p.Add(c.pollFD, c, c.rdl, c.polled)
	if err != nil {
		s.mu.Unlock()
		return false
	}
	c.pollKey, c.polled = k, true
	s.mu.Unlock()
	return true
}

// Ready is the poller's word that the socket of c has bytes (or an end)
// to read: a new goroutine reads them and serves the request.
func (c *h1Conn) Ready() { go c.awaitFn() }

// Expired is the poller's word that the idle bound of c has come: c is
// closed, as a wait in a read ends at its deadline.
func (c *h1Conn) Expired() { c.resume(os.ErrDeadlineExceeded) }

// takePolled ends the wait of c in the poller, if it is waiting there,
// and reports whether it was: the caller then owns c and closes it
// (closeTaken). Called with s.mu held, c's state set to closed.
func (s *Server) takePolled(c *h1Conn) bool {
	p := s.poller.Load()
	return p != nil && c.pollKey != 0 && p.Remove(c.pollKey)
}

// closeTaken closes the connections takePolled took from the poller,
// outside s.mu.
func closeTaken(taken []*h1Conn) {
	for _, c := range taken {
		c.close()
	}
}

// idlePoller returns the server's poller, started by the first call;
// nil where there is none (not Linux, epoll refused), or once the
// server is closed.
func (s *Server) idlePoller() *idlepoll.Poller {
	if p := s.poller.Load(); p != nil {
		return p
	}
	if !idlepoll.Supported() {
		return nil
	}
	s.pollerOnce.Do(func() {
		p, err := idlepoll.New()
		if err != nil {
			s.logf("http: idle connections wait on goroutines: %v", err)
			return
		}
		s.poller.Store(p)
	})
	return s.poller.Load()
}

// stopPoller stops the server's poller once no connection can wait in
// it any more (the server closing): what is still registered ends with
// Expired (closed). Not called with s.mu held.
func (s *Server) stopPoller() {
	s.pollerOnce.Do(func() {}) // none is started after this
	if p := s.poller.Load(); p != nil {
		p.Close()
	}
}
