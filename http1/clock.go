package http1

import "time"

// The watch sweeper (watchsweep.go) keeps a coarse clock while it runs:
// the time of its latest tick (Server.clock), which its ticker reads
// anyway, at most a watchTick (25 ms) behind the present, scheduling
// delays of the sweeper aside. It runs while requests are being served
// (each arms a watch, which starts it) and for sweepLinger ticks after;
// it clears the clock when it stops, and a clock that is not set is read
// afresh. Two bounds of a request read the coarse clock instead of the
// time itself:
//
//   - the Date field of an answer (httpDate), which has a second's
//     resolution: it is at most a tick late, so it may name the second
//     before for the first 25 ms of a second. An answer written long
//     after its request started (a slow backend) is no staler: the
//     sweeper runs on then only because requests keep it ticking, and
//     otherwise has stopped and cleared the clock;
//   - the idle bound of a kept connection (boundIdle), whose read
//     deadline is moved only once it is not within
//     [IdleTimeout, IdleTimeout+idleSlack] from now: the present is known
//     to lie within a watchTick after the tick's time, so the window is
//     narrowed by a watchTick on that side and the bound keeps its
//     tolerance (never early, at most idleSlack late).
//
// The write deadline of an answer (sendDeadline) still reads the clock: it
// must be exact from the moment the write starts.

// coarseNow returns the time of the sweeper's latest tick, and false when
// the sweeper does not run (the time must then be read).
func (s *Server) coarseNow() (time.Time, bool) {
	if t := s.clock.Load(); t != nil {
		return *t, true
	}
	return time.Time{}, false
}

// dateNow is the time given to httpDate: the coarse clock when it runs.
func (s *Server) dateNow() time.Time {
	if t, ok := s.coarseNow(); ok {
		return t
	}
	return time.Now()
}
