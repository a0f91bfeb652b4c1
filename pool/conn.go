package pool

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ocsiproxy/ocsiproxy/wire"
)

const (
	// readBufferSize is the size of a connection's read buffer, as
	// net/http's Transport and nginx's proxy_buffer_size: a head that
	// does not fit is parsed by ReadMIMEHeader, a body is read past the
	// buffer straight into its own memory. A larger buffer only moved
	// more of a large body through it: with 32 KiB, a 64 KiB answer cost
	// 11% more CPU (a 32 KiB copy), and each connection 28 KiB more.
	readBufferSize  = 4 << 10
	writeBufferSize = 4 << 10
	// maxHeaderBytes bounds a response head (and a trailer section).
	maxHeaderBytes = 1 << 20
	// drainLimit and drainTimeout bound the reading of what is left of
	// a response whose client went away, to keep its connection.
	drainLimit   = 256 << 10
	drainTimeout = 2 * time.Second
)

var (
	errPoolClosed   = errors.New("pool: closed")
	errConnClosed   = errors.New("pool: the backend closed the connection before answering")
	errHeadTooLarge = &FramingError{Msg: "response head over 1 MiB"}
	errUnsolicited  = &FramingError{Msg: "bytes from the backend with no request outstanding"}
	errBodyClosed   = errors.New("pool: read on a closed response body")
	errDrain        = errors.New("pool: response left unread by its client")
)

// failKind says why a connection is given up.
type failKind uint8

const (
	failEarlyClose failKind = iota // closed or reset by the server with requests unanswered
	failFraming                    // a response that cannot be delimited: poisoned
	failWrite                      // a request could not be written
	failAbort                      // our decision: a timeout, a client gone, the pool closing
)

// String says why the connection was given up, for the event log.
func (k failKind) String() string {
	switch k {
	case failEarlyClose:
		return "closed by the backend"
	case failFraming:
		return "response cannot be delimited"
	case failWrite:
		return "request not written"
	}
	return "given up"
}

// culprit is the call whose own outcome is err when its connection
// fails: it is not resent.
type culprit struct {
	k   *call
	err error
}

// conn is one connection to a backend. On a connection that may pipeline
// (see callerReads), a goroutine (readLoop) reads the responses, in order,
// and hands each to the call at the head of pending; on one that may not,
// each call reads its own response (see conn.readFor).
type conn struct {
	u   *upstream
	raw net.Conn // the TCP connection, closed to abort
	nc  net.Conn // raw, or the TLS connection over it
	lc  *limitedConn
	br  *bufio.Reader
	bw  *bufio.Writer
	tp  textproto.Reader
	// callerReads is set on the connections of an upstream whose
	// PipelineDepth is 1 (no pipelining): there is no reader goroutine,
	// the call that sent a request reads its response itself (while its
	// body, if any, is being sent by the body writer): see callerread.go.
	callerReads bool
	// rc is the socket, for the non-blocking look at an idle connection
	// before a request that must not be sent twice (see idleGone); nil
	// when the connection does not give one.
	rc syscall.RawConn
	// rawSend is set on a plain TCP connection whose calls read their own
	// answers (callerReads, rc set): a request without a body is not
	// written by send but left in out, for readFor to write from within
	// its wait for the answer (see conn.sendAndWait).
	rawSend bool
	out     []byte
	// The state of a look at the socket (peekSocket) and of a write
	// from within the wait (sendAndWait), kept here with the functions
	// syscall.RawConn calls, so that neither allocates. lookFirst has
	// sendStep look at the socket before it writes (see goneFor).
	peekFn        func(fd uintptr)
	peeked        sockState
	sendFn        func(fd uintptr) bool
	sendOut, rest []byte
	lookFirst     bool
	wrote         bool
	werr, rerr    error
	sending       *call // the call whose head sendStep writes
	// strs makes the strings of the answers' heads (of the one goroutine
	// reading an answer at a time): many answers share one allocation.
	strs wire.Strings

	// Guarded by u.mu.
	pending        []*call // sent, in the order written; the head is answered first
	reserved       int     // calls assigned, not yet in pending
	excl           *call   // a call that is not pipelinable, assigned or in flight
	served         int     // complete responses
	trusted        bool    // passed probation: may carry pipelined requests
	streaming      bool    // the head's body is being streamed to its caller
	closing        bool    // takes no new call; closed after the current response
	countedClosing bool    // closing while still in u.conns, counted in u.closingConns
	broken         bool    // given up; no longer in u.conns
	writingBody    bool    // a request body is being sent
	owner          *call   // a nopipeline call this connection was opened for
	reservedFor    *call   // kept free of new calls for this one
	inIdle         bool    // in u.idle
	idleSince      time.Time
	// reader is the call reading its response in its own goroutine
	// (callerReads), which the sweeper cuts, when it is due or its
	// caller gone, by a read deadline in the past: cut says it did.
	reader *call
	cut    bool

	wmu     sync.Mutex // held while writing a request
	writers atomic.Int32
	wdl     time.Time // write deadline in force (under wmu)

	bodyCh chan bodyEvent
}

