package pool

import (
	"errors"
	"time"

	"github.com/ocsiproxy/ocsiproxy/wire"
)

// Caller reads. On a connection that does not pipeline (callerReads: its
// upstream's PipelineDepth is 1, the default), nothing reads between
// exchanges: the call that wrote a request reads the response from the
// connection itself (readFor), with the framing checks of the reader
// goroutine, and returns it; the response to a request with a body is
// read while the body writer sends the body, so that an early answer (a
// 413, say) is read at once. A streamed body gives the connection back
// when it ends (streamBody.end; a drain runs in a goroutine of its own,
// as the reader goroutine would do it). Nothing is added per request: no
// goroutine, hand-off of the response, timer or read deadline.
//
//   - System calls: a request on a connection that answered before costs
//     a look at the socket (idleGone, below), the write and the read of
//     the answer: three, as with a reader goroutine (the write, the read,
//     and the read after it that finds nothing). On a plain TCP
//     connection (rawSend) the look and the write are made from within
//     syscall.RawConn.Read (sendAndWait): the socket's readiness is reset
//     first, so the wait for the answer starts without a read that would
//     find nothing, and a close that comes after the look ends the wait
//     at once.
//   - Timeouts and cancellation: the call is watched by the sweeper while
//     it reads (for the far future when it has no deadline, or while its
//     body is being sent: the clocks stop then, and the body writer
//     starts them again, see call.startHeadClock), which, when it is due
//     or its context is done, cuts the read by a read deadline in the
//     past (conn.cut); the call then gives up as it would on a due event
//     or a done context (a 504 timeoutError, or the context's error), and
//     its connection with it. A cancellation is thus seen within a sweep
//     tick (context.AfterFunc would cost allocations on every request).
//     A call still reading after ctxPushPolls ticks (a long poll, an
//     answer that is slow to come) has its context watched by a
//     context.AfterFunc instead, which cuts its read at once when the
//     context is done (upstream.readerGone): the sweeper no longer looks
//     at it on every tick, so requests held at the backend cost the
//     sweeper nothing until one is due.
//   - Idle connections: no goroutine waits on them to see the backend
//     close them (or send bytes nobody asked for). Before a request on a
//     connection that answered before (or any request that is not
//     idempotent; on a plain TCP connection, before every request), the
//     call looks at its socket without blocking (call.goneFor,
//     conn.idleGone; on a plain TCP connection, sendStep, after the
//     poller's reset, and conn.unsent): a connection closed or
//     reset is given up, one holding bytes nobody asked for is poisoned,
//     and the request goes on another connection. So such bytes are never
//     read as an answer, and a request is never sent where the backend had
//     closed before. The backend may still close in the microseconds
//     between that look and the request (as with a reader goroutine): an
//     idempotent request whose connection is then closed before any byte
//     of its response is sent again like any early close
//     (call.retryable), and the other idle connections of the upstream
//     are looked at (pruneIdle) and those the backend closed are dropped,
//     so that the retry does not meet another one. The janitor also looks
//     at each idle connection every janitorTick (Pool.reap), so that a
//     socket the backend closed does not wait in CLOSE_WAIT until
//     idle_timeout.
//   - idle_timeout is the janitor's, as before.

// deliver ends k with resp, which its connection handed over: by an
// event, or, when direct (k reads its own response), by its state alone,
// k's goroutine returning resp itself. Called with u.mu held.
func (k *call) deliver(resp *wire.Response, direct bool) {
	if !direct {
		k.finish(resp, nil)
		return
	}
	k.state = stDone
	k.u.unwatch(k)
}

// farFuture is the deadline a call without one is watched for while it
// reads its response (callerReads): watched, so that the sweeper sees its
// context end, and never due.
var farFuture = time.Unix(1<<40, 0)

// startRead records that k, just registered on c (callerReads), is to
// read its response itself, and has the sweeper watch it for deadline.
// Called with u.mu held.
func (c *conn) startRead(k *call, deadline time.Time) {
	c.reader = k
	c.u.readers++
	k.readPolls = 0
	k.readGen++
	if deadline.IsZero() {
		deadline = farFuture
	}
	c.u.watch(k, deadline)
}

// endRead ends the read of c's reader: the sweeper no longer cuts it,
// and a cut it made is undone. Called with u.mu held.
func (c *conn) endRead() {
	if c.reader == nil {
		return
	}
	if k := c.reader; k.ctxStop != nil {
		k.ctxStop()
		k.ctxStop = nil
		c.u.pushed--
	}
	c.reader = nil
	c.u.readers--
	if c.cut {
		c.cut = false
		c.nc.SetReadDeadline(time.Time{})
	}
}

// readFor reads, in k's goroutine, the response to k, written on c
// (callerReads), as readNext does for the calls of a connection that
// pipelines. It returns the response, with k done; or nil when k is to
// wait for its next event (its connection failed: k was sent again, or
// ended with an error); or cut when the sweeper cut the read (k is due,
// or its context done), for k to give up (see run).
func (c *conn) readFor(k *call) (resp *wire.Response, cut bool) {
	var err error
	if len(c.out) > 0 {
		var werr error
		var seen sockState
		werr, err, seen = c.sendAndWait(k)
		switch {
		case seen != sockIdle:
			return nil, c.unsent(k, seen)
		case werr != nil:
			c.failWrite(werr)
			return nil, false
		}
	} else {
		_, err = c.br.Peek(1)
	}
	if err != nil {
		// Nothing of the response: on a reused connection, the backend
		// may have closed it while it was idle.
		return nil, c.readFailed(k, &readFailure{err: err, kind: failEarlyClose}, true)
	}
	// k is this goroutine's own call: nobody else reuses it meanwhile.
	h, keep, body, f := c.readAnswer(k, k.req.Method, k.fresh)
	if f != nil {
		return nil, c.readFailed(k, f, false)
	}
	if body != nil {
		if delivered, _ := c.complete(k, h.resp, body, keep, true); delivered {
			return h.resp, false
		}
		return nil, false
	}
	if sb, delivered := c.startStream(k, h, keep, true); sb != nil && delivered {
		return h.resp, false
	}
	return nil, false
}

