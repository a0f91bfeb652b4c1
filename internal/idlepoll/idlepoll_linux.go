//go:build linux

package idlepoll

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
)

// Supported reports whether New can make a Poller here.
func Supported() bool { return true }

// A Poller watches idle sockets on one goroutine (see the package
// comment). Its methods are safe for concurrent use.
type Poller struct {
	epfd int
	f    *os.File        // epfd, watched by the runtime's poller
	rc   syscall.RawConn // f's
	done chan struct{}   // closed when loop has returned

	mu     sync.Mutex
	slots  slots
	timed  int  // registrations with a deadline
	armed  bool // f has a read deadline: loop wakes to scan
	closed bool
}

// New starts a Poller.
func New() (*Poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// Non-blocking, so that os.NewFile hands it to the runtime's poller.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	f := os.NewFile(uintptr(epfd), "idlepoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &Poller{epfd: epfd, f: f, rc: rc, done: make(chan struct{})}
	go p.loop()
	return p, nil
}

// Add registers the socket fd, for one wait: w is told when fd becomes
// readable (Ready) or, when deadline is not zero, when it has come
// (Expired), unless Remove ends the registration first. rearm says
// that fd was registered before (its earlier registration ended with
// Ready): a cheaper call then re-arms it. Add fails once the Poller is
// closed (ErrClosed), or when fd cannot be watched; w is then not
// registered.
func (p *Poller) Add(fd int, w Waiter, deadline time.Time, rearm bool) (Key, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, ErrClosed
	}
	d := deadlineOf(deadline)
	k := p.slots.add(w, d)
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(uint32(k)),
		Pad:    int32(uint32(k >> 32)),
	}
	op, other := syscall.EPOLL_CTL_ADD, syscall.EPOLL_CTL_MOD
	if rearm {
		op, other = other, op
	}
	err := syscall.EpollCtl(p.epfd, op, fd, &ev)
	if err == syscall.ENOENT || err == syscall.EEXIST {
		// rearm was wrong (a descriptor number used again): the other.
		err = syscall.EpollCtl(p.epfd, other, fd, &ev)
	}
	if err != nil {
		p.slots.take(k)
		return 0, os.NewSyscallError("epoll_ctl", err)
	}
	if d != 0 {
		p.timed++
		p.armLocked()
	}
	return k, nil
}

// Remove ends the registration k before its waiter is told anything and
// reports true; false when it had ended already (the waiter is told, or
// has been). The caller, on true, owns what it registered.
func (p *Poller) Remove(k Key) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.takeLocked(k) != nil
}

// Waiting returns how many registrations have not ended.
func (p *Poller) Waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.slots.n
}

// Close stops the Poller: each registration left ends with Expired,
// called before Close returns, and Add fails from then on. It must not
// be called from a Waiter's method.
func (p *Poller) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return
	}
	p.closed = true
	left := p.slots.drain(nil)
	p.timed = 0
	p.mu.Unlock()
	p.f.Close() // ends loop's wait
	<-p.done
	for _, w := range left {
		w.Expired()
	}
}

// takeLocked ends the registration k and returns its waiter (nil when
// it had ended). Called with p.mu held.
func (p *Poller) takeLocked(k Key) Waiter {
	i := k.index()
	timed := int(i) < len(p.slots.all) && p.slots.all[i].deadline != 0
	w := p.slots.take(k)
	if w != nil && timed {
		p.timed--
	}
	return w
}

// armLocked sets the wait's deadline to the next scan when some
// registration has a deadline and none is set. Called with p.mu held.
func (p *Poller) armLocked() {
	if !p.armed && p.timed > 0 {
		p.armed = true
		p.f.SetReadDeadline(time.Now().Add(ScanPeriod))
	}
}

// loop waits for the sockets, and for the deadlines when there are
// some, until the Poller is closed.
func (p *Poller) loop() {
	defer close(p.done)
	var (
		events [128]syscall.EpollEvent
		n      int
		werr   error
		ready  []Waiter
	)
	wait := func(fd uintptr) bool {
		n, werr = syscall.EpollWait(int(fd), events[:], 0)
		if werr == syscall.EINTR {
			n, werr = 0, nil
			return true // look again
		}
		return n > 0 || werr != nil
	}
	for {
		err := p.rc.Read(wait)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			p.scan()
			continue
		case err != nil:
			return // closed
		case werr != nil:
			// An epoll instance that cannot be waited on: a broken
			// Poller, not a closed one. Its registrations end as
			// Close ends them, and Add fails from now on.
			go p.Close()
			return
		}
		p.mu.Lock()
		for _, ev := range events[:n] {
			if w := p.takeLocked(key(uint32(ev.Fd), uint32(ev.Pad))); w != nil {
				ready = append(ready, w)
			}
		}
		p.mu.Unlock()
		for i, w := range ready {
			w.Ready()
			ready[i] = nil
		}
		ready = ready[:0]
	}
}

// scan ends the registrations whose deadline has come (Expired), and
// sets the next scan's deadline when registrations with one are left.
func (p *Poller) scan() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	expired := p.slots.expire(time.Now().UnixNano(), nil)
	p.timed -= len(expired)
	p.armed = false
	if p.timed > 0 {
		p.armLocked()
	} else {
		p.f.SetReadDeadline(time.Time{})
	}
	p.mu.Unlock()
	for _, w := range expired {
		w.Expired()
	}
}
