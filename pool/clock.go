package pool

import "time"

// The idle bookkeeping of the connections (conn.idleSince, which the
// janitor compares with IdleTimeout every janitorTick) reads no clock per
// request: a connection that goes idle takes the later of two times
// already known, each no later than the present (idleNow):
//
//   - the pool's coarse clock, the time of the latest tick of the janitor
//     (every janitorTick while connections are open) or of the sweeper
//     (every sweepTick while calls wait with a deadline), also set when
//     the janitor starts, so that it is never older than a janitor tick
//     while connections are open;
//   - the start of the upstream's latest call (upstream.lastCall), which
//     a busy upstream renews at every request.
//
// idleSince is so never later than the moment the connection went idle,
// and at most janitorTick earlier (sweepTick while calls wait with a
// deadline, the length of the call just answered when it is shorter),
// scheduling delays of those goroutines aside. The reaping itself looks
// every janitorTick: a connection is closed after between
// IdleTimeout-janitorTick and IdleTimeout+janitorTick of idleness (it was
// between IdleTimeout and IdleTimeout+janitorTick with a clock read per
// request); the tolerance is the tick's either way, and a backend's
// keep-alive timeout shorter than IdleTimeout is no more likely to close a
// connection the pool still counts on.

// tick advances the coarse clock to now, a time read by a periodic
// goroutine (the janitor, the sweeper). The clock never goes back: the
// two goroutines may store their times out of order.
func (p *Pool) tick(now time.Time) {
	d := int64(now.Sub(p.epoch))
	for {
		cur := p.coarse.Load()
		if d <= cur || p.coarse.CompareAndSwap(cur, d) {
			return
		}
	}
}

// idleNow is the time a connection of u that goes idle now records (see
// above): no later than now, at most janitorTick earlier. Called with
// u.mu held.
func (u *upstream) idleNow() time.Time {
	t := u.p.epoch.Add(time.Duration(u.p.coarse.Load()))
	if u.lastCall.After(t) {
		return u.lastCall
	}
	return t
}
