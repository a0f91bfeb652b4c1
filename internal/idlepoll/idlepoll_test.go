package idlepoll

import (
	"net"
	"testing"
	"time"
)

// waiter records how its registration ended, on channels.
type waiter struct {
	ready, expired chan struct{}
}

func newWaiter() *waiter {
	return &waiter{ready: make(chan struct{}, 4), expired: make(chan struct{}, 4)}
}

func (w *waiter) Ready()   { w.ready <- struct{}{} }
func (w *waiter) Expired() { w.expired <- struct{}{} }

// told returns "ready", "expired" or "" (nothing within d).
func (w *waiter) told(d time.Duration) string {
	select { // what is told already comes first (a timer of 0 is ready too)
	case <-w.ready:
		return "ready"
	case <-w.expired:
		return "expired"
	default:
	}
	select {
	case <-w.ready:
		return "ready"
	case <-w.expired:
		return "expired"
	case <-time.After(d):
		return ""
	}
}

// want ends the test unless w is told what (or nothing, for "") within
// d; when says what the test was waiting for.
func (w *waiter) want(t *testing.T, d time.Duration, what, when string) {
	t.Helper()
	if got := w.told(d); got != what {
		t.Fatalf("%s: told %q, want %q", when, got, what)
	}
}

// pair returns both ends of a loopback TCP connection and the accepted
// end's descriptor.
func pair(t *testing.T) (client, server net.Conn, fd int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	rc, err := server.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(f uintptr) { fd = int(f) })
	return client, server, fd
}

