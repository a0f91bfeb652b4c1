package http1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
	"github.com/ocsiproxy/ocsiproxy/internal/idlepoll"
	"github.com/ocsiproxy/ocsiproxy/internal/nbio"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

// The HTTP/1.x server of plain and HTTPS ports.
//
// net/http's server costs, per request, a context, a goroutine reading
// the connection in the background, a cloned header map and a response
// buffer, and per idle keep-alive connection an 8 KiB goroutine stack
// plus 4 KiB read and 4 KiB write buffers (21 KiB per idle connection in
// bench/; instructions per request: docs/benchmarks.md). Server serves
// the same http.Handler with the same request parser (http.ReadRequest,
// or for plain heads parsePlainHead, which reads the same requests:
// h1request.go) and the same refusals, but:
//
//   - an idle connection holds no buffer: it waits in syscall.RawConn.Read
//     and takes a read buffer from a pool only once bytes have arrived;
//     the goroutine that served a request waits for the next itself for
//     up to 100 ms (hotwait.go: a busy client's next request then costs
//     no hand-off), then hands the connection to a fresh one (small
//     stack) to wait;
//   - requests are served by a pool of goroutines whose stacks have grown
//     to what the handler needs (a goroutine per request would grow a
//     small stack, by copies, every time: 12% of the CPU in a profile);
//   - requests share their connection's context, cancelled when the
//     connection ends (with the cause http.ErrServerClosed when the
//     server closed it: Close, Drain); the client going away mid-request is noticed by a
//     read started only once a request has run for watchDelay (a request
//     answered sooner needs no watch), by one sweeping goroutine rather
//     than a timer per request (watchsweep.go);
//   - read deadlines are moved only when needed: the idle bound is left
//     as it is while it falls within idleSlack of what it should be, and
//     a head already whole in the buffer needs no head bound (a runtime
//     timer update per request each, 2.5% of the instructions);
//   - the request framing tracker (framing.go) reads the same bytes as the
//     parser, so Content-Length/Transfer-Encoding ambiguities net/http
//     would resolve silently are still refused (the bytes the waiting
//     goroutine reads are fed to it on the worker, whose stack is grown).

// watchDelay is how long a request runs before its connection is watched
// for the client going away.
const watchDelay = 50 * time.Millisecond

// maxPostHandlerRead is how much of a request body the handler left
// unread is read and dropped to keep the connection (net/http's figure);
// beyond it the connection is closed.
const maxPostHandlerRead = 256 << 10

// Options are the bounds of client connections that a reload can
// change. A connection takes those in force when it is accepted and keeps
// them until it closes, so that a reload never changes a bound under a
// request being read or answered.
type Options struct {
	// HeaderTimeout bounds the reading of a request head, from its first
	// byte (from the accept for a connection's first request); 0: none.
	HeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection; 0: none.
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to the client (nginx's
	// send_timeout): a client that reads nothing for that long is cut
	// off rather than holding its answer, and a worker, for ever; 0: none.
	WriteTimeout time.Duration
	// MaxHeaderBytes bounds a request head (431 beyond, with 4 KiB of
	// slack for the request line as net/http allows).
	MaxHeaderBytes int
}

// InboundHandler is a handler that takes requests as wire.Inbound values
// (engine.Handler): the server hands it the requests it parsed without
// making an http.Request for them.
type InboundHandler interface {
	// ServeInbound answers r. r and its fields are the server's memory,
	// reused once it returns.
	ServeInbound(w http.ResponseWriter, r *wire.Inbound)
}

// NewServer returns an HTTP/1.x server of h whose connections are
// bounded by o until setOptions changes it. When h is an InboundHandler,
// its ServeInbound is called; otherwise its ServeHTTP, with an
// http.Request made from the request (wire.Inbound.Request).
func NewServer(h http.Handler, o Options, errorLog *log.Logger) *Server {
	ih, ok := h.(InboundHandler)
	if !ok {
		ih = httpHandler{h}
	}
	s := &Server{handler: ih, errorLog: errorLog, conns: make(map[*h1Conn]struct{})}
	s.SetOptions(o)
	return s
}

// Options returns the bounds of the connections accepted from now on.
func (s *Server) Options() Options { return *s.opts.Load() }

// SetOptions sets the bounds of the connections accepted from now on.
func (s *Server) SetOptions(o Options) { s.opts.Store(&o) }

// httpHandler serves an http.Handler's requests as an InboundHandler.
type httpHandler struct{ h http.Handler }

func (h httpHandler) ServeInbound(w http.ResponseWriter, r *wire.Inbound) {
	h.h.ServeHTTP(w, r.Request())
}

// Server serves HTTP/1.x on plain-TCP listeners.
type Server struct {
	handler InboundHandler
	// opts are the bounds of the connections accepted from now on; a
	// connection keeps those it was accepted with (Options).
	opts     atomic.Pointer[Options]
	errorLog *log.Logger

	workers h1Workers
	closing atomic.Bool
	// sweepTick counts the watch sweeper's ticks; sweeping is set while
	// the sweeper runs (watchsweep.go).
	sweepTick atomic.Int64
	sweeping  atomic.Bool
	// clock is the time of the sweeper's latest tick, nil when it does
	// not run (clock.go).
	clock     atomic.Pointer[time.Time]
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*h1Conn]struct{}
	// handshakes are the TLS connections in their handshake (ServeTLS),
	// with their retired flag.
	handshakes map[*tls.Conn]*atomic.Bool
	// poller waits for the next request of idle plain-TCP connections
	// (idle.go); nil until the first such wait, or where there is none.
	poller     atomic.Pointer[idlepoll.Poller]
	pollerOnce sync.Once
}

