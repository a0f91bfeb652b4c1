package pool

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocsiproxy/ocsiproxy/wire"
)

// callState is where a call stands. Transitions happen under the
// upstream's lock.
type callState uint8

const (
	stQueued    callState = iota // waiting in upstream.waiters
	stAssigned                   // given a connection; an event says so
	stSent                       // in conn.pending: written (or being written)
	stDone                       // its outcome has been sent to the caller
	stAbandoned                  // the caller gave up
)

// event is what a call's goroutine is told: a connection to send on, or
// the outcome.
type event struct {
	conn *conn
	resp *wire.Response
	err  error
}

// call is one RoundTrip.
type call struct {
	req  *wire.Request
	ctx  context.Context
	u    *upstream
	kind wire.BodyKind
	// pipelinable: a safe method (GET, HEAD, OPTIONS, TRACE), no body,
	// not req.Close.
	pipelinable bool
	// fresh: req.Close (nopipeline): a new connection of its own,
	// closed after the exchange.
	fresh      bool
	idempotent bool
	// reserving: a connection may be kept free for this call
	// (reservedFor, set by reserveFor); when false none is, and
	// unreserve has nothing to look for.
	reserving bool

	// Guarded by u.mu.
	state    callState
	conn     *conn
	retries  int  // resent after a failure of its connection
	requeues int  // resent because its connection closed politely or was left behind a streamed body
	dialing  bool // a fresh connection is being dialed for it
	// watchAt is the deadline the sweeper watches the call for, and
	// watchIdx its index in u.watched plus one (0: not watched).
	watchAt  time.Time
	watchIdx int
	// While the call reads its own response (conn.reader): readPolls
	// counts the sweeper's looks at its context; after ctxPushPolls of
	// them, the context is watched by a context.AfterFunc instead, which
	// ctxStop stops (see sweep.go). readGen numbers the call's reads, so
	// that a late AfterFunc leaves a later read alone.
	readPolls int
	readGen   uint64
	ctxStop   func() bool

	// writerActive: a body writer goroutine owns req.Body; returned:
	// run has returned. Whichever comes last closes req.Body.
	writerActive, returned bool

	// ch carries at most one event (a connection or the outcome) and
	// at most one due event from the sweeper (errDue) at a time.
	ch    chan event
	wrote chan error // the body writer's result (body calls only)
	// bodyStarted is set once the body writer has read from req.Body:
	// the call can no longer be resent.
	bodyStarted atomic.Bool
	bodyClosed  atomic.Bool
	// writing is set while send writes the request (stSent): a write
	// still blocked when the call is due is cut by the sweeper.
	writing atomic.Bool

	// For a request with a body that reads its own response
	// (callerReads): when its body started being sent and its
	// call_timeout deadline then (set before the body writer starts),
	// and, once the body is sent, its deadlines (set by the writer,
	// under u.mu: see startHeadClock).
	bodyStart, callDeadline, headDeadline time.Time
}

// callPool holds calls whose every reference is gone (see release), with
// their empty channel.
var callPool = sync.Pool{New: func() any { return &call{ch: make(chan event, 2)} }}

// newCall returns a call for req to u, taken from the pool of calls.
func newCall(req *wire.Request, u *upstream) *call {
	k := callPool.Get().(*call)
	k.req, k.ctx, k.u = req, req.Context(), u
	k.kind, k.fresh = req.BodyKind(), req.Close
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		k.idempotent = true
		k.pipelinable = k.kind == wire.BodyNone && !req.Close
	case http.MethodPut, http.MethodDelete:
		k.idempotent = true
	}
	if k.kind != wire.BodyNone {
		k.wrote = make(chan error, 1)
	}
	return k
}