// mustAdd registers fd for w, or ends the test.
func mustAdd(t *testing.T, p *Poller, fd int, w Waiter, deadline time.Time, rearm bool) Key {
	t.Helper()
	k, err := p.Add(fd, w, deadline, rearm)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newPoller(t *testing.T) *Poller {
	t.Helper()
	if !Supported() {
		t.Skip("idlepoll: no Poller on this system")
	}
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestReady: a registration ends with Ready when bytes come, once (a
// second write before it is armed again tells nothing), and again when
// armed again with bytes still unread.
func TestReady(t *testing.T) {
	p := newPoller(t)
	client, _, fd := pair(t)
	w := newWaiter()
	mustAdd(t, p, fd, w, time.Now().Add(time.Hour), false)
	w.want(t, 100*time.Millisecond, "", "before any byte came")
	client.Write([]byte("GET"))
	w.want(t, 2*time.Second, "ready", "after bytes came")
	client.Write([]byte(" /"))
	w.want(t, 100*time.Millisecond, "", "after the registration ended")
	if p.Waiting() != 0 {
		t.Fatalf("Waiting() = %d, want 0", p.Waiting())
	}
	mustAdd(t, p, fd, w, time.Time{}, true)
	w.want(t, 2*time.Second, "ready", "armed again with bytes unread")
}

// TestHangup: a client's close ends the wait with Ready (the reader then
// finds the end).
func TestHangup(t *testing.T) {
	p := newPoller(t)
	client, _, fd := pair(t)
	w := newWaiter()
	mustAdd(t, p, fd, w, time.Time{}, false)
	client.Close()
	w.want(t, 2*time.Second, "ready", "after the client closed")
}

// TestExpired: with no byte, a registration ends with Expired, not
// before its deadline less ScanPeriod and not long after it.
func TestExpired(t *testing.T) {
	p := newPoller(t)
	_, _, fd := pair(t)
	w := newWaiter()
	start := time.Now()
	deadline := start.Add(600 * time.Millisecond)
	mustAdd(t, p, fd, w, deadline, false)
	w.want(t, 5*time.Second, "expired", "with no byte")
	if at := time.Since(start); at < 600*time.Millisecond-ScanPeriod {
		t.Errorf("expired after %v, before the deadline less ScanPeriod", at)
	}
	if p.Waiting() != 0 {
		t.Fatalf("Waiting() = %d, want 0", p.Waiting())
	}
}

// TestRemove: Remove ends a registration before anything is told, once.
func TestRemove(t *testing.T) {
	p := newPoller(t)
	client, _, fd := pair(t)
	w := newWaiter()
	k := mustAdd(t, p, fd, w, time.Now().Add(300*time.Millisecond), false)
	if !p.Remove(k) {
		t.Fatal("Remove of a waiting registration: false")
	}
	if p.Remove(k) {
		t.Fatal("second Remove: true")
	}
	client.Write([]byte("x"))
	w.want(t, 800*time.Millisecond, "", "after Remove")
}

// TestClose: Close ends what is left with Expired before it returns, and
// Add fails after it.
func TestClose(t *testing.T) {
	if !Supported() {
		t.Skip("idlepoll: no Poller on this system")
	}
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	_, _, fd1 := pair(t)
	_, _, fd2 := pair(t)
	w1, w2 := newWaiter(), newWaiter()
	mustAdd(t, p, fd1, w1, time.Time{}, false)
	mustAdd(t, p, fd2, w2, time.Now().Add(time.Hour), false)
	p.Close()
	for i, w := range []*waiter{w1, w2} {
		if got := w.told(0); got != "expired" {
			t.Errorf("registration %d: told %q at Close, want expired", i+1, got)
		}
	}
	if _, err := p.Add(fd1, w1, time.Time{}, false); err != ErrClosed {
		t.Errorf("Add after Close: %v, want ErrClosed", err)
	}
	p.Close() // a second Close does nothing
}

// TestMany: many sockets at once, each told once.
func TestMany(t *testing.T) {
	p := newPoller(t)
	const n = 300
	clients := make([]net.Conn, n)
	waiters := make([]*waiter, n)
	for i := range n {
		c, _, fd := pair(t)
		clients[i], waiters[i] = c, newWaiter()
		mustAdd(t, p, fd, waiters[i], time.Now().Add(time.Minute), false)
	}
	if p.Waiting() != n {
		t.Fatalf("Waiting() = %d, want %d", p.Waiting(), n)
	}
	for _, c := range clients {
		c.Write([]byte("x"))
	}
	for i, w := range waiters {
		if got := w.told(5 * time.Second); got != "ready" {
			t.Fatalf("socket %d: told %q, want ready", i, got)
		}
	}
	if p.Waiting() != 0 {
		t.Fatalf("Waiting() = %d, want 0", p.Waiting())
	}
}

// TestAddBadDescriptor: a descriptor that cannot be watched is refused,
// and nothing stays registered.
func TestAddBadDescriptor(t *testing.T) {
	p := newPoller(t)
	if _, err := p.Add(-1, newWaiter(), time.Time{}, false); err == nil {
		t.Fatal("Add(-1): no error")
	}
	if p.Waiting() != 0 {
		t.Fatalf("Waiting() = %d, want 0", p.Waiting())
	}
}

// TestSlots checks the table: keys of ended registrations are stale,
// slots are used again under a new generation, expire takes only what
// is due, drain takes all.
func TestSlots(t *testing.T) {
	var s slots
	w1, w2, w3 := newWaiter(), newWaiter(), newWaiter()
	k1 := s.add(w1, 100)
	k2 := s.add(w2, 0)
	if s.take(k1) != w1 || s.take(k1) != nil {
		t.Fatal("take: not once")
	}
	k3 := s.add(w3, 300)
	if k3.index() != k1.index() || k3 == k1 {
		t.Fatalf("k3 %x: want k1's slot (%x) under a new generation", k3, k1)
	}
	if s.take(k1) != nil {
		t.Fatal("a stale key took the slot's new registration")
	}
	if got := s.expire(299, nil); len(got) != 0 {
		t.Fatalf("expire(299) took %d, want 0", len(got))
	}
	if got := s.expire(300, nil); len(got) != 1 || got[0] != w3 {
		t.Fatalf("expire(300) took %v, want w3 only", got)
	}
	if got := s.drain(nil); len(got) != 1 || got[0] != w2 || s.n != 0 {
		t.Fatalf("drain took %v (n %d), want w2 only", got, s.n)
	}
	_ = k2
}

// TestDeadlineOf: ScanPeriod early, 0 for none, never 0 for one.
func TestDeadlineOf(t *testing.T) {
	if deadlineOf(time.Time{}) != 0 {
		t.Error("zero deadline: not 0")
	}
	d := time.Unix(100, 0)
	if got, want := deadlineOf(d), d.Add(-ScanPeriod).UnixNano(); got != want {
		t.Errorf("deadlineOf = %d, want %d", got, want)
	}
	if deadlineOf(time.Unix(0, 1)) == 0 {
		t.Error("a deadline near the epoch became none")
	}
}