// Connection states, for graceful shutdown: only idle connections are
// closed at once; active ones close after their answer.
const (
	stateIdle int32 = iota
	stateActive
	stateClosed
)

func (s *Server) logf(format string, args ...any) {
	if s.errorLog != nil {
		s.errorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

// Serve accepts connections on l until the server is shut down
// (http.ErrServerClosed) or l fails.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		l.Close()
		return http.ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				// Out of file descriptors and the like: back off as
				// net/http does rather than spin.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logf("http: accept error: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.ServeConn(nc, nil)
	}
}

// ServeConn serves the accepted connection nc, with the bounds in force,
// unless the server is closing (then nc is closed). When retired (which
// may be nil) is set, by [Server.Drain], nc ends as in a graceful
// shutdown.
func (s *Server) ServeConn(nc net.Conn, retired *atomic.Bool) {
	if c := s.newConn(nc, retired); c != nil {
		go c.waitFn()
	}
}

// newConn registers a new connection; nil when the server is closing.
func (s *Server) newConn(nc net.Conn, retired *atomic.Bool) *h1Conn {
	c := &h1Conn{s: s, o: s.opts.Load(), nc: nc, remote: nc.RemoteAddr().String(), retired: retired}
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.peer = ta.AddrPort()
	}
	c.localPort = wire.PortOf(nc.LocalAddr())
	c.in.c = c
	c.out.c = c
	c.waitFn = c.wait
	c.awaitFn = c.awaitRaw
	c.peekFn = c.peekRaw
	c.pollFD = -1
	c.in.f.max = c.o.MaxHeaderBytes + 4096
	c.rc = rawConnOf(nc)
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		c.tls = &st
		c.readableFn = c.readable
	} else if c.rc != nil && plainTCP(nc) {
		c.out.raw = true
		c.out.stepFn = c.out.writeStep
	}
	ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, nc.LocalAddr())
	c.ctx, c.cancel = context.WithCancelCause(ctx)
	if c.o.HeaderTimeout > 0 {
		c.setReadDeadline(time.Now().Add(c.o.HeaderTimeout))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		nc.Close()
		c.cancel(nil)
		return nil
	}
	if s.conns == nil {
		s.conns = make(map[*h1Conn]struct{}) // served without a listener (dry runs)
	}
	s.conns[c] = struct{}{}
	return c
}

// Shutdown stops accepting, closes idle connections, and waits for the
// active ones to finish their request (they close after their answer)
// until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if s.closeIdle() {
			s.stopPoller()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close stops accepting and closes every connection at once. The
// context of a request still running is cancelled with the cause
// [http.ErrServerClosed], so that the request is logged as one the
// server cut rather than one the client left.
func (s *Server) Close() {
	s.closeListeners()
	var cut []net.Conn
	var taken []*h1Conn
	s.mu.Lock()
	for c := range s.conns {
		cut = append(cut, c.cut())
		if s.takePolled(c) {
			taken = append(taken, c)
		}
	}
	for tc := range s.handshakes {
		cut = append(cut, tc)
	}
	s.mu.Unlock()
	closeAll(cut)
	closeTaken(taken)
	s.stopPoller()
}

// closeAll closes the connections cut, outside s.mu: closing a TLS
// connection writes its close_notify, which may wait (up to 5 s, in
// crypto/tls) on a client that reads nothing.
func closeAll(cut []net.Conn) {
	for _, nc := range cut {
		nc.Close()
	}
}

// Wait returns once every connection has ended, the handlers of their
// requests returned (after Close, so that the requests it cut are
// logged), or when ctx is done.
func (s *Server) Wait(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns) + len(s.handshakes)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// cut ends the connection on the server's behalf (s.mu held) and returns
// it, to be closed once s.mu is released (closeAll).
func (c *h1Conn) cut() net.Conn {
	c.cancel(http.ErrServerClosed)
	c.state.Store(stateClosed)
	return c.nc
}

func (s *Server) closeListeners() {
	s.workers.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for l := range s.listeners {
		l.Close()
	}
}

// drain ends the connections served with the flag retired (those of a
// listener a reload closed) as Shutdown ends them all: it sets the flag,
// closes the idle ones at once and the others after their answer, until
// ctx is done; then it closes those left, as Close does.
func (s *Server) Drain(ctx context.Context, retired *atomic.Bool) {
	retired.Store(true)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !s.closeIdleOf(retired) {
		select {
		case <-ctx.Done():
			var cut []net.Conn
			var taken []*h1Conn
			s.mu.Lock()
			for c := range s.conns {
				if c.retired == retired {
					cut = append(cut, c.cut())
					if s.takePolled(c) {
						taken = append(taken, c)
					}
				}
			}
			for tc, r := range s.handshakes {
				if r == retired {
					cut = append(cut, tc)
				}
			}
			s.mu.Unlock()
			closeAll(cut)
			closeTaken(taken)
			return
		case <-t.C:
		}
	}
}