// release puts back in callPool a call whose run has returned an outcome
// it received on k.ch, and settles its request (wire.Request.Settle),
// when nothing else can still refer to either: no body
// writer (no body), no dial made for it and no connection owned (not
// fresh), and not the head of a connection streaming its response body.
// Every other place a call is kept (waiters, pending, excl, reservedFor)
// lets go of it before its outcome is sent.
func (k *call) release(resp *wire.Response) {
	if k.kind != wire.BodyNone || k.fresh || k.state != stDone {
		return
	}
	if resp != nil {
		if _, ok := resp.Body.(*streamBody); ok {
			return
		}
	}
	k.req.Settle() // nothing in the pool refers to it any more
	k.req, k.ctx, k.u, k.conn = nil, nil, nil, nil
	k.kind, k.pipelinable, k.fresh, k.idempotent = wire.BodyNone, false, false, false
	k.state, k.retries, k.requeues, k.dialing, k.reserving = stQueued, 0, 0, false, false
	k.watchAt, k.watchIdx = time.Time{}, 0
	k.writerActive, k.returned = false, false
	k.wrote = nil
	k.bodyStarted.Store(false)
	k.bodyClosed.Store(false)
	for len(k.ch) > 0 {
		<-k.ch // a due event sent before the call read its own response
	}
	callPool.Put(k)
}

// notify sends ev to the call's goroutine. The protocol guarantees the
// channel holds no other event than a due one: an event is only sent on
// a transition out of stQueued or stSent, and the goroutine consumes each
// before the call can reach either state again.
func (k *call) notify(ev event) {
	select {
	case k.ch <- ev:
	default:
		panic("pool: internal error: a call was sent two events")
	}
}

// finish ends the call with resp or err. Called with u.mu held.
func (k *call) finish(resp *wire.Response, err error) {
	k.state = stDone
	k.u.unwatch(k)
	k.notify(event{resp: resp, err: err})
}

// retryable reports whether the call may be sent again after its
// connection failed: an idempotent method, a body not yet read, not
// retried before, and a caller still waiting.
func (k *call) retryable() bool {
	return k.idempotent && k.retries < 1 && !k.bodyStarted.Load() && k.ctx.Err() == nil
}

// maxRequeues bounds how often a call is resent because its connection
// closed politely or its response was stuck behind a streamed body.
const maxRequeues = 4

// timeoutError is a call that ran out of time; it satisfies net.Error
// with Timeout() true and wraps context.DeadlineExceeded, so forward
// maps it to 504.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }
func (e *timeoutError) Unwrap() error   { return context.DeadlineExceeded }

// run carries the call to its outcome.
func (k *call) run() (*wire.Response, error) {
	u := k.u
	s := &u.set
	// The clock is read at most once here, and not at all when the
	// request says when the server began to serve it (the stages' few
	// microseconds before this call); until the call first waits
	// (waited), start stands for the present moment, give or take that
	// and the enqueueing under u.mu, so a connection handed over at once
	// gets its head deadline from it without a second read. The
	// deadlines are then at most that much earlier than from the moment
	// the request is sent: never later, so no timeout is weakened.
	start := k.req.Start
	if start.IsZero() {
		start = time.Now()
	}
	waited := false
	var callDeadline, headDeadline time.Time
	if s.CallTimeout > 0 {
		callDeadline = start.Add(s.CallTimeout)
	}
	// wait is the deadline of the present wait (zero: none), watched
	// the one last given to u.watch: the sweeper is told only when the
	// call is about to wait, or under a lock it takes anyway (enqueue,
	// send), so a call answered at once is never watched.
	wait := callDeadline
	var watched time.Time
	u.mu.Lock()
	if u.removed {
		u.mu.Unlock()
		return nil, errRemoved
	}
	if start.After(u.lastCall) {
		u.lastCall = start
	}
	u.enqueue(k)
	if k.state == stQueued && !wait.IsZero() {
		u.watch(k, wait)
		watched = wait
	}
	u.mu.Unlock()
	var bodyStart time.Time
	writers := 0 // body writers started whose result has not been received
	var outcome *wire.Response
	received := false // the outcome came on k.ch
	defer func() {
		if k.kind == wire.BodyNone {
			k.closeBody()
			if received {
				k.release(outcome)
			}
			return
		}
		u.mu.Lock()
		k.returned = true
		active := k.writerActive
		u.mu.Unlock()
		if !active {
			k.closeBody()
		}
	}()
	for {
		var ev event
		select {
		case ev = <-k.ch:
		default:
			if !wait.Equal(watched) {
				u.mu.Lock()
				u.watch(k, wait)
				u.mu.Unlock()
				watched = wait
			}
			waited = true
			select {
			case ev = <-k.ch:
			case err := <-k.wrote:
				writers--
				if err != nil {
					continue // the connection's failure brings the outcome
				}
				now := time.Now()
				if !callDeadline.IsZero() {
					callDeadline = callDeadline.Add(now.Sub(bodyStart))
				}
				if s.RequestTimeout > 0 {
					headDeadline = now.Add(s.RequestTimeout)
				}
				wait = earliest(callDeadline, headDeadline)
				continue
			case <-k.ctx.Done():
				return nil, k.abandon(k.ctx.Err(), false)
			}
		}
		if ev.err == errDue {
			if wait.IsZero() || time.Now().Before(wait) {
				// Due for a deadline since put off: watched again.
				watched = time.Time{}
				continue
			}
			return nil, k.abandon(k.timeout(callDeadline, headDeadline), true)
		}
		if ev.conn == nil {
			outcome, received = ev.resp, true
			return ev.resp, ev.err
		}
		now := start
		if waited {
			now = time.Now()
		}
		headDeadline = time.Time{}
		if s.RequestTimeout > 0 {
			headDeadline = now.Add(s.RequestTimeout)
		}
		if k.kind != wire.BodyNone {
			if writers > 0 {
				for ; writers > 0; writers-- {
					<-k.wrote // the previous attempt's writer has let go of the body
				}
				now = time.Now()
			}
			bodyStart = now
			// For the writer, when k reads its own response.
			k.bodyStart, k.callDeadline, k.headDeadline = bodyStart, callDeadline, time.Time{}
			if k.sendBody(ev.conn) {
				writers++
				// The clocks stop while the body is sent.
				wait = time.Time{}
				watched = wait // sendBody stopped the watch
				if ev.conn.callerReads {
					if resp, done, err := k.readOwn(ev.conn, time.Time{}, time.Time{}); done {
						return resp, err
					}
				}
			}
			continue
		}
		wait = earliest(callDeadline, headDeadline)
		read := k.send(ev.conn, wait)
		watched = wait // send watches the call for wait
		if !read {
			continue
		}
		if resp, done, err := k.readOwn(ev.conn, callDeadline, headDeadline); done {
			if err == nil {
				outcome, received = resp, true
			}
			return resp, err
		}
	}
}