func newConn(u *upstream, raw, nc net.Conn) *conn {
	c := &conn{u: u, raw: raw, nc: nc, bodyCh: make(chan bodyEvent, 1)}
	c.lc = &limitedConn{Conn: nc, fd: -1}
	c.br = bufio.NewReaderSize(c.lc, readBufferSize)
	c.bw = bufio.NewWriterSize(nc, writeBufferSize)
	c.tp.R = c.br
	c.trusted = u.set.Probation == 0
	c.idleSince = time.Now()
	if c.callerReads = u.set.PipelineDepth <= 1; c.callerReads {
		if sc, ok := raw.(syscall.Conn); ok {
			c.rc, _ = sc.SyscallConn()
		}
		c.rawSend = rawSendable && c.rc != nil && nc == raw
		if c.rc != nil {
			c.peekFn = c.peekStep
		}
		if c.rawSend {
			c.sendFn = c.sendStep
		}
	}
	return c
}

// limitedConn bounds reads while it is limited: a response head that
// does not end is an error, not unbounded memory.
type limitedConn struct {
	net.Conn
	n  int64
	on bool
	// failed records a read error (EOF included): a head cut short by
	// it is an early close, not a malformed one.
	failed bool
	// fd, when not -1, is the socket to read by a system call of its own
	// (within syscall.RawConn.Read: see conn.sendAndWait); nothing to read
	// is then syscall.EAGAIN.
	fd int
}

func (l *limitedConn) Read(p []byte) (int, error) {
	if l.on {
		if l.n <= 0 {
			return 0, errHeadTooLarge
		}
		if int64(len(p)) > l.n {
			p = p[:l.n]
		}
	}
	var n int
	var err error
	if l.fd >= 0 {
		if n, err = l.readRaw(p); err == syscall.EAGAIN {
			return 0, err // nothing yet: not a failure
		}
	} else {
		n, err = l.Conn.Read(p)
	}
	if l.on {
		l.n -= int64(n)
	}
	if err != nil {
		l.failed = true
	}
	return n, err
}

func (l *limitedConn) limit(n int64) { l.n, l.on = n, true }
func (l *limitedConn) unlimit()      { l.on = false }

// closeNet closes the TCP connection (no TLS close_notify: nothing may
// block here).
func (c *conn) closeNet() { c.raw.Close() }

// abortRead makes a blocked read return: the caller of a streamed body
// went away.
func (c *conn) abortRead() { c.nc.SetReadDeadline(time.Unix(1, 0)) }

// setWriteDeadline bounds the writes of a request due by t (zero: no
// bound). Moving a deadline is a runtime timer operation, and t differs
// on every request: the deadline in force is kept when it is not earlier
// than t and at most u.wslack later, and a new one is set u.wslack after
// t, so that a busy connection moves it about once per u.wslack. A write
// blocked past t does not make its call late: the sweeper cuts it (see
// upstream.sweep); the write deadline only backs that up.
func (c *conn) setWriteDeadline(t time.Time) {
	if t.IsZero() {
		if !c.wdl.IsZero() {
			c.nc.SetWriteDeadline(t)
			c.wdl = t
		}
		return
	}
	if !c.wdl.IsZero() && !c.wdl.Before(t) && c.wdl.Sub(t) <= c.u.wslack {
		return
	}
	c.wdl = t.Add(c.u.wslack)
	c.nc.SetWriteDeadline(c.wdl)
}

