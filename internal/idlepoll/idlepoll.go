// Package idlepoll waits for many idle sockets at once on one goroutine,
// so that an idle keep-alive connection costs no goroutine of its own.
//
// A connection waiting for its next request on a goroutine parked in a
// read keeps that goroutine's stack (2 KiB at the least, 2.3 KiB measured
// with its runtime bookkeeping) for as long as it is idle: most of the
// memory of an idle plain-HTTP connection. A [Poller] instead watches
// the sockets of such connections with an epoll instance of its own,
// which the Go runtime's poller watches in turn, and tells a connection's
// [Waiter] when its socket becomes readable (bytes, an end, an error) or
// when its deadline passes; the waiter then starts a goroutine for the
// request, or closes the connection.
//
// Each registration is one-shot: it ends with exactly one of Ready,
// Expired, or a [Poller.Remove] that reports true, and whoever ends it
// owns the connection from then on. Deadlines are checked every
// [ScanPeriod]: a registration expires when its deadline is at most
// ScanPeriod away (so at most ScanPeriod early, never late).
//
// Polling is available on Linux only ([Supported]); elsewhere [New]
// fails, and callers wait on a goroutine per connection as before.
package idlepoll

import (
	"errors"
	"time"
)

// ScanPeriod is how often a Poller looks for registrations whose
// deadline has come.
const ScanPeriod = 250 * time.Millisecond

// A Waiter is told how its registration ended. Both are called on the
// Poller's goroutine, without its lock: they must return quickly (start
// a goroutine for anything that may wait).
type Waiter interface {
	// Ready is called when the socket has something to read, or an end
	// or an error to report.
	Ready()
	// Expired is called when the deadline passed first.
	Expired()
}

// A Key names one registration; 0 is none.
type Key uint64

// ErrClosed is returned by Add once the Poller is closed.
var ErrClosed = errors.New("idlepoll: poller closed")

// key packs a slot's index and generation; the generation (never 0)
// makes a key of an ended registration unlike any later one of its slot.
func key(index, gen uint32) Key { return Key(uint64(gen)<<32 | uint64(index)) }

func (k Key) index() uint32 { return uint32(k) }
func (k Key) gen() uint32   { return uint32(k >> 32) }

// slot is one registration, or a free slot (w nil).
type slot struct {
	w        Waiter
	gen      uint32
	deadline int64 // unix nanoseconds; 0 for none
}

// slots is the table of registrations, and the free slots of it. Not
// safe for concurrent use: the Poller guards it with its lock.
type slots struct {
	all  []slot
	free []uint32
	n    int // registrations
}

// add records w with deadline and returns its key.
func (s *slots) add(w Waiter, deadline int64) Key {
	var i uint32
	if n := len(s.free); n > 0 {
		i = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		s.all = append(s.all, slot{})
		i = uint32(len(s.all) - 1)
	}
	sl := &s.all[i]
	sl.gen++
	if sl.gen == 0 {
		sl.gen = 1
	}
	sl.w, sl.deadline = w, deadline
	s.n++
	return key(i, sl.gen)
}

// take ends the registration k and returns its waiter; nil when k has
// ended already.
func (s *slots) take(k Key) Waiter {
	i := k.index()
	if int(i) >= len(s.all) {
		return nil
	}
	sl := &s.all[i]
	if sl.w == nil || sl.gen != k.gen() {
		return nil
	}
	w := sl.w
	sl.w, sl.deadline = nil, 0
	s.free = append(s.free, i)
	s.n--
	return w
}

// expire ends the registrations whose deadline is at or before now and
// appends their waiters to out.
func (s *slots) expire(now int64, out []Waiter) []Waiter {
	for i := range s.all {
		sl := &s.all[i]
		if sl.w != nil && sl.deadline != 0 && sl.deadline <= now {
			out = append(out, s.take(key(uint32(i), sl.gen)))
		}
	}
	return out
}

// drain ends every registration and appends their waiters to out.
func (s *slots) drain(out []Waiter) []Waiter {
	for i := range s.all {
		if sl := &s.all[i]; sl.w != nil {
			out = append(out, s.take(key(uint32(i), sl.gen)))
		}
	}
	return out
}

// deadlineOf is the deadline d as a slot keeps it: unix nanoseconds
// ScanPeriod early (a scan finds it at most ScanPeriod after that), 0
// for none.
func deadlineOf(d time.Time) int64 {
	if d.IsZero() {
		return 0
	}
	return max(d.Add(-ScanPeriod).UnixNano(), 1)
}