// readOwn has k read its response on c (callerReads), and says whether k
// is done: with the response, or giving up because the sweeper cut the
// read (k is due by callDeadline or headDeadline, or its context is
// done). Otherwise its connection failed, and k waits for its next event.
func (k *call) readOwn(c *conn, callDeadline, headDeadline time.Time) (*wire.Response, bool, error) {
	resp, cut := c.readFor(k)
	switch {
	case resp != nil:
		return resp, true, nil
	case !cut:
		return nil, false, nil
	}
	if k.kind != wire.BodyNone {
		// The writer started the clocks once the body was sent (zero
		// before: the cut is then the context's).
		k.u.mu.Lock()
		callDeadline, headDeadline = k.callDeadline, k.headDeadline
		k.u.mu.Unlock()
	}
	wait := earliest(callDeadline, headDeadline)
	if err := k.ctx.Err(); err != nil && (wait.IsZero() || time.Now().Before(wait)) {
		return nil, true, k.abandon(err, false)
	}
	return nil, true, k.abandon(k.timeout(callDeadline, headDeadline), true)
}

// startHeadClock starts the clocks of a call whose body was just sent and
// which reads its own response (callerReads): call_timeout goes on from
// where it stopped when the body started, request_timeout starts, and the
// sweeper watches the call for the earlier. Called with u.mu held, by the
// body writer.
func (k *call) startHeadClock() {
	now := time.Now()
	if !k.callDeadline.IsZero() {
		k.callDeadline = k.callDeadline.Add(now.Sub(k.bodyStart))
	}
	k.headDeadline = time.Time{}
	if d := k.u.set.RequestTimeout; d > 0 {
		k.headDeadline = now.Add(d)
	}
	if w := earliest(k.callDeadline, k.headDeadline); !w.IsZero() {
		k.u.watch(k, w)
	}
}