// endWrite ends a writer's turn; the last writer waiting flushes for all.
// Called with wmu held.
func (c *conn) endWrite() error {
	if c.writers.Add(-1) == 0 {
		return c.bw.Flush()
	}
	return nil
}

// popFront removes the head of pending. Called with u.mu held.
func (c *conn) popFront() {
	k := c.pending[0]
	copy(c.pending, c.pending[1:])
	c.pending[len(c.pending)-1] = nil
	c.pending = c.pending[:len(c.pending)-1]
	if c.excl == k {
		c.excl = nil
	}
}

// responded records a complete response. Called with u.mu held.
func (c *conn) responded(resp *wire.Response, keep bool) {
	c.served++
	if keep && resp.ProtoMinor == 1 && c.served >= c.u.set.Probation {
		c.trusted = true
	}
}

// fail gives the connection up after cause: every call sent on it and
// not answered is sent again elsewhere when it may be (idempotent, body
// not read, not resent before; requests of ours that were merely left
// behind are resent without using up that chance), and otherwise ends
// with an error. A connection that carried pipelined requests and was
// closed without notice or poisoned makes the upstream distrusted.
func (c *conn) fail(cause error, kind failKind, cp *culprit) {
	u := c.u
	u.mu.Lock()
	failed := c.failLocked(cause, kind, cp)
	u.mu.Unlock()
	if failed {
		c.closeNet()
	}
}

// failLocked is fail with u.mu held; the caller closes the network
// connection after unlocking when it reports true (it was not given up
// before).
func (c *conn) failLocked(cause error, kind failKind, cp *culprit) bool {
	u := c.u
	if c.broken {
		return false
	}
	c.broken, c.closing = true, true
	u.removeConn(c)
	c.cut = false // no deadline to undo: the connection is closed
	c.endRead()
	pend := c.pending
	c.pending = nil
	var resend []*call
	for _, k := range pend {
		if k.state != stSent {
			continue // answered (its body sees the close) or abandoned
		}
		switch {
		case cp != nil && k == cp.k:
			k.finish(nil, cp.err)
		case kind == failAbort && k.idempotent && !k.bodyStarted.Load() && k.requeues < maxRequeues && k.ctx.Err() == nil:
			k.requeues++
			u.st.requeued++
			resend = append(resend, k)
		case k.retryable():
			k.retries++
			u.st.retries++
			resend = append(resend, k)
		default:
			k.finish(nil, &lostError{key: u.key, err: cause})
		}
	}
	for i := len(resend) - 1; i >= 0; i-- {
		u.requeueFront(resend[i])
	}
	switch kind {
	case failFraming:
		u.st.poisoned++
	case failEarlyClose:
		if len(pend) > 0 {
			u.st.earlyCloses++
		}
	}
	if u.p.logf != nil {
		u.p.logf("pool: %s: connection %s closed (%s: %v), %d requests sent again", u.key, c.raw.LocalAddr(), kind, cause, len(resend))
	}
	if len(pend) >= 2 && (kind == failFraming || kind == failEarlyClose) {
		u.distrust()
	}
	c.excl, c.reservedFor = nil, nil
	u.dispatch()
	return true
}

// requeueBehind sends again, elsewhere, every call behind the head of
// pending: the connection will be closed after the head's response.
// Called with u.mu held.
func (c *conn) requeueBehind(hol bool) {
	u := c.u
	c.closing = true
	if !c.countedClosing {
		// It only finishes the response it streams: it no longer
		// counts against Workers.
		c.countedClosing = true
		u.closingConns++
	}
	if len(c.pending) < 2 {
		return
	}
	behind := c.pending[1:]
	for i := len(behind) - 1; i >= 0; i-- {
		k := behind[i]
		if k.state != stSent {
			continue
		}
		if k.requeues < maxRequeues && k.ctx.Err() == nil {
			k.requeues++
			if hol {
				u.st.holResends++
			} else {
				u.st.requeued++
			}
			u.requeueFront(k)
		} else {
			k.finish(nil, errConnClosed)
		}
	}
	clear(behind)
	c.pending = c.pending[:1]
	u.dispatch()
}