// readFailed gives c up after a failed read of k's response by k's
// goroutine, unless the sweeper cut the read: it then reports true, and
// k gives up (which gives the connection up). nothing says that no byte
// of the response was read: when the connection had been used before,
// the other idle ones are looked at (see pruneIdle).
func (c *conn) readFailed(k *call, f *readFailure, nothing bool) bool {
	u := c.u
	u.mu.Lock()
	if c.cut && c.reader == k && k.state == stSent {
		u.mu.Unlock()
		return true
	}
	gone := c.failPruning(f.err, f.kind, f.cp, nothing && c.served > 0)
	u.mu.Unlock()
	for _, g := range gone {
		g.closeNet()
	}
	return false
}

// unsent gives c up when the look at its socket just before k was to be
// written on it (sendAndWait) saw that it cannot take a request: the
// backend closed or reset it, or sent bytes nobody asked for. Nothing of
// k was sent, so k goes back to the front of the queue, whatever its
// method, as when send's look sees it (goneFor). It reports true, as
// readFailed, when the sweeper had cut k's wait (k is due or its context
// done): k then gives up. A call that met maxRequeues such connections
// in a row (a backend that closes every connection at once, say) ends
// with errConnClosed.
func (c *conn) unsent(k *call, seen sockState) bool {
	u := c.u
	u.mu.Lock()
	if c.cut && c.reader == k && k.state == stSent {
		u.mu.Unlock()
		return true
	}
	if c.reader == k && k.state == stSent && !c.broken {
		clear(c.pending)
		c.pending = c.pending[:0]
		c.endRead()
		if k.requeues < maxRequeues && k.ctx.Err() == nil {
			k.requeues++
			u.st.requeued++
			if k.watchAt.Equal(farFuture) {
				u.unwatch(k) // watched while queued only for a deadline
			}
			u.requeueFront(k)
		} else {
			k.finish(nil, errConnClosed)
		}
	}
	kind, err := failAbort, errIdleGone
	if seen == sockBytes {
		kind, err = failFraming, errUnsolicited
	}
	failed := c.failLocked(err, kind, nil)
	u.mu.Unlock()
	if failed {
		c.closeNet()
	}
	return false
}

// failWrite gives c up after a request could not be written on it; on a
// reused connection that does not pipeline, the other idle ones are
// looked at, as after a read that got nothing.
func (c *conn) failWrite(err error) {
	u := c.u
	u.mu.Lock()
	gone := c.failPruning(err, failWrite, nil, c.callerReads && c.served > 0)
	u.mu.Unlock()
	for _, g := range gone {
		g.closeNet()
	}
}

// failPruning gives c up (failLocked) and, when stale (a connection used
// before that turned out closed), the upstream's other idle connections
// the backend closed (pruneIdle). It returns those it gave up, c first,
// for the caller to close after unlocking. Called with u.mu held.
func (c *conn) failPruning(err error, kind failKind, cp *culprit, stale bool) []*conn {
	if !c.failLocked(err, kind, cp) {
		return nil
	}
	gone := []*conn{c}
	if stale {
		gone = append(gone, c.u.pruneIdle()...)
	}
	return gone
}

// errIdleGone is why an idle connection is given up when the backend
// closed or reset it.
var errIdleGone = errors.New("pool: the backend closed the idle connection")

// pruneIdle gives up the idle connections of u (callerReads) that the
// backend closed or sent bytes on, and returns them, for the caller to
// close after unlocking. Called with u.mu held.
func (u *upstream) pruneIdle() []*conn {
	var gone []*conn
	for i := 0; i < len(u.conns); {
		c := u.conns[i]
		if c.callerReads && len(c.pending)+c.reserved == 0 && !c.broken && !c.closing && !c.streaming {
			if kind, err := c.idleGone(); err != nil && c.failLocked(err, kind, nil) {
				gone = append(gone, c) // removed from u.conns: i stays
				continue
			}
		}
		i++
	}
	return gone
}

// idleGone looks, without blocking, at an idle connection of an upstream
// that does not pipeline: it returns why the connection cannot take a
// request (the backend closed or reset it, or sent bytes nobody asked
// for), and how to give it up; nil when it can. Bytes on a TLS connection
// that has not answered yet are the handshake's last messages, which the
// TLS layer reads first. Called with u.mu held.
func (c *conn) idleGone() (failKind, error) {
	if c.br.Buffered() > 0 {
		return failFraming, errUnsolicited
	}
	switch c.peekSocket() {
	case sockClosed:
		return failAbort, errIdleGone
	case sockBytes:
		switch {
		case c.nc == c.raw: // not TLS
			return failFraming, errUnsolicited
		case c.served > 0:
			return failAbort, errIdleGone
		}
	}
	return failAbort, nil
}

// sockState is what a non-blocking look at an idle socket saw.
type sockState uint8

const (
	sockIdle   sockState = iota // nothing to read: still open (or unknown)
	sockClosed                  // end of stream, or an error (reset)
	sockBytes                   // bytes to read
)
