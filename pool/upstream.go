package pool

import (
	"context"
	"crypto/tls"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// counters are an upstream's cumulative metrics, guarded by its lock.
type counters struct {
	requests, pipelined, retries, requeued, holResends, poisoned, earlyCloses uint64
	distrusts, dials, dialErrors, timeouts, abandoned, drained                uint64
	maxDepth                                                                  int
}

// upstream is the pool of connections to one scheme, host and port.
type upstream struct {
	p        *Pool
	key      string // "http://host:port"
	addr     string // host:port to dial
	https    bool
	set      Settings
	tls      *tls.Config
	declared bool
	aliases  []string // keys of p.hosts pointing here
	// wslack is how much later than a request's deadline the write
	// deadline of its connection may be (see conn.setWriteDeadline).
	wslack time.Duration

	// mu guards every field below, the state of the upstream's calls
	// and the shared state of its connections.
	mu            sync.Mutex
	conns         []*conn // open connections, oldest first
	dialing       int
	waiters       []*call // FIFO; abandoned calls are removed at once
	rr            int     // next slot for next_worker / next_available_worker
	distrustUntil time.Time
	dialFailedAt  time.Time
	closingConns  int  // connections in conns that are closing: they do not count against Workers
	removed       bool // dropped from the pool's map: look it up again
	idleTicks     int
	st            counters
	// The calls waiting with a deadline, for the sweeper (sweep.go);
	// watchMin is never later than the earliest of their deadlines;
	// swept: u is in the sweeper's list.
	watched  []*call
	watchMin time.Time
	swept    bool
	// readers counts the calls reading their response in their own
	// goroutine (conn.reader): the sweeper looks at each of them on
	// every tick, for a context done, except the pushed ones, whose
	// context a context.AfterFunc watches (call.ctxStop).
	readers, pushed int
	// lastCall is the latest start of a call (call.run), one of the
	// times a connection that goes idle records (clock.go).
	lastCall time.Time
	// idle holds connections that went idle, the latest last: a hint
	// that spares BestWorker and AvailableWorker a look at every
	// connection per call (popIdle). It may hold connections busy
	// again, or kept for another call (popIdle drops them), but never one
	// that left conns (removeConn takes it off); an idle connection not
	// in it is still found by the look at every connection.
	idle []*conn
}

// enqueue adds a new call, or fails it at once when the pool is closed.
func (u *upstream) enqueue(k *call) {
	u.st.requests++
	if u.p.isClosed() {
		k.finish(nil, errPoolClosed)
		return
	}
	k.state = stQueued
	u.waiters = append(u.waiters, k)
	u.dispatch()
}

// requeueFront puts a call back at the head of the queue (a resend goes
// before newer calls).
func (u *upstream) requeueFront(k *call) {
	k.state = stQueued
	k.conn = nil
	u.waiters = append(u.waiters, nil)
	copy(u.waiters[1:], u.waiters)
	u.waiters[0] = k
}

func (u *upstream) removeWaiter(k *call) {
	for i, w := range u.waiters {
		if w == k {
			copy(u.waiters[i:], u.waiters[i+1:])
			u.waiters[len(u.waiters)-1] = nil
			u.waiters = u.waiters[:len(u.waiters)-1]
			return
		}
	}
}

// unreserve clears the reservations made for k.
func (u *upstream) unreserve(k *call) {
	if !k.reserving {
		return // the usual case: no look at every connection
	}
	k.reserving = false
	for _, c := range u.conns {
		if c.reservedFor == k {
			c.reservedFor = nil
		}
	}
}

func (u *upstream) removeConn(c *conn) {
	if c.inIdle {
		c.inIdle = false
		if i := slices.Index(u.idle, c); i >= 0 {
			u.idle = slices.Delete(u.idle, i, i+1)
		}
	}
	for i, x := range u.conns {
		if x == c {
			if c.countedClosing {
				c.countedClosing = false
				u.closingConns--
			}
			copy(u.conns[i:], u.conns[i+1:])
			u.conns[len(u.conns)-1] = nil
			u.conns = u.conns[:len(u.conns)-1]
			u.p.openConns.Add(-1)
			return
		}
	}
}

// distrusted reports whether pipelining to the upstream is off for now.
func (u *upstream) distrusted() bool {
	return !u.distrustUntil.IsZero() && time.Now().Before(u.distrustUntil)
}

func (u *upstream) distrust() {
	switch d := u.set.Distrust; {
	case d == 0:
		return
	case d == Never:
		u.distrustUntil = time.Unix(math.MaxInt32, 0)
	default:
		u.distrustUntil = time.Now().Add(d)
	}
	u.st.distrusts++
	if u.p.logf != nil {
		u.p.logf("pool: %s: pipelining off until %s", u.key, u.distrustUntil.Format(time.RFC3339))
	}
}

// assign gives c to k.
func (u *upstream) assign(k *call, c *conn) {
	k.state = stAssigned
	k.conn = c
	c.reserved++
	if !k.pipelinable {
		c.excl = k
	}
	u.unreserve(k)
	k.notify(event{conn: c})
}

// load returns the requests in flight on c and whether c can take k now,
// pipelined behind them when canPipe.
func (u *upstream) load(c *conn, k *call, canPipe bool) (int, bool) {
	if c.broken || c.closing || c.owner != nil || (c.reservedFor != nil && c.reservedFor != k) {
		return 0, false
	}
	n := len(c.pending) + c.reserved
	if n == 0 {
		return 0, true
	}
	if !canPipe || n >= u.set.PipelineDepth || !c.trusted || c.streaming || c.excl != nil || c.writingBody {
		return n, false
	}
	return n, true
}

// pushIdle puts c, which has just gone idle, on top of the idle stack
// (u.idle). Called with u.mu held.
func (u *upstream) pushIdle(c *conn) {
	if !c.inIdle {
		c.inIdle = true
		u.idle = append(u.idle, c)
	}
}

// popIdle takes off the idle stack the latest connection that can take
// k with nothing else in flight, and drops those above it that cannot
// (busy again, or kept for another call); nil when none is left. Called
// with u.mu held.
func (u *upstream) popIdle(k *call) *conn {
	for n := len(u.idle); n > 0; n = len(u.idle) {
		c := u.idle[n-1]
		u.idle[n-1] = nil
		u.idle = u.idle[:n-1]
		c.inIdle = false
		if m, ok := u.load(c, k, false); ok && m == 0 {
			return c
		}
	}
	return nil
}

// pick chooses by the strategy where k goes: an open connection, or a
// new one (dial), or nowhere yet (wait). shed reports that k must fail at
// once (next_available_worker with nothing idle).
func (u *upstream) pick(k *call, free int, distrusted bool) (c *conn, dial, shed bool) {
	s := &u.set
	if k.fresh {
		return nil, true, false
	}
	canPipe := k.pipelinable && s.PipelineDepth > 1 && !distrusted
	switch s.Strategy {
	case BestWorker:
		if c := u.popIdle(k); c != nil {
			return c, false, false
		}
		var best *conn
		bestN := math.MaxInt
		for _, c := range u.conns {
			if n, ok := u.load(c, k, canPipe); ok && n < bestN {
				best, bestN = c, n
				if n == 0 {
					break
				}
			}
		}
		if best != nil && (bestN == 0 || free <= 0) {
			return best, false, false
		}
		return nil, free > 0, false
	case NextWorker:
		return u.roundRobin(k, canPipe, free)
	case RandomWorker:
		n := 0
		for _, c := range u.conns {
			if _, ok := u.load(c, k, canPipe); ok {
				n++
			}
		}
		slots := n + max(free, 0)
		if slots == 0 {
			return nil, false, false
		}
		r := rand.IntN(slots)
		if r >= n {
			return nil, true, false
		}
		for _, c := range u.conns {
			if _, ok := u.load(c, k, canPipe); ok {
				if r == 0 {
					return c, false, false
				}
				r--
			}
		}
	case AvailableWorker:
		if c := u.popIdle(k); c != nil {
			return c, false, false
		}
		for _, c := range u.conns {
			if n, ok := u.load(c, k, false); ok && n == 0 {
				return c, false, false
			}
		}
		return nil, free > 0, false
	case NextAvailableWorker:
		c, dial, _ := u.roundRobin(k, false, free)
		if c == nil && !dial && u.dialing == 0 {
			return nil, false, true
		}
		return c, dial, false
	}
	return nil, false, false
}

// roundRobin goes round the Workers slots from the last one used: an
// open connection that can take k, or an unopened slot.
func (u *upstream) roundRobin(k *call, canPipe bool, free int) (*conn, bool, bool) {
	n := u.set.Workers
	for i := 0; i < n; i++ {
		slot := (u.rr + i) % n
		if slot < len(u.conns) {
			if _, ok := u.load(u.conns[slot], k, canPipe); ok {
				u.rr = slot + 1
				return u.conns[slot], false, false
			}
		} else if free > 0 {
			u.rr = slot + 1
			return nil, true, false
		}
	}
	return nil, false, false
}

// dispatch hands queued calls to connections, in queue order (a call
// that cannot go anywhere yet does not hold back the ones behind it), and
// opens connections as the strategy asks, up to Workers.
func (u *upstream) dispatch() {
	if len(u.waiters) == 0 {
		return
	}
	if u.p.isClosed() {
		for _, k := range u.waiters {
			if k.state == stQueued {
				k.finish(nil, errPoolClosed)
			}
		}
		clear(u.waiters)
		u.waiters = u.waiters[:0]
		return
	}
	distrusted := u.distrusted()
	free := u.set.Workers - (len(u.conns) - u.closingConns) - u.dialing
	coming := u.dialing
	kept := u.waiters[:0]
	var toClose []*conn
	// Once a pipelinable call finds no room, the ones after it would not
	// either (unless a connection is being dialed for them).
	full := false
	for _, k := range u.waiters {
		if k.state != stQueued {
			continue
		}
		if full && k.pipelinable {
			kept = append(kept, k)
			continue
		}
		c, dial, shed := u.pick(k, free, distrusted)
		if k.pipelinable && c == nil && !dial && !shed {
			full = true
		}
		switch {
		case c != nil:
			u.assign(k, c)
			continue
		case shed:
			u.unreserve(k) // a wait before this one may have reserved a connection for it
			k.finish(nil, fmt.Errorf("pool: %s: no available worker (next_available_worker)", u.key))
			continue
		}
		if k.fresh {
			if !k.dialing {
				if free <= 0 {
					// Make room: close an idle connection, or keep one
					// free of new calls until it is.
					if idle := u.idleConn(k); idle != nil {
						idle.closing, idle.broken = true, true
						u.removeConn(idle)
						if u.p.logf != nil {
							u.p.logf("pool: %s: connection %s closed (idle, making room: workers=%d)", u.key, idle.raw.LocalAddr(), u.set.Workers)
						}
						toClose = append(toClose, idle)
						free++
					} else {
						u.reserveFor(k)
					}
				}
				if free > 0 {
					free--
					u.startDial(k)
				}
			}
		} else if dial {
			if coming > 0 {
				coming--
			} else if free > 0 && !u.backingOff() {
				free--
				u.startDial(nil)
			}
		} else if !k.pipelinable && free <= 0 {
			u.reserveFor(k)
		}
		kept = append(kept, k)
	}
	clear(u.waiters[len(kept):])
	u.waiters = kept
	for _, c := range toClose {
		c.closeNet()
	}
}

// dialBackoff is how long after a failed dial no other is started
// while connections are open (they serve the queue meanwhile).
const dialBackoff = 100 * time.Millisecond

func (u *upstream) backingOff() bool {
	return len(u.conns) > 0 && !u.dialFailedAt.IsZero() && time.Since(u.dialFailedAt) < dialBackoff
}

// idleConn returns an open connection with nothing in flight that k may
// take over.
func (u *upstream) idleConn(k *call) *conn {
	for _, c := range u.conns {
		if len(c.pending)+c.reserved == 0 && !c.broken && !c.closing && (c.reservedFor == nil || c.reservedFor == k) {
			return c
		}
	}
	return nil
}

// reserveFor keeps the least busy connection free of new calls until it
// is idle, for a call that needs a connection of its own.
func (u *upstream) reserveFor(k *call) {
	var best *conn
	bestN := math.MaxInt
	for _, c := range u.conns {
		if c.reservedFor == k {
			return
		}
		if c.reservedFor != nil || c.broken || c.closing || c.owner != nil {
			continue
		}
		if n := len(c.pending) + c.reserved; n < bestN {
			best, bestN = c, n
		}
	}
	if best != nil {
		best.reservedFor = k
		k.reserving = true
	}
}

// startDial opens a connection in the background; owner, when set, is
// the nopipeline call it is for.
func (u *upstream) startDial(owner *call) {
	u.dialing++
	u.st.dials++
	if owner != nil {
		owner.dialing = true
	}
	go u.dial(owner)
}

// dial opens a connection to the upstream for owner, within
// connect_timeout (and the TLS handshake of an https upstream), and
// gives it to the waiting calls.
func (u *upstream) dial(owner *call) {
	ctx := u.p.ctx
	if d := u.set.ConnectTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	raw, err := u.p.dialer(ctx, "tcp", u.addr)
	nc := raw
	if err == nil && u.https {
		tc := tls.Client(raw, u.tls)
		if err = tc.HandshakeContext(ctx); err != nil {
			raw.Close()
		} else {
			nc = tc
		}
	}
	u.mu.Lock()
	u.dialing--
	if owner != nil {
		owner.dialing = false
	}
	if err != nil {
		u.st.dialErrors++
		u.dialFailedAt = time.Now()
		err = &connectError{key: u.key, err: err}
		if u.p.logf != nil {
			u.p.logf("%v", err)
		}
		if owner != nil && owner.state == stQueued {
			u.removeWaiter(owner)
			u.unreserve(owner)
			owner.finish(nil, err)
		} else if len(u.conns) == 0 {
			// The first call waiting takes the error: each failed
			// dial ends at least one call, so a backend that refuses
			// cannot keep calls waiting through endless redials.
			for _, k := range u.waiters {
				if k.state == stQueued && !k.dialing {
					u.removeWaiter(k)
					u.unreserve(k)
					k.finish(nil, err)
					break
				}
			}
		}
		if len(u.conns) == 0 && u.dialing == 0 {
			// Nothing open and nothing coming: the backend is down
			// for everyone waiting.
			kept := u.waiters[:0]
			for _, k := range u.waiters {
				if k.state == stQueued && !k.dialing {
					k.finish(nil, err)
					continue
				}
				if k.state == stQueued {
					kept = append(kept, k)
				}
			}
			clear(u.waiters[len(kept):])
			u.waiters = kept
		}
		u.dispatch()
		u.mu.Unlock()
		return
	}
	c := newConn(u, raw, nc)
	if u.p.isClosed() {
		u.mu.Unlock()
		c.closeNet()
		return
	}
	u.conns = append(u.conns, c)
	u.p.openConns.Add(1)
	if u.p.logf != nil {
		u.p.logf("pool: %s: connection %s opened, %d open", u.key, raw.LocalAddr(), len(u.conns))
	}
	if owner != nil && owner.state == stQueued {
		u.removeWaiter(owner)
		c.owner = owner
		u.assign(owner, c)
	}
	u.dispatch()
	u.mu.Unlock()
	// The janitor is started before the connection's answers are read,
	// so that the coarse clock it sets (clock.go) is fresh when the
	// connection first goes idle.
	u.p.startJanitor()
	if !c.callerReads {
		go c.readLoop()
	}
}

// failAll ends every queued call with err and closes every connection:
// the pool is closing.
func (u *upstream) failAll(err error) {
	u.mu.Lock()
	for _, k := range u.waiters {
		if k.state == stQueued {
			k.finish(nil, err)
		}
	}
	u.waiters = nil
	conns := append([]*conn(nil), u.conns...)
	u.mu.Unlock()
	for _, c := range conns {
		c.fail(err, failAbort, nil)
	}
}