// closeIdle closes the idle connections and reports whether none is left.
func (s *Server) closeIdle() bool { return s.closeIdleOf(nil) }

// closeIdleOf closes the idle connections served with the flag retired
// (every connection when retired is nil) and reports whether none of
// them is left.
func (s *Server) closeIdleOf(retired *atomic.Bool) bool {
	var cut []net.Conn
	var taken []*h1Conn
	s.mu.Lock()
	left := 0
	for c := range s.conns {
		if retired != nil && c.retired != retired {
			continue
		}
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			if s.takePolled(c) {
				taken = append(taken, c)
			} else {
				cut = append(cut, c.nc)
			}
		}
		left++
	}
	for tc, r := range s.handshakes {
		if retired == nil || r == retired {
			cut = append(cut, tc)
			left++
		}
	}
	s.mu.Unlock()
	closeAll(cut)
	closeTaken(taken)
	return left == 0
}

func (s *Server) forget(c *h1Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

var (
	scratches = sync.Pool{New: func() any { return new(reqScratch) }}
	h1Readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	h1Writers = sync.Pool{New: func() any { return newSendBuf(4096) }}
)

// h1Conn is one client connection. Its fields belong to the goroutine
// serving it, except those under wmu.
type h1Conn struct {
	s *Server
	// o are the bounds the connection was accepted with.
	o *Options
	// retired, when not nil, is set once the connection's listener is
	// closed by a reload: the connection then ends after its answer.
	retired *atomic.Bool
	nc      net.Conn
	rc      syscall.RawConn // nil: the connection keeps its read buffer while idle
	// tls is the state of a TLS connection (nil: plain), given to its
	// requests.
	tls    *tls.ConnectionState
	in     connReader
	out    connWriter
	br     *bufio.Reader // nil while idle
	bw     *sendBuf      // nil while idle
	ctx    context.Context
	cancel context.CancelCauseFunc
	remote string
	// peer is the remote address, when the connection is TCP (read once,
	// rather than parsed from remote by each request); localPort the
	// port it arrived on.
	peer      netip.AddrPort
	localPort int
	state     atomic.Int32
	hdr       http.Header // the response header map, cleared per request
	// scratch is the memory of the requests and answers, reused from
	// one request to the next.
	scratch *reqScratch
	// keepAlive is set once a request was answered: the next wait is
	// bounded by IdleTimeout, the next head by HeaderTimeout.
	keepAlive bool
	lastPOST  bool
	// served counts the requests answered (waitHot waits hot only for
	// a connection that sent more than one).
	served int
	// waitFn and peekFn are c.wait and c.peekRaw, made once: a method
	// value made per request is an allocation.
	waitFn func()
	peekFn func(fd uintptr) bool
	// hot is set while the connection waits hot (waitHot): it keeps its
	// buffers then, which saves taking them from their pools and giving
	// them back for each request.
	hot bool
	// readableFn is c.readable (TLS connections).
	readableFn func(fd uintptr) bool
	// peekErr is the outcome of peekRaw.
	peekErr error
	// hotAt is the sweep tick at which a hot wait (waitHot) is cut, 0
	// when the connection is not waiting hot; hotErr is what ended the
	// last hot wait.
	hotAt  atomic.Int64
	hotErr error
	// verdict is the framing verdict of the request being served.
	verdict error
	closed  bool
	// hijacked: a handler took the connection over.
	hijacked bool

	// rdl is the read deadline last set on nc (zero: none). It belongs
	// to the goroutine serving the connection; while a handler runs, it
	// is written under wmu (by the watch and by the handler's
	// SetReadDeadline).
	rdl time.Time

	// Watching for the client going away during a long request.
	// watchAt is the sweep tick from which the running request's
	// connection is watched (0: not armed; watchsweep.go).
	watchAt    atomic.Int64
	wmu        sync.Mutex
	inHandler  bool
	watching   bool
	abortWatch bool
	watchDone  chan struct{}

	// Waiting in the server's poller (idle.go), last: the fields above
	// are the request path's. pollKey is the connection's latest wait
	// there, under s.mu: it has ended when Remove reports false. pollFD
	// is the socket's descriptor for the poller (-1: not known yet),
	// polled is set once it was registered there (its next wait re-arms
	// it), and awaitFn is c.awaitRaw made once; these belong to the
	// goroutine serving the connection.
	pollKey idlepoll.Key
	pollFD  int
	polled  bool
	awaitFn func()
}

// connReader is what the connection's bufio.Reader reads: the socket by
// raw reads while the connection waits in RawConn.Read, else the
// net.Conn. It feeds the framing tracker and bounds request heads.
type connReader struct {
	c   *h1Conn
	raw bool
	fd  int
	// limited bounds the bytes read while a head is parsed: remain is
	// what is left, hit is set when the bound was reached.
	limited bool
	remain  int64
	hit     bool
	f       framing
	// unfed is how many bytes a raw read put at the start of the
	// (empty until then) read buffer without feeding them to f.
	unfed int
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.limited {
		if r.remain <= 0 {
			r.hit = true
			return 0, io.EOF
		}
		if int64(len(p)) > r.remain {
			p = p[:r.remain]
		}
	}
	var n int
	var err error
	if r.raw {
		n, err = nbio.Read(r.fd, p)
		switch {
		case err != nil:
		case n == 0:
			err = io.EOF
		}
	} else {
		n, err = r.c.nc.Read(p)
	}
	if n > 0 {
		if r.limited {
			r.remain -= int64(n)
		}
		if r.raw {
			// Read on the small stack of an idle connection's goroutine:
			// the tracker, whose calls would grow that stack (a copy per
			// request), follows these bytes on the worker (serveOne).
			r.unfed = n
		} else {
			r.f.feed(p[:n])
		}
	}
	return n, err
}

// connWriter is what the connection's sendBuf writes to: the
// net.Conn, with a write deadline o.WriteTimeout ahead, moved at most every
// quarter of WriteTimeout (a deadline costs a timer update) and never
// once the connection is hijacked (a tunnel has no such bound).
//
// On a plain TCP connection (raw), Write writes to the socket itself
// from within syscall.RawConn.Write (writeStep, with nbio): the same
// locking, deadline and wait as net.Conn.Write, without the runtime's
// system-call bookkeeping around each write.
type connWriter struct {
	c        *h1Conn
	deadline time.Time // the write deadline set, zero when none
	raw      bool      // c.nc is a plain TCP connection, written through c.rc
	// rest is what writeStep has left to write, werr its write's error;
	// stepFn is w.writeStep, made once (a method value made per write
	// is an allocation).
	rest   []byte
	werr   error
	stepFn func(fd uintptr) bool
}

func (w *connWriter) Write(p []byte) (int, error) {
	w.bound()
	c := w.c
	if !w.raw || c.hijacked {
		return c.nc.Write(p)
	}
	w.rest, w.werr = p, nil
	err := c.rc.Write(w.stepFn)
	n := len(p) - len(w.rest)
	if w.werr != nil {
		err = w.werr
	}
	w.rest, w.werr = nil, nil
	if err != nil {
		return n, writeError(c.nc, err)
	}
	return n, nil
}

// writeStep is the syscall.RawConn.Write function of connWriter.Write:
// it writes w.rest until it is all written (true), the socket's buffer
// is full (false: wait until it can take more), or a write fails (true,
// with w.werr set).
func (w *connWriter) writeStep(fd uintptr) bool {
	for len(w.rest) > 0 {
		n, err := nbio.Write(int(fd), w.rest)
		switch {
		case err == syscall.EAGAIN:
			return false
		case err != nil:
			w.werr = os.NewSyscallError("write", err)
			return true
		}
		w.rest = w.rest[n:]
	}
	return true
}

// plainTCP reports whether writing to nc is writing to its TCP socket
// and nothing more: nc is a *net.TCPConn, or a wrapper that says so (the
// server's, which counts connection slots, adds nothing to Write).
func plainTCP(nc net.Conn) bool {
	switch c := nc.(type) {
	case *net.TCPConn:
		return true
	case interface{ PlainTCP() bool }:
		return c.PlainTCP()
	}
	return false
}

// writeError returns err, the error of a raw write to nc, as nc.Write
// would have returned it: a *net.OpError of Op "write" (the syscall
// package's RawConn says "raw-write").
func writeError(nc net.Conn, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return &net.OpError{Op: "write", Net: "tcp", Source: nc.LocalAddr(), Addr: nc.RemoteAddr(), Err: err}
}

// WriteBuffers is Write for several buffers (sendBuf.Write): one writev
// on a TCP connection.
func (w *connWriter) WriteBuffers(v *net.Buffers) (int64, error) {
	w.bound()
	c := w.c
	if bw, ok := c.nc.(buffersWriter); ok {
		return bw.WriteBuffers(v) // a wrapper's (the server's slot accounting)
	}
	return v.WriteTo(c.nc)
}

// bound moves the write deadline before a write, when it is due.
func (w *connWriter) bound() {
	c := w.c
	if d := c.o.WriteTimeout; d > 0 && !c.hijacked {
		if next, move := sendDeadline(w.deadline, d); move {
			w.deadline = next
			c.nc.SetWriteDeadline(next)
		}
	}
}

// wait waits, holding no buffer, until the next request's first bytes
// arrive, then serves.
func (c *h1Conn) wait() {
	c.state.Store(stateIdle)
	if c.ending() {
		c.close()
		return
	}
	c.limitHead()
	var perr error
	switch {
	case c.tls != nil && c.rc != nil:
		held, err := c.probeTLS()
		if err == nil && !held {
			// Parked by a new goroutine: this one's stack grew in the
			// TLS read.
			go c.parkTLS()
			return
		}
		perr = err
	case c.rc == nil:
		if c.br == nil {
			c.br = h1Readers.Get().(*bufio.Reader)
			c.br.Reset(&c.in)
		}
		_, perr = c.br.Peek(1)
	default:
		c.awaitRaw()
		return
	}
	c.resume(perr)
}

// awaitRaw waits in the runtime's poller until the first bytes of the
// next request of c, a plain TCP connection, can be read, reads them, and
// serves the request (resume).
func (c *h1Conn) awaitRaw() {
	c.in.raw = true
	c.peekErr = nil
	err := c.rc.Read(c.peekFn)
	c.in.raw = false
	perr := c.peekErr
	if perr == nil {
		perr = err
	}
	c.resume(perr)
}

// resume serves the request whose first bytes wait found, unless perr
// (the error that ended the wait) is set or the connection was closed
// meanwhile.
func (c *h1Conn) resume(perr error) {
	if perr != nil || !c.state.CompareAndSwap(stateIdle, stateActive) {
		c.close()
		return
	}
	if c.keepAlive {
		c.boundHead()
	}
	c.s.workers.serve(c)
}

// ending reports whether the connection is to end after its answer: the
// server is shutting down, or the connection's listener was closed.
func (c *h1Conn) ending() bool {
	return c.s.closing.Load() || (c.retired != nil && c.retired.Load())
}

// peekRaw is the RawConn.Read callback of wait: it reads the socket into
// a read buffer taken from the pool, or gives the buffer back and asks to
// wait when there is nothing to read yet.
func (c *h1Conn) peekRaw(fd uintptr) bool {
	c.in.fd = int(fd)
	if c.br == nil {
		c.br = h1Readers.Get().(*bufio.Reader)
		c.br.Reset(&c.in)
	}
	_, c.peekErr = c.br.Peek(1)
	if errors.Is(c.peekErr, syscall.EAGAIN) {
		c.peekErr = nil // what ends the wait is told by RawConn.Read
		if !c.hot {
			c.releaseReader() // an idle connection holds no buffer
		}
		return false // nothing yet: wait for the socket
	}
	return true
}

// boundHead sets the read deadline for the head of a request on a kept
// connection (o.HeaderTimeout, or none), unless the head is whole in the
// buffer: then parsing it reads nothing, and what reads after it (a body,
// the watch, the next head) sets its own deadline.
func (c *h1Conn) boundHead() {
	if c.o.HeaderTimeout <= 0 && c.rdl.IsZero() {
		return
	}
	if b, _ := c.br.Peek(c.br.Buffered()); headWhole(b) {
		return
	}
	if c.o.HeaderTimeout > 0 {
		c.setReadDeadline(time.Now().Add(c.o.HeaderTimeout))
	} else {
		c.setReadDeadline(time.Time{})
	}
}

// headWhole reports whether b holds the end of a request head (an empty
// line, CRLF or bare LF: http.ReadRequest accepts both).
func headWhole(b []byte) bool {
	// The usual case, one request and nothing after it, is seen at the
	// end of b without a search.
	if bytes.HasSuffix(b, []byte("\n\r\n")) || bytes.HasSuffix(b, []byte("\n\n")) {
		return true
	}
	return bytes.Contains(b, []byte("\n\r\n")) || bytes.Contains(b, []byte("\n\n"))
}

// idleSlack is how much later than IdleTimeout an idle connection may be
// closed (an eighth of it, at most a second): the idle deadline is moved
// only once it is not within [IdleTimeout, IdleTimeout+slack] from now,
// to IdleTimeout+slack, so that a busy connection moves it about once per
// slack instead of once per request.
func idleSlack(idle time.Duration) time.Duration {
	return min(idle/8, time.Second)
}

// boundIdle sets the read deadline for the wait for the next request.
// The present lies within [lo, hi]: the sweeper's coarse clock and a
// watchTick after it (clock.go), or the time read when the sweeper does
// not run or the slack is too narrow to spare two ticks. The deadline is
// kept while it is within [IdleTimeout, IdleTimeout+slack] from all of
// [lo, hi], and otherwise set to lo+IdleTimeout+slack, which is so at
// least IdleTimeout from the present.
func (c *h1Conn) boundIdle() {
	switch idle := c.o.IdleTimeout; {
	case idle > 0:
		slack := idleSlack(idle)
		lo, coarse := c.s.coarseNow()
		hi := lo.Add(watchTick)
		if !coarse || slack < 2*watchTick {
			lo = time.Now()
			hi = lo
		}
		if c.rdl.IsZero() || c.rdl.Sub(hi) < idle || c.rdl.Sub(lo) > idle+slack {
			c.setReadDeadline(lo.Add(idle + slack))
		}
	case c.o.HeaderTimeout > 0:
		c.setReadDeadline(time.Time{})
	}
}

// setReadDeadline sets nc's read deadline to t unless it is already t.
func (c *h1Conn) setReadDeadline(t time.Time) {
	if !t.Equal(c.rdl) {
		c.nc.SetReadDeadline(t)
		c.rdl = t
	}
}

// limitHead bounds the bytes read from now until the next request head
// is parsed.
func (c *h1Conn) limitHead() {
	c.in.limited, c.in.remain, c.in.hit = true, int64(c.o.MaxHeaderBytes)+4096, false
}

func (c *h1Conn) releaseReader() {
	if c.br != nil {
		c.br.Reset(nil)
		h1Readers.Put(c.br)
		c.br = nil
	}
}

// releaseScratch gives the request memory back to scratches: an idle
// connection holds none.
func (c *h1Conn) releaseScratch() {
	if c.scratch != nil {
		scratches.Put(c.scratch)
		c.scratch = nil
	}
}

func (c *h1Conn) releaseWriter() {
	if c.bw != nil {
		c.bw.Reset(nil)
		h1Writers.Put(c.bw)
		c.bw = nil
	}
}

// close ends the connection (once) and gives its buffers back.
func (c *h1Conn) close() {
	if c.closed {
		return
	}
	c.closed = true
	c.state.Store(stateClosed)
	c.cancel(nil)
	c.nc.Close()
	c.watchAt.Store(0)
	c.releaseReader()
	c.releaseWriter()
	c.releaseScratch()
	c.s.forget(c)
}

// serve serves the requests whose bytes are here, then waits for the
// next ones on this goroutine while the connection is hot (waitHot), or
// hands the connection to a new goroutine to wait (this one's stack,
// grown by the handler, is freed with it).
func (c *h1Conn) serve() {
	for c.serveHere() {
		if !c.waitHot() {
			c.releaseReader()
			c.releaseWriter()
			c.releaseScratch()
			if !c.waitPolled() {
				go c.waitFn()
			}
			return
		}
		if !c.resumeHot() {
			return
		}
	}
}

// serveHere serves the requests whose bytes are here. It reports true
// when the connection is to wait for the next request (its buffers kept
// for a hot wait: the caller gives them back before any other), and
// false when it is closed or hijacked.
func (c *h1Conn) serveHere() bool {
	if c.bw == nil {
		c.bw = h1Writers.Get().(*sendBuf)
		c.bw.Reset(&c.out)
	}
	for {
		keep, hijacked := c.serveOne()
		if hijacked {
			return false
		}
		c.keepAlive = true
		c.served++
		if !keep || c.ending() {
			c.bw.Flush()
			c.closeWrite()
			return false
		}
		if c.br.Buffered() > 0 {
			// Pipelined: answer it before writing this one out.
			c.limitHead()
			c.boundHead()
			continue
		}
		if err := c.bw.Flush(); err != nil {
			c.close()
			return false
		}
		c.boundIdle()
		return true
	}
}

// closeWrite ends a connection after an answer that must be its last: the
// write side first, then, after a short read of what the client may still
// send, the whole (so that a client still sending does not get a reset
// that destroys the answer in flight, as net/http does).
func (c *h1Conn) closeWrite() {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
		c.setReadDeadline(time.Now().Add(500 * time.Millisecond))
		if c.br != nil {
			c.br.Discard(c.br.Buffered())
		}
		io.CopyN(io.Discard, c.nc, 256<<10)
	}
	c.close()
}