// retire closes a connection after its last response, sending again the
// calls written behind it. Called with u.mu held; the caller closes the
// network connection after unlocking.
func (c *conn) retire() {
	u := c.u
	c.broken, c.closing = true, true
	u.removeConn(c)
	pend := c.pending
	c.pending = nil
	resent := 0
	for i := len(pend) - 1; i >= 0; i-- {
		k := pend[i]
		if k.state != stSent {
			continue
		}
		if k.requeues < maxRequeues && k.ctx.Err() == nil {
			k.requeues++
			u.st.requeued++
			resent++
			u.requeueFront(k)
		} else {
			k.finish(nil, errConnClosed)
		}
	}
	if u.p.logf != nil {
		u.p.logf("pool: %s: connection %s closed after its response (not reusable), %d requests sent again", u.key, c.raw.LocalAddr(), resent)
	}
	c.excl, c.reservedFor = nil, nil
	u.dispatch()
}

// readLoop reads the responses of the connection in order (a connection
// that may pipeline).
func (c *conn) readLoop() {
	for c.readNext() {
		if c.br.Buffered() == 0 {
			// The caller, runnable now, writes its answer to the client
			// before this goroutine reads the connection again: that read
			// finds nothing while no request is in flight, and the wait
			// after it would otherwise come first. At one connection, a
			// system call and a park less before each answer goes out.
			runtime.Gosched()
		}
	}
}

// readNext reads the next response of the connection and hands it to the
// call at the head of pending. It reports whether the connection goes on.
func (c *conn) readNext() bool {
	u := c.u
	_, perr := c.br.Peek(1)
	u.mu.Lock()
	if c.broken {
		u.mu.Unlock()
		return false
	}
	// What the reader needs of the call is read under the lock: once it
	// is unlocked, a failure of the connection (a timeout, a cancel) can
	// end the call and its caller reuse it.
	var k *call
	var method string
	var fresh bool
	if len(c.pending) > 0 {
		k = c.pending[0]
		method, fresh = k.req.Method, k.fresh
	}
	u.mu.Unlock()
	switch {
	case perr != nil && k == nil:
		c.fail(perr, failAbort, nil) // an idle connection closed
		return false
	case perr != nil:
		c.fail(perr, failEarlyClose, nil)
		return false
	case k == nil:
		c.fail(errUnsolicited, failFraming, nil)
		return false
	}
	h, keep, body, f := c.readAnswer(k, method, fresh)
	if f != nil {
		c.fail(f.err, f.kind, f.cp)
		return false
	}
	if body != nil {
		_, goesOn := c.complete(k, h.resp, body, keep, false)
		return goesOn
	}
	return c.stream(k, h, keep)
}

// testHookAnswerHead, set by tests, is called by readAnswer once a head
// was read.
var testHookAnswerHead func(c *conn)

// readFailure is why a response could not be read: its connection is given
// up with it.
type readFailure struct {
	err  error
	kind failKind
	cp   *culprit
}

// readAnswer reads the head of the response to k, the head of pending,
// whose method and fresh are given (read under u.mu by a reader
// goroutine, see readNext), and its body when it is read whole (see
// bufferedBody): body is nil when the body is to be streamed. keep says
// whether the connection may carry another request after it.
func (c *conn) readAnswer(k *call, method string, fresh bool) (h *head, keep bool, body io.ReadCloser, f *readFailure) {
	c.lc.limit(maxHeaderBytes)
	h, err := readHead(&c.tp, method, &c.strs)
	c.lc.unlimit()
	if err != nil {
		var fe *FramingError
		if errors.As(err, &fe) && !c.lc.failed {
			return nil, false, nil, &readFailure{err: err, kind: failFraming, cp: &culprit{k: k, err: err}}
		}
		return nil, false, nil, &readFailure{err: err, kind: failEarlyClose}
	}
	if testHookAnswerHead != nil {
		testHookAnswerHead(c)
	}
	keep = h.keepAlive && !fresh && c.owner == nil
	body, f = c.bufferedBody(k, h)
	if body != nil {
		// Read whole: once handed over, nothing here refers to h, and
		// the receiver may give it back (wire.Response.Release).
		h.resp.SetRecycler(h)
	}
	return h, keep, body, f
}

