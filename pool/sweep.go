package pool

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// The call deadlines (call_timeout, request_timeout) are watched by one
// goroutine per pool, the sweeper, instead of a runtime timer per call:
// a call that waits with a deadline is put in its upstream's watched list
// (under the upstream's lock, which the call takes anyway), and taken off
// it when its outcome is sent or it gives up; a call answered before its
// deadline costs no timer operation at all. Every sweepTick, the sweeper
// tells the calls that are due (a due event on their channel); each call
// checks the time itself, so a timeout never fires early, and fires at
// most sweepTick late (plus scheduling delays). A call reading its own
// response (callerReads, see callerread.go) is not told: its read is cut
// by a read deadline in the past, when it is due or its context is done
// (such a call is watched even without a deadline, for that). The
// sweeper runs only while some call is watched: it stops at the first
// tick that finds none, and when the pool is closed. When the only calls
// watched are due later and none needs its context looked at (each
// reading call's context is pushed, see ctxPushPolls), the sweeper sleeps
// until the earliest deadline instead of ticking (at most maxSweepSleep);
// a call watched meanwhile that needs it sooner wakes it (wakeSweeper).

// sweepTick is the sweeper's period: how late a call_timeout or
// request_timeout may fire at most.
const sweepTick = 10 * time.Millisecond

// maxSweepSleep bounds the sweeper's sleep when nothing is due (a
// variable for tests).
var maxSweepSleep = time.Second

// ctxPushPolls is how many ticks the sweeper looks at the context of a
// call reading its own response before it has a context.AfterFunc watch
// it instead (pushCtx): 100 ms. The AfterFunc costs allocations, which a
// call that is answered sooner does not pay; past it, the call costs the
// sweeper no look per tick.
const ctxPushPolls = 10

// errDue is the sweeper's event: the deadline a call was watched for has
// passed. It is not an outcome.
var errDue = errors.New("pool: internal: call deadline passed")

// watch makes the sweeper watch k for the deadline at, or stop watching
// it when at is zero. A call that has its outcome is not watched. Called
// with u.mu held.
func (u *upstream) watch(k *call, at time.Time) {
	if at.IsZero() || k.state == stDone || k.state == stAbandoned {
		u.unwatch(k)
		return
	}
	k.watchAt = at
	if u.watchMin.IsZero() || at.Before(u.watchMin) {
		u.watchMin = at
	}
	if k.watchIdx == 0 {
		u.watched = append(u.watched, k)
		k.watchIdx = len(u.watched)
		if !u.swept {
			u.swept = true
			u.p.sweepAdd(u)
		}
	}
	if k.conn != nil && k.conn.reader == k && k.ctxStop == nil {
		at = time.Time{} // its context is to be looked at from the next tick
	}
	u.p.wakeSweeper(at)
}

// wakeSweeper wakes the sweeper if it sleeps past at (the zero time: past
// its next tick). It costs an atomic load when the sweeper ticks. Called
// with the lock of an upstream held, after the change that needs the
// sweeper: the sweeper announces a sleep (sweepUntil) before it looks at
// the upstreams, so either it sees the change or this sees the sleep.
func (p *Pool) wakeSweeper(at time.Time) {
	until := p.sweepUntil.Load()
	if until == 0 || (!at.IsZero() && at.UnixNano() >= until) {
		return
	}
	select {
	case p.sweepKick <- struct{}{}:
	default: // already woken
	}
}

// unwatch takes k off the watched list. Called with u.mu held.
func (u *upstream) unwatch(k *call) {
	i := k.watchIdx - 1
	if i < 0 {
		return
	}
	last := len(u.watched) - 1
	if i != last {
		m := u.watched[last]
		u.watched[i] = m
		m.watchIdx = i + 1
	}
	u.watched[last] = nil
	u.watched = u.watched[:last]
	k.watchIdx = 0
}

// sweepAdd puts u in the sweeper's list, and starts the sweeper if it is
// not running. Called with u.mu held (the lock order is u.mu, then
// p.sweepMu).
func (p *Pool) sweepAdd(u *upstream) {
	p.sweepMu.Lock()
	p.sweepUps = append(p.sweepUps, u)
	if !p.sweepOn && !p.isClosed() {
		p.sweepOn = true
		p.sweepRuns++
		go p.sweeper()
	}
	p.sweepMu.Unlock()
}

// sweepRemove takes u off the sweeper's list. Called with u.mu held.
func (p *Pool) sweepRemove(u *upstream) {
	p.sweepMu.Lock()
	for i, x := range p.sweepUps {
		if x == u {
			last := len(p.sweepUps) - 1
			p.sweepUps[i] = p.sweepUps[last]
			p.sweepUps[last] = nil
			p.sweepUps = p.sweepUps[:last]
			break
		}
	}
	p.sweepMu.Unlock()
}