// serveOne reads one request and answers it. keep reports whether the
// connection can carry another request.
func (c *h1Conn) serveOne() (keep, hijacked bool) {
	// The bytes of a raw read (the whole buffer) wait for the framing
	// tracker. When it waits for a head with nothing pending, and the
	// head parsePlainHead takes is among them, the tracker skips that
	// head rather than reading it again (skipHead says why that is
	// sound) and follows the rest; otherwise it follows them all first.
	// After a POST, skipping needs the four bytes peeked below in the
	// buffer: a read there would feed the tracker bytes that come after
	// those not yet fed.
	unfed := c.in.unfed
	c.in.unfed = 0
	skip := unfed > 0 && unfed <= c.in.f.max && (!c.lastPOST || unfed >= 4) && c.in.f.atRest()
	if unfed > 0 && !skip {
		p, _ := c.br.Peek(unfed)
		c.in.f.feed(p)
	}
	if c.lastPOST {
		// RFC 9112 section 2.2: an empty line before a request line
		// (old clients add CRLF after a POST body) is ignored.
		peek, _ := c.br.Peek(4)
		n := leadingCRLF(peek)
		if skip {
			c.in.f.feed(peek[:n]) // passed over by the tracker too
		}
		c.br.Discard(n)
	}
	if c.scratch == nil {
		c.scratch = scratches.Get().(*reqScratch)
	}
	req, plain := parsePlainHead(c.br, c.scratch)
	if skip {
		if plain {
			c.in.f.skipHead(req.ContentLength, req.Method == http.MethodPost)
		}
		// What follows a plain head; else the whole head and what follows.
		p, _ := c.br.Peek(c.br.Buffered())
		c.in.f.feed(p)
	}
	if !plain {
		hr, err := http.ReadRequest(c.br)
		if err != nil {
			c.refuse(err)
			return false, false
		}
		hr.RemoteAddr = c.remote
		hr.TLS = c.tls
		req = &c.scratch.in
		*req = *wire.FromHTTPRequest(hr.WithContext(c.ctx))
	}
	req.RemoteAddr = c.remote
	req.Peer = c.peer
	req.LocalPort = c.localPort
	req.TLS = c.tls
	req.SetContext(c.ctx)
	c.in.limited = false
	c.lastPOST = req.Method == http.MethodPost
	c.verdict = c.in.f.next()
	if req.Major != 1 && !(req.Major == 2 && req.Minor == 0 && req.Method == "PRI" && req.Target == "*") {
		c.writeRefusal(http.StatusHTTPVersionNotSupported, "unsupported protocol version")
		return false, false
	}
	// parsePlainHead takes only token names.
	if !plain {
		for k := range req.HTTP.Header {
			if !httpsyntax.IsToken(k) {
				// RFC 9110 section 5.1 (http.ReadRequest keeps "X-Bad " and
				// "X Bad"; net/http's server refuses them).
				c.writeRefusal(http.StatusBadRequest, "invalid header name")
				return false, false
			}
		}
	}

	// TE is hop-by-hop: whether the client takes trailers is noted here,
	// from the request as the client sent it.
	w := &c.scratch.resp
	*w = h1Response{c: c, req: req, cl: -1}
	var valBuf [2]string
	w.trailersOK = httpsyntax.AcceptsTrailers(req.Major, req.Minor, req.Fields().AppendValues(valBuf[:0], "Te"))
	if c.hdr == nil {
		c.hdr = make(http.Header, 8)
	}
	w.hdr = c.hdr
	defer clear(c.hdr)

	if expect := req.Fields().AppendValues(valBuf[:0], "Expect"); len(expect) > 0 {
		if len(expect) == 1 && strings.EqualFold(strings.TrimSpace(expect[0]), "100-continue") {
			w.canContinue = req.ProtoAtLeast(1, 1) && req.ContentLength != 0
		} else {
			// RFC 9110 section 10.1.1.
			w.hdr.Set("Connection", "close")
			w.hdr.Set("Content-Length", "0")
			w.WriteHeader(http.StatusExpectationFailed)
			w.finish()
			return false, false
		}
	}
	var body *h1Body
	if req.Body != nil && req.Body != http.NoBody {
		body = &h1Body{rc: req.Body, w: w}
		w.body = body
		req.Body = body
		if req.HTTP != nil {
			req.HTTP.Body = body
		}
		// Neither the head nor the idle deadline bounds the body
		// (<timeout> does, per read, in the handler).
		c.setReadDeadline(time.Time{})
	}

	c.startHandler(body == nil)
	ok := c.runHandler(w, req)
	c.stopWatch()
	if w.hijacked {
		return false, true
	}
	if !ok {
		// The handler panicked (http.ErrAbortHandler: a backend body
		// broke): what was written goes out, the connection ends so that
		// the client cannot take a truncated answer for a whole one.
		if body != nil {
			body.close()
		}
		return false, false
	}
	keep = w.finish()
	if body != nil && !body.drain() {
		keep = false
	}
	return keep, false
}

