package http1

import (
	"errors"
	"os"
	"runtime"
	"time"
)

// Waiting hot. A connection waits for its next request on a goroutine of
// its own with a small stack (wait), which then hands it to a worker:
// that keeps an idle connection at a few KiB, but costs a goroutine, a
// hand-off and two scheduler switches per request. A connection that has
// just been answered is likely to send its next request soon (a busy
// client's keep-alive connection), so its worker first waits for it
// itself, for at most hotTicks sweep ticks (75 to 100 ms); the sweeper
// (watchsweep.go) cuts a longer wait by a read deadline in the past, and
// the connection then waits the usual way. Over TLS, where the usual
// wait costs more (a goroutine that probes what TLS holds, another that
// parks, its stack grown again by the TLS read), the hot wait is a read
// through TLS on the worker. Only a connection that has
// sent a second request waits hot (one that sent a single request, then
// went quiet, is the usual idle keep-alive connection), and at most
// maxHot at once, so that a burst of clients that go idle does not keep
// as many worker stacks (the suite's idle scenario: 10,000 connections
// after one answer each).

// hotTicks is how many sweep ticks a connection waits on its worker.
const hotTicks = 4

// maxHot bounds the connections waiting on their worker at once.
const maxHot = 256

// hotWaitMinIdle is the shortest idle timeout (<keepalivetimeout>) with
// which connections wait hot: a shorter one could expire during the hot
// wait, and the wait that follows a cut would extend it.
const hotWaitMinIdle = time.Second

// waitHot waits on the calling goroutine for the next request of c, an
// idle connection, which keeps its buffers meanwhile (the caller gives
// them back when it waits the usual way). It reports false when c
// is not to wait hot (one that sent a single request, too many hot
// already, the server ending) or the sweeper cut the wait
// before a byte came: the caller then has it wait the usual way.
// Otherwise c.hotErr is what ended the wait.
func (c *h1Conn) waitHot() bool {
	if c.rc == nil || c.served < 2 {
		return false
	}
	if idle := c.o.IdleTimeout; idle > 0 && idle < hotWaitMinIdle {
		return false
	}
	p := &c.s.workers
	hot := p.hot.Add(1)
	if hot > maxHot {
		p.hot.Add(-1)
		return false
	}
	// Idle before the check of ending, as in wait: a shutdown that
	// starts after the check finds the connection idle and closes it.
	c.state.Store(stateIdle)
	if c.ending() {
		p.hot.Add(-1)
		return false
	}
	c.limitHead()
	at := c.s.sweepTick.Load() + hotTicks
	c.hotAt.Store(at)
	c.s.startSweep()
	if hot > 1 {
		// Other connections wait too: the server is busy. The goroutines
		// ready to run (other requests) go first; by the time this one
		// reads, its client has likely sent the next request, and the
		// read finds it instead of an empty socket. That saves a system
		// call and a trip through the poller per request (reads per
		// request 3.87 -> 2.89 in the small benchmark).
		runtime.Gosched()
	}
	var err error
	c.peekErr = nil
	if c.tls != nil {
		// Through TLS, with its own read and the poller's wait: bytes
		// TLS holds from the last read are served at once, and this
		// goroutine's stack has grown for TLS already (the usual wait
		// starts a new one, which grows it again).
		_, c.peekErr = c.br.Peek(1)
	} else {
		c.in.raw, c.hot = true, true
		err = c.rc.Read(c.peekFn)
		c.in.raw, c.hot = false, false
	}
	c.wmu.Lock()
	cut := !c.hotAt.CompareAndSwap(at, 0)
	c.wmu.Unlock()
	p.hot.Add(-1)
	perr := c.peekErr
	if perr == nil {
		perr = err
	}
	if cut {
		// The sweeper's deadline is in force; the next setReadDeadline
		// replaces it.
		c.rdl = aLongTimeAgo
		if (c.br == nil || c.br.Buffered() == 0) && errors.Is(perr, os.ErrDeadlineExceeded) && c.state.Load() == stateIdle {
			c.boundIdle()
			return false
		}
		if perr == nil {
			c.setReadDeadline(time.Time{})
		}
	}
	c.hotErr = perr
	return true
}

// resumeHot readies c to serve the request whose first bytes waitHot
// found. It reports false, the connection closed, when the wait ended in
// an error or the connection was closed meanwhile (a shutdown).
func (c *h1Conn) resumeHot() bool {
	if c.hotErr != nil || !c.state.CompareAndSwap(stateIdle, stateActive) {
		c.close()
		return false
	}
	if c.keepAlive {
		c.boundHead()
	}
	return true
}

// cutHot ends the hot wait of c when it has lasted until tick now, and
// reports whether c is still waiting hot. Called by the sweeper.
func (c *h1Conn) cutHot(now int64) (waiting bool) {
	at := c.hotAt.Load()
	if at == 0 {
		return false
	}
	if now < at {
		return true
	}
	c.wmu.Lock()
	if c.hotAt.CompareAndSwap(at, 0) {
		c.nc.SetReadDeadline(aLongTimeAgo)
	}
	c.wmu.Unlock()
	return false
}