// bufferedBody reads the body of h whole when it has no body, a
// Content-Length up to MaxBuffered, or is chunked and already all
// received (up to MaxBuffered). It returns nil to stream the body, and a
// failure when the body could not be read.
func (c *conn) bufferedBody(k *call, h *head) (io.ReadCloser, *readFailure) {
	max := c.u.set.MaxBuffered
	switch h.framing {
	case framingNone:
		return http.NoBody, nil
	case framingLength:
		if h.length == 0 {
			return http.NoBody, nil
		}
		if h.length > max {
			return nil, nil
		}
		pb := getBuf(int(h.length))
		if _, err := io.ReadFull(c.br, *pb); err != nil {
			putBuf(pb)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, &readFailure{err: err, kind: failEarlyClose}
		}
		h.body = bytesBody{b: *pb, pb: pb}
		return &h.body, nil
	case framingChunked:
		n := c.br.Buffered()
		if n == 0 {
			return nil, nil
		}
		p, _ := c.br.Peek(n)
		_, size, complete := chunkedComplete(p)
		if !complete || size > max {
			return nil, nil
		}
		pb := getBuf(int(size))
		// A body chunkedComplete takes has no trailer section: the names
		// a Trailer header announced get no value, and the body goes on
		// with a length.
		h.resp.Trailer = nil
		cr := newChunkedReader(c.br, &c.tp, nil)
		_, err := io.ReadFull(cr, *pb)
		if err == nil {
			var one [1]byte
			if m, e := cr.Read(one[:]); m != 0 || e != io.EOF {
				err = framingErrorf("chunked body longer than announced")
			}
		}
		if err != nil {
			putBuf(pb)
			if _, ok := err.(*FramingError); !ok {
				err = framingErrorf("chunked body: %v", err)
			}
			return nil, &readFailure{err: err, kind: failFraming, cp: &culprit{k: k, err: err}}
		}
		h.resp.ContentLength = size
		if size == 0 {
			putBuf(pb)
			return http.NoBody, nil
		}
		h.body = bytesBody{b: *pb, pb: pb}
		return &h.body, nil
	}
	return nil, nil
}

// complete hands over a response whose body is already read, and readies
// the connection for the next one: to k's goroutine by an event, or, when
// direct (k reads its own response), by k.state alone, for k to return
// resp. It reports whether the response went to k, and whether the
// connection goes on.
func (c *conn) complete(k *call, resp *wire.Response, body io.ReadCloser, keep, direct bool) (delivered, goesOn bool) {
	u := c.u
	u.mu.Lock()
	if c.broken {
		u.mu.Unlock()
		body.Close()
		return false, false
	}
	c.endRead()
	c.popFront()
	if keep && len(c.pending) == 0 && c.br.Buffered() > 0 {
		// Bytes after a whole answer that no request asked for (a body
		// after a 204 or a HEAD answer): the next request's answer could
		// not be told from them, so the connection is not reused.
		keep = false
	}
	// Before the hand-over: the receiver may release resp at once.
	c.responded(resp, keep)
	delivered = k.state == stSent
	if delivered {
		resp.Body = body
		k.deliver(resp, direct)
	}
	if !keep || c.closing || c.writingBody {
		c.retire()
		u.mu.Unlock()
		c.closeNet()
		if !delivered {
			body.Close()
		}
		return delivered, false
	}
	if len(c.pending)+c.reserved == 0 {
		c.idleSince = u.idleNow()
		u.pushIdle(c)
	}
	u.dispatch()
	u.mu.Unlock()
	if !delivered {
		body.Close()
	}
	return delivered, true
}

// stream hands over a response whose body is read by its caller from the
// connection, and waits until the body is done (see startStream and
// endStream). It reports whether the connection goes on.
func (c *conn) stream(k *call, h *head, keep bool) bool {
	sb, _ := c.startStream(k, h, keep, false)
	if sb == nil {
		return false
	}
	return c.endStream(sb, <-c.bodyCh)
}