// runHandler calls the handler; false when it panicked.
func (c *h1Conn) runHandler(w *h1Response, req *wire.Inbound) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			ok = false
			if p != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.s.logf("http: panic serving %v: %v\n%s", c.remote, p, buf)
			}
		}
	}()
	c.s.handler.ServeInbound(w, req)
	return true
}

// refuse answers a request that could not be read, as net/http does.
func (c *h1Conn) refuse(err error) {
	var ne net.Error
	switch {
	case c.in.hit:
		c.writeRefusal(http.StatusRequestHeaderFieldsTooLarge, "")
	case errors.Is(err, io.EOF), errors.As(err, &ne) && ne.Timeout():
		// The client closed, or sent nothing in time: no answer.
	case !c.rdl.IsZero() && !time.Now().Before(c.rdl):
		// The head's time ran out in the middle of a line: bufio hands
		// the parser the partial line, which it refuses, before the
		// timeout. No answer either.
	case isUnsupportedTE(err):
		// RFC 9112 section 6.1 (501); the coding is not echoed.
		c.bw.WriteString("HTTP/1.1 501 Not Implemented" + refusalHeaders + "Unsupported transfer encoding")
	default:
		c.writeRefusal(http.StatusBadRequest, "")
	}
}

// isUnsupportedTE reports whether err is http.ReadRequest's refusal of a
// Transfer-Encoding other than a single "chunked" (its error type is not
// exported; the hygiene tests pin the messages).
func isUnsupportedTE(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unsupported transfer encoding") || strings.HasPrefix(msg, "too many transfer encodings")
}

const refusalHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// writeRefusal writes net/http's plain answer to a request it refuses
// before any handler runs.
func (c *h1Conn) writeRefusal(status int, reason string) {
	text := fmt.Sprintf("%d %s", status, http.StatusText(status))
	if reason != "" {
		text += ": " + reason
	}
	c.bw.WriteString("HTTP/1.1 " + text + refusalHeaders + text)
}

func leadingCRLF(b []byte) int {
	n := 0
	for _, c := range b {
		if c != '\r' && c != '\n' {
			break
		}
		n++
	}
	return n
}

// startHandler marks a request as running. With its body already read
// (none), the watch for the client going away is armed at once.
func (c *h1Conn) startHandler(bodyDone bool) {
	c.wmu.Lock()
	c.inHandler = true
	if bodyDone {
		c.armWatchLocked()
	}
	c.wmu.Unlock()
}

// bodyDone is called when the request body has been read to its end.
func (c *h1Conn) bodyDone() {
	c.wmu.Lock()
	if c.inHandler {
		c.armWatchLocked()
	}
	c.wmu.Unlock()
}

func (c *h1Conn) armWatchLocked() {
	c.s.armWatch(c)
}

// watch reads the connection while a request runs on: an end of stream
// or an error means the client went away, and the connection's context
// is cancelled (the backend call is abandoned). Bytes that arrive (a
// pipelined request) stay in the buffer for the next read.
func (c *h1Conn) watch() {
	c.wmu.Lock()
	if !c.inHandler || c.watching || c.br == nil {
		c.wmu.Unlock()
		return
	}
	c.watching = true
	done := make(chan struct{})
	c.watchDone = done
	c.setReadDeadline(time.Time{})
	c.wmu.Unlock()
	_, err := c.br.Peek(1)
	c.wmu.Lock()
	aborted := c.abortWatch
	c.watching = false
	c.wmu.Unlock()
	if err != nil && !aborted {
		c.cancel(nil)
	}
	close(done)
}

