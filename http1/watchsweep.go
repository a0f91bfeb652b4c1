package http1

import "time"

// The watch for the client going away (h1Conn.watch) starts once a
// request has run for watchDelay. Arming and stopping a runtime timer per
// request cost 3% of the instructions of a proxied request; instead, a
// request stores the sweep tick from which it is to be watched
// (h1Conn.watchAt), and one goroutine, ticking every watchTick while
// requests run, starts the watches that are due. A watch so starts
// between watchDelay and watchDelay+watchTick into a request. The same
// goroutine cuts the hot waits that have lasted hotTicks (hotwait.go).

// watchTick is the sweep period.
const watchTick = watchDelay / 2

// watchTicks is how many ticks after it is armed a watch is due: the
// current tick has partly elapsed, so one more than watchDelay/watchTick.
const watchTicks = int64(watchDelay/watchTick) + 1

// sweepLinger is how many ticks the sweeper goes on with nothing armed
// before it ends (it is started again by the next request).
const sweepLinger = 40

// armWatch arms the watch of c's running request (c.wmu held).
func (s *Server) armWatch(c *h1Conn) {
	c.watchAt.Store(s.sweepTick.Load() + watchTicks)
	s.startSweep()
}

// startSweep starts the sweeper unless it runs.
func (s *Server) startSweep() {
	if !s.sweeping.Load() && s.sweeping.CompareAndSwap(false, true) {
		go s.sweepWatches()
	}
}

// sweepWatches starts the watches and cuts the hot waits that are due,
// every watchTick, until none has been pending for sweepLinger ticks. It
// keeps the coarse clock (clock.go) meanwhile.
func (s *Server) sweepWatches() {
	t := time.NewTicker(watchTick)
	defer t.Stop()
	quiet := 0
	for at := range t.C {
		s.clock.Store(&at)
		now := s.sweepTick.Add(1)
		if s.workers.startWatches(now) > 0 {
			quiet = 0
			continue
		}
		if quiet++; quiet < sweepLinger {
			continue
		}
		s.clock.Store(nil) // no longer kept: read afresh
		s.sweeping.Store(false)
		// A request that saw s.sweeping still set before the store
		// started no sweeper: look once more (its watchAt is visible).
		if s.workers.startWatches(now) == 0 || !s.sweeping.CompareAndSwap(false, true) {
			return
		}
		quiet = 0
	}
}

// startWatches starts the watch of each connection being served whose
// watch is due at tick now, and cuts the hot waits that are due (see
// waitHot); it returns how many watches and hot waits are not due yet.
func (p *h1Workers) startWatches(now int64) (pending int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for w := range p.all {
		c := w.cur.Load()
		if c == nil {
			continue
		}
		if c.cutHot(now) {
			pending++
		}
		at := c.watchAt.Load()
		switch {
		case at == 0:
		case now < at:
			pending++
		case c.watchAt.CompareAndSwap(at, 0):
			go c.watch()
		}
	}
	return pending
}