// timeout is the error of a call due by the earlier of callDeadline and
// headDeadline.
func (k *call) timeout(callDeadline, headDeadline time.Time) error {
	which := "call_timeout"
	if !headDeadline.IsZero() && (callDeadline.IsZero() || headDeadline.Before(callDeadline)) {
		which = "request_timeout"
	}
	return &timeoutError{msg: fmt.Sprintf("pool: %s %s: no response head within %s", k.u.key, k.req.Method, which)}
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// abandon ends a call whose caller gives up (cancelled, or out of time).
// A request not yet sent is dropped; one sent alone on its connection, or
// at the head of it when time ran out, closes the connection; one sent
// behind others is left to be read and discarded.
func (k *call) abandon(err error, timeout bool) error {
	u := k.u
	u.mu.Lock()
	var failConn *conn
	switch k.state {
	case stDone:
		// The outcome came at the same time.
		u.mu.Unlock()
		ev := k.next()
		if ev.resp != nil {
			ev.resp.Body.Close()
		}
		return err
	case stQueued:
		u.removeWaiter(k)
		u.unreserve(k)
	case stAssigned:
		k.next()
		c := k.conn
		c.reserved--
		if c.excl == k {
			c.excl = nil
		}
		u.dispatch()
	case stSent:
		k.state = stAbandoned
		c := k.conn
		if len(c.pending) > 0 && c.pending[0] == k && !c.streaming && timeout {
			failConn = c // the backend is late: give the connection up
		}
		if !c.streaming {
			// Nobody left waiting on the connection: close it rather
			// than wait for answers no one wants.
			all := true
			for _, x := range c.pending {
				all = all && x.state == stAbandoned
			}
			if all {
				failConn = c
			}
		}
	}
	k.state = stAbandoned
	u.unwatch(k)
	u.st.abandoned++
	if timeout {
		u.st.timeouts++
	}
	u.mu.Unlock()
	if failConn != nil {
		failConn.fail(err, failAbort, nil)
	}
	return err
}

// next receives the call's next event other than a due one.
func (k *call) next() event {
	for {
		if ev := <-k.ch; ev.err != errDue {
			return ev
		}
	}
}

// closeBody closes the request body once, as RoundTrip must.
func (k *call) closeBody() {
	if k.req.Body != nil && k.bodyClosed.CompareAndSwap(false, true) {
		k.req.Body.Close()
	}
}

// send writes a request without body on c. The writers queued on c
// share one flush: the last one flushes. It reports whether the request
// was written on a connection whose calls read their own response
// (callerReads): k is then to read it (conn.readFor).
func (k *call) send(c *conn, deadline time.Time) bool {
	u := k.u
	c.writers.Add(1)
	c.wmu.Lock()
	u.mu.Lock()
	c.reserved--
	gone := c.goneFor(k, c.rawSend)
	if gone || c.broken || c.closing || c.streaming {
		// It turned unusable between assignment and write: nothing
		// was sent.
		if c.excl == k {
			c.excl = nil
		}
		k.state = stQueued
		u.requeueFront(k)
		u.watch(k, deadline)
		u.dispatch()
		u.mu.Unlock()
		err := c.endWrite()
		c.wmu.Unlock()
		if gone {
			c.closeNet()
		}
		if err != nil {
			c.fail(err, failWrite, nil)
		}
		return false
	}
	c.pending = append(c.pending, k)
	k.state = stSent
	if c.callerReads {
		c.startRead(k, deadline)
	} else {
		u.watch(k, deadline)
	}
	k.writing.Store(true)
	if n := len(c.pending); n > 1 {
		u.st.pipelined++
		if n > u.st.maxDepth {
			u.st.maxDepth = n
		}
	}
	u.mu.Unlock()
	c.setWriteDeadline(deadline) // for a head written in part
	if c.rawSend {
		// Written by readFor, from within its wait for the answer.
		// k.writing stays set until the head is written whole
		// (sendStep, or sendAndWait for a head written in part): the
		// sweeper, finding k due while it is set, gives the connection
		// up, which ends a write that blocks; finding it clear, it
		// cuts only the read.
		c.out = k.req.AppendHead(c.out[:0])
		c.writers.Add(-1)
		c.wmu.Unlock()
		return true
	}
	writeHead(c.bw, k.req)
	err := c.endWrite()
	k.writing.Store(false)
	c.wmu.Unlock()
	if err != nil {
		c.failWrite(err)
		return false
	}
	return c.callerReads
}

// goneFor looks at c before k is sent on it (callerReads: nobody reads
// c while it is idle), when c has answered before or k is not
// idempotent: when the backend closed it or sent bytes on it, c is given
// up (and reported gone, for the caller to close it after unlocking).
// So bytes nobody asked for are never read as k's answer, and k, when it
// must not be sent twice, is never sent where it could not be answered.
// With late set (k is to be written by sendAndWait), the look at the
// socket is left to sendStep, which makes it after the poller has reset
// the socket's readiness (lookFirst), and it is made before every
// request, on a fresh connection too: that wait starts without a read,
// so the look is what sees a close that came before the reset (a backend
// that shut a connection down for writing as it accepted it, say); only
// bytes already buffered are looked at here. Called with u.mu held.
func (c *conn) goneFor(k *call, late bool) bool {
	c.lookFirst = false
	if !c.callerReads || c.broken || c.closing || c.streaming || len(c.pending) > 0 {
		return false
	}
	if late && c.br.Buffered() == 0 {
		c.lookFirst = true
		return false
	}
	if c.served == 0 && k.idempotent {
		return false
	}
	kind, err := c.idleGone()
	return err != nil && c.failLocked(err, kind, nil)
}

// answerMayCome reports, after the write of k's body failed, whether k's
// answer may still be read: k is being read (by its own goroutine,
// callerReads, or by the connection's reader goroutine, k alone in
// pending) and the connection was not given up. A backend that
// answers early (a 413, say) and closes with body bytes unread resets
// the connection, which fails the write; TCP delivers the answer before
// the reset, so the read gets it, whether or not it has taken it from
// the socket yet. The connection is then not used again, and the read,
// bounded by k's head clock, takes the answer or fails as a read (an
// early close): a write fails only on a connection whose reads end too
// (a reset, a close, a dead peer). Called with u.mu held.
func (c *conn) answerMayCome(k *call) bool {
	if c.broken || k.state != stSent {
		return false
	}
	reading := c.reader == k // k reads its own answer
	if !c.callerReads {
		reading = len(c.pending) == 1 && c.pending[0] == k // the reader goroutine reads it next
	}
	if !reading {
		return false
	}
	c.closing = true
	return true
}

// sendBody registers a request with a body on c (which has nothing else
// in flight) and starts writing it in its own goroutine, so that an early
// response can be read while the body is still being sent. It reports
// whether the writer was started.
func (k *call) sendBody(c *conn) bool {
	u := k.u
	c.wmu.Lock()
	u.mu.Lock()
	c.reserved--
	gone := c.goneFor(k, false)
	if gone || c.broken || c.closing || len(c.pending) > 0 {
		if c.excl == k {
			c.excl = nil
		}
		k.state = stQueued
		u.requeueFront(k)
		u.dispatch()
		u.mu.Unlock()
		c.wmu.Unlock()
		if gone {
			c.closeNet()
		}
		return false
	}
	c.pending = append(c.pending, k)
	k.state = stSent
	if c.callerReads {
		// The clocks stop while the body is sent; the sweeper still
		// cuts k's read when its context is done.
		c.startRead(k, time.Time{})
	} else {
		u.unwatch(k) // the clocks stop while the body is sent
	}
	c.writingBody = true
	k.writerActive = true
	u.mu.Unlock()
	go func() {
		c.setWriteDeadline(time.Time{})
		writeHead(c.bw, k.req)
		err := writeBody(c.bw, k.req, k.kind, &k.bodyStarted)
		c.wmu.Unlock()
		answered := false
		if err != nil {
			var be *BodyError
			if errors.As(err, &be) {
				c.fail(err, failAbort, &culprit{k: k, err: err})
			} else {
				u.mu.Lock()
				answered = c.answerMayCome(k)
				u.mu.Unlock()
				if !answered {
					c.fail(err, failWrite, nil)
				}
			}
		}
		u.mu.Lock()
		c.writingBody = false
		k.writerActive = false
		if (err == nil || answered) && c.reader == k {
			k.startHeadClock()
		}
		if answered && !c.callerReads {
			err = nil // the caller starts its clocks for the answer, as after a whole body
		}
		// The body stays open only for a resend: nothing of it was
		// read and the call is queued again.
		keep := !k.bodyStarted.Load() && !k.returned && (k.state == stQueued || k.state == stAssigned)
		u.mu.Unlock()
		if !keep {
			k.closeBody()
		}
		k.wrote <- err
	}()
	return true
}