// stopWatch marks the request as finished and ends a watch in progress.
func (c *h1Conn) stopWatch() {
	c.wmu.Lock()
	c.inHandler = false
	c.watchAt.Store(0)
	if !c.watching {
		c.wmu.Unlock()
		return
	}
	c.abortWatch = true
	c.nc.SetReadDeadline(aLongTimeAgo)
	done := c.watchDone
	c.wmu.Unlock()
	<-done
	c.wmu.Lock()
	c.abortWatch = false
	c.wmu.Unlock()
	c.nc.SetReadDeadline(time.Time{})
	c.rdl = time.Time{}
}

// aLongTimeAgo is a deadline in the past, to interrupt a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// h1Body is a request body as the handler reads it: it sends the
// interim 100 (Continue) the client asked for before the first read, arms
// the watch at the end, and cannot be read once the handler has
// returned.
type h1Body struct {
	mu     sync.Mutex
	rc     io.ReadCloser
	w      *h1Response
	err    error // the first error, io.EOF at the end
	closed bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return 0, http.ErrBodyReadAfterClose
	case b.err != nil:
		return 0, b.err
	}
	b.w.writeContinue()
	n, err := b.rc.Read(p)
	if err != nil {
		b.err = err
		if err == io.EOF {
			b.w.c.bodyDone()
		}
	}
	return n, err
}