// startStream hands over a response whose body is read by its caller
// from the connection: to k's goroutine by an event, or, when direct, by
// k.state alone (k returns sb.resp). No request is pipelined behind it
// meanwhile, and those already behind it are sent again elsewhere after
// HOLTimeout. When direct, the body's end is handled by whoever ends it
// (see streamBody.end); otherwise the caller of startStream waits for it
// on c.bodyCh. It returns nil when the connection failed meanwhile.
func (c *conn) startStream(k *call, h *head, keep, direct bool) (sb *streamBody, delivered bool) {
	u := c.u
	sb = &streamBody{c: c, remaining: -1, resp: h.resp, keep: keep, direct: direct}
	switch h.framing {
	case framingLength:
		sb.r, sb.remaining = c.br, h.length
	case framingChunked:
		sb.r = newChunkedReader(c.br, &c.tp, h.resp)
	default:
		sb.r, sb.untilClose = c.br, true
	}
	resp := h.resp
	resp.Body = sb
	u.mu.Lock()
	if c.broken {
		u.mu.Unlock()
		return nil, false
	}
	// The sweeper no longer cuts the read (and a cut it made is undone)
	// before the body's own watch on the context starts.
	c.endRead()
	c.streaming = true
	if !keep {
		c.requeueBehind(false)
	}
	delivered = k.state == stSent
	if delivered {
		sb.stop = context.AfterFunc(k.ctx, c.abortRead)
		k.deliver(resp, direct)
		switch d := u.set.HOLTimeout; {
		case d == 0:
			c.requeueBehind(true)
			u.dispatch()
		case d > 0:
			sb.hol = time.AfterFunc(d, func() { c.rescue(k) })
		}
	}
	u.mu.Unlock()
	if !delivered {
		sb.direct = false // nobody reads it: its end goes to c.bodyCh
		sb.Close()
	}
	return sb, delivered
}

// endStream readies the connection after the streamed body sb ended as
// ev says: drained (a client that closed it early), given up, or idle
// again. It reports whether the connection goes on.
func (c *conn) endStream(sb *streamBody, ev bodyEvent) bool {
	u := c.u
	if sb.hol != nil {
		sb.hol.Stop()
	}
	switch ev.end {
	case endEarly:
		if !c.drain(sb) {
			c.fail(errDrain, failAbort, nil)
			return false
		}
	case endBroken:
		kind := failEarlyClose
		var fe *FramingError
		if errors.As(ev.err, &fe) {
			kind = failFraming
		} else if sb.ctxFired || isTimeout(ev.err) {
			kind = failAbort
		}
		c.fail(ev.err, kind, nil)
		return false
	}
	u.mu.Lock()
	if c.broken {
		u.mu.Unlock()
		return false
	}
	if ev.end == endEarly {
		u.st.drained++
	}
	c.streaming = false
	c.popFront()
	c.responded(sb.resp, sb.keep)
	if !sb.keep || c.closing || c.writingBody {
		c.retire()
		u.mu.Unlock()
		c.closeNet()
		return false
	}
	if len(c.pending)+c.reserved == 0 {
		c.idleSince = u.idleNow()
		u.pushIdle(c)
	}
	u.dispatch()
	u.mu.Unlock()
	return true
}

// rescue runs when front's body has been streamed for HOLTimeout: the
// requests pipelined behind it are sent again elsewhere, and the
// connection, which a client's reading now holds, stops counting against
// Workers (it is closed when the body ends), so that the calls waiting for
// a connection get a new one. This is the head-of-line bound.
func (c *conn) rescue(front *call) {
	u := c.u
	u.mu.Lock()
	if !c.broken && c.streaming && len(c.pending) > 0 && c.pending[0] == front {
		c.requeueBehind(true)
		u.dispatch()
	}
	u.mu.Unlock()
}

// drain reads what is left of a body its caller closed early, so that the
// connection can be kept: at most drainLimit bytes within drainTimeout.
func (c *conn) drain(sb *streamBody) bool {
	if !sb.drainable() {
		return false
	}
	c.nc.SetReadDeadline(time.Now().Add(drainTimeout))
	defer c.nc.SetReadDeadline(time.Time{})
	if sb.remaining >= 0 {
		_, err := c.br.Discard(int(sb.remaining))
		return err == nil
	}
	if cr, ok := sb.r.(*chunkedReader); ok {
		// The caller is done with the response: its trailers are not
		// kept (nor written while the caller may still look at it).
		cr.resp = nil
	}
	n, err := io.CopyN(io.Discard, sb.r, drainLimit+1)
	return err == io.EOF && n <= drainLimit
}