// sweeper tells the watched calls that are due, every sweepTick, until
// nothing is watched or the pool is closed; it sleeps longer when nothing
// is due sooner (see above).
func (p *Pool) sweeper() {
	t := time.NewTimer(sweepTick)
	defer t.Stop()
	var ups []*upstream
	for {
		select {
		case <-p.ctx.Done():
			p.sweepUntil.Store(0)
			p.sweepMu.Lock()
			p.sweepOn = false
			p.sweepMu.Unlock()
			return
		case <-t.C:
		case <-p.sweepKick:
		}
		// From here until the sleep is decided, a call watched wakes the
		// sleep that follows (wakeSweeper).
		p.sweepUntil.Store(math.MaxInt64)
		p.sweepMu.Lock()
		ups = append(ups[:0], p.sweepUps...)
		p.sweepPasses++
		p.sweepMu.Unlock()
		now := time.Now()
		p.tick(now)
		next := now.Add(maxSweepSleep)
		for _, u := range ups {
			if at := u.sweep(now); !at.IsZero() && at.Before(next) {
				next = at
			}
		}
		clear(ups)
		p.sweepMu.Lock()
		if len(p.sweepUps) == 0 {
			p.sweepOn = false
			p.sweepMu.Unlock()
			p.sweepUntil.Store(0)
			return
		}
		p.sweepMu.Unlock()
		sleep := sweepTick
		if d := next.Sub(now); d > sweepTick {
			sleep = d
			p.sweepUntil.Store(next.UnixNano())
		} else {
			p.sweepUntil.Store(0)
			select {
			case <-p.sweepKick: // sent while it decided: it ticks anyway
			default:
			}
		}
		t.Reset(sleep)
	}
}

// sweep tells u's watched calls due by now, and leaves the sweeper's list
// when none is left. It returns when u next needs the sweeper: its
// earliest deadline, the next tick (now+sweepTick) while a call's
// context is to be looked at, or the zero time when nothing is watched.
func (u *upstream) sweep(now time.Time) time.Time {
	u.mu.Lock()
	if len(u.watched) == 0 {
		u.watchMin = time.Time{}
		if u.swept {
			u.swept = false
			u.p.sweepRemove(u)
		}
		u.mu.Unlock()
		return time.Time{}
	}
	if now.Before(u.watchMin) && u.readers == u.pushed {
		at := u.watchMin
		u.mu.Unlock()
		return at // nothing due yet (watchMin is never later than a deadline watched), no context to look at
	}
	var next time.Time
	var stuck []*call
	for i := 0; i < len(u.watched); {
		k := u.watched[i]
		reading := k.conn != nil && k.conn.reader == k
		if reading && !k.writing.Load() {
			// It reads its response in its own goroutine (callerReads),
			// and would not see a due event: due, or its caller gone,
			// its read is cut below, and the call sees why when it
			// returns.
			if now.Before(k.watchAt) && (k.ctxStop != nil || k.ctx.Err() == nil) {
				if k.ctxStop == nil {
					if k.readPolls++; k.readPolls >= ctxPushPolls {
						u.pushCtx(k)
					}
				}
				if next.IsZero() || k.watchAt.Before(next) {
					next = k.watchAt
				}
				i++
				continue
			}
			u.unwatch(k) // moves the last one to i
			stuck = append(stuck, k)
			continue
		}
		if now.Before(k.watchAt) {
			if next.IsZero() || k.watchAt.Before(next) {
				next = k.watchAt
			}
			i++
			continue
		}
		if k.state == stSent && (reading || k.writing.Load()) {
			stuck = append(stuck, k)
		}
		if len(k.ch) != 0 {
			// An event is there already (an outcome or a connection,
			// which wakes the call, or a due event it has not read):
			// told at the next tick. So at most one due event is ever
			// pending, besides at most one other event.
			if next.IsZero() || k.watchAt.Before(next) {
				next = k.watchAt
			}
			i++
			continue
		}
		u.unwatch(k) // moves the last one to i
		k.ch <- event{err: errDue}
	}
	u.watchMin = next
	// A call due while its request is still being written cannot see
	// its due event (nor can a call reading its own response): the write
	// (to a backend that reads nothing) is cut by giving the connection
	// up, as the call would when timing out at the head of it. The
	// call's own timeout error is what it returns.
	var cut []*conn
	for _, k := range stuck {
		c := k.conn
		if k.state == stSent && c != nil && c.reader == k && !k.writing.Load() {
			// Its read is cut by a read deadline in the past (undone
			// by conn.endRead if the response came whole meanwhile).
			c.cut = true
			c.abortRead()
			continue
		}
		if k.state == stSent && k.writing.Load() && c != nil {
			err := &timeoutError{msg: fmt.Sprintf("pool: %s %s: request not written by its deadline", u.key, k.req.Method)}
			if c.failLocked(err, failAbort, &culprit{k: k, err: err}) {
				cut = append(cut, c)
			}
			u.st.abandoned++
			u.st.timeouts++
		}
	}
	at := next
	if u.readers > u.pushed {
		at = now.Add(sweepTick)
	}
	u.mu.Unlock()
	for _, c := range cut {
		c.closeNet()
	}
	return at
}

// pushCtx has a context.AfterFunc watch the context of k, a call reading
// its own response, instead of the sweeper (see ctxPushPolls). Called
// with u.mu held.
func (u *upstream) pushCtx(k *call) {
	c, gen := k.conn, k.readGen
	k.ctxStop = context.AfterFunc(k.ctx, func() { u.readerGone(c, k, gen) })
	u.pushed++
}

// readerGone is the AfterFunc of pushCtx: the context of k, reading its
// response (its read number gen) on c, is done. The read is cut as the
// sweeper would cut it; unless k is writing its body meanwhile, when the
// sweeper looks at it again (its context is done: it is cut once the
// body is written). Nothing is done when that read has ended (k may
// even serve another request by now).
func (u *upstream) readerGone(c *conn, k *call, gen uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if c.reader != k || k.readGen != gen || k.ctxStop == nil {
		return
	}
	k.ctxStop = nil
	u.pushed--
	if k.watchIdx == 0 || k.state != stSent || k.writing.Load() {
		u.p.wakeSweeper(time.Time{}) // its context is to be looked at again
		return
	}
	u.unwatch(k)
	c.cut = true
	c.abortRead()
}