// Close is a no-op for the handler: what it leaves unread is dealt with
// once it has returned (drain).
func (b *h1Body) Close() error { return nil }

// over reports whether the body was read to its end, after which no read
// of it touches the connection. A nil body (a request without one) is
// over.
func (b *h1Body) over() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err == io.EOF
}

// close makes the body unreadable.
func (b *h1Body) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

// drain reads and drops what the handler left of the body, up to
// maxPostHandlerRead, and reports whether the connection can carry
// another request (the body was whole and is over).
func (b *h1Body) drain() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.w.canContinue && !b.w.sentContinue {
		// A client that was never told to continue has not sent its body:
		// closing is cheaper than waiting for it.
		return false
	}
	if b.err == nil {
		n, err := io.CopyN(io.Discard, b.rc, maxPostHandlerRead)
		if err == nil && n == maxPostHandlerRead {
			return false
		}
		b.err = err
	}
	return b.err == io.EOF
}

// h1Workers is a pool of goroutines serving connections whose request
// bytes have arrived. The most recently used worker is reused first, so
// that few stacks stay warm; a worker idle for workerIdle exits.
type h1Workers struct {
	mu      sync.Mutex
	idle    []*h1Worker // most recently used last
	all     map[*h1Worker]struct{}
	stopped bool
	janitor bool
	// hot counts the connections waiting on their worker (waitHot).
	hot atomic.Int32
}

type h1Worker struct {
	conns    chan *h1Conn
	cur      atomic.Pointer[h1Conn] // the connection being served
	lastUsed time.Time
}

// workerIdle is how long an idle worker waits for a connection to serve
// before it exits.
const workerIdle = 10 * time.Second

// serve has a worker serve c.
func (p *h1Workers) serve(c *h1Conn) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.conns <- c
		return
	}
	if !p.janitor && !p.stopped {
		p.janitor = true
		go p.clean()
	}
	w := &h1Worker{conns: make(chan *h1Conn, 1)}
	if p.all == nil {
		p.all = make(map[*h1Worker]struct{})
	}
	p.all[w] = struct{}{}
	p.mu.Unlock()
	w.conns <- c
	go w.run(p)
}

// run serves the connections handed to the worker until it has been
// idle too long, then leaves the pool.
func (w *h1Worker) run(p *h1Workers) {
	defer func() {
		p.mu.Lock()
		delete(p.all, w)
		p.mu.Unlock()
	}()
	for c := range w.conns {
		w.cur.Store(c)
		c.serve()
		w.cur.Store(nil)
		w.lastUsed = time.Now()
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, w)
		p.mu.Unlock()
	}
}

// clean ends the workers idle for longer than workerIdle, until the pool
// is stopped.
func (p *h1Workers) clean() {
	t := time.NewTicker(workerIdle / 2)
	defer t.Stop()
	for range t.C {
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		// The least recently used are first.
		n := 0
		for n < len(p.idle) && time.Since(p.idle[n].lastUsed) > workerIdle {
			close(p.idle[n].conns)
			n++
		}
		p.idle = append(p.idle[:0], p.idle[n:]...)
		p.mu.Unlock()
	}
}

// stop ends the idle workers; busy ones end when their connection is
// done.
func (p *h1Workers) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	for _, w := range p.idle {
		close(w.conns)
	}
	p.idle = nil
}