// bodyEnd is how a streamed body ended.
type bodyEnd uint8

const (
	endClean  bodyEnd = iota // read to its end
	endEarly                 // closed by its caller before the end
	endBroken                // a read error
)

type bodyEvent struct {
	end bodyEnd
	err error
}

// streamBody is a response body read from the connection by the caller.
// Its end is reported to the connection's reader, which then owns the
// connection again; or, when direct (no goroutine waits for it), handled
// by the goroutine that ends it (see end).
type streamBody struct {
	c          *conn
	r          io.Reader
	remaining  int64 // with a Content-Length; -1 otherwise
	untilClose bool
	stop       func() bool // stops the context watch
	ctxFired   bool
	done       bool
	err        error
	// For endStream: the response, whether its connection may be kept,
	// the head-of-line timer, and whether the body's end is handled by
	// its ender rather than by a goroutine waiting on c.bodyCh.
	resp   *wire.Response
	keep   bool
	hol    *time.Timer
	direct bool
}

// drainable reports whether what is left of the body may be drained to
// keep the connection (see conn.drain).
func (b *streamBody) drainable() bool {
	return !b.untilClose && !b.ctxFired && b.remaining <= drainLimit
}

func (b *streamBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.remaining > 0 && int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.r.Read(p)
	if b.remaining > 0 {
		b.remaining -= int64(n)
		if b.remaining == 0 {
			b.end(endClean, nil)
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	switch {
	case err == io.EOF:
		b.end(endClean, nil)
	case err != nil:
		b.end(endBroken, err)
	}
	return n, err
}

// Close ends the body. Before its end, the connection drains what is
// left (a little) or is closed: the rest is never delivered to anyone.
func (b *streamBody) Close() error {
	if !b.done {
		b.end(endEarly, nil)
		b.err = errBodyClosed
	}
	return nil
}

func (b *streamBody) end(e bodyEnd, err error) {
	b.done = true
	b.err = io.EOF
	if err != nil {
		b.err = err
	}
	if b.stop != nil && !b.stop() {
		// The caller's context ended: the read deadline may be gone.
		b.ctxFired = true
		if e == endClean {
			e, err = endBroken, context.Canceled
		}
	}
	ev := bodyEvent{end: e, err: err}
	switch {
	case !b.direct:
		b.c.bodyCh <- ev
	case e == endEarly && b.drainable():
		// Drained in the background, as the reader goroutine would: the
		// client's Close does not wait for the backend.
		go b.c.endStream(b, ev)
	default:
		b.c.endStream(b, ev)
	}
}

// bytesBody is a response body read whole.
type bytesBody struct {
	b   []byte
	off int
	pb  *[]byte
}

func (b *bytesBody) Read(p []byte) (int, error) {
	if b.off >= len(b.b) {
		return 0, io.EOF
	}
	n := copy(p, b.b[b.off:])
	b.off += n
	if b.off >= len(b.b) {
		return n, io.EOF
	}
	return n, nil
}

// Bytes returns what is left to read of the body, for a writer that takes
// it in one piece; it is valid until Close.
func (b *bytesBody) Bytes() []byte { return b.b[b.off:] }

func (b *bytesBody) Close() error {
	if b.pb != nil {
		putBuf(b.pb)
		b.pb, b.b = nil, nil
	}
	return nil
}

// Size classes of the buffers of bodies read whole.
var (
	bufClasses = [...]int{1 << 10, 4 << 10, 16 << 10, 64 << 10}
	bufPools   [len(bufClasses)]sync.Pool
)

func getBuf(n int) *[]byte {
	for i, size := range bufClasses {
		if n <= size {
			if v, ok := bufPools[i].Get().(*[]byte); ok {
				*v = (*v)[:n]
				return v
			}
			b := make([]byte, n, size)
			return &b
		}
	}
	b := make([]byte, n)
	return &b
}

func putBuf(b *[]byte) {
	for i, size := range bufClasses {
		if cap(*b) == size {
			bufPools[i].Put(b)
			return
		}
	}
}

// isNetError reports whether err comes from the network rather than from
// the bytes received.
func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
