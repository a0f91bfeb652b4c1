package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocsiproxy/ocsiproxy/wire"
)

// group is the run-time side of a [Group]: its servers' state and the
// balancer in front of their pools.
type group struct {
	cfg     *Group
	pool    *Pool
	members []*member // in document order
	// probing and resolving count the goroutines probing the members
	// (health.go) and resolving servers (resolve.go).
	probing, resolving atomic.Int32
	// bg is the context of the background work while it runs (nil
	// before StartBackground), under which the probes of members added
	// by re-resolution start. Guarded by mu.
	bg context.Context

	// mu guards the members' balancing and health fields and the
	// policies' state.
	mu         sync.Mutex
	ring       *ring // primaries, for hashed policies
	backupRing *ring
	next       int // least_conn: where ties start
	// srvDrained holds, per server (index in cfg.Servers), whether it
	// is drained: the members re-resolution adds inherit it.
	srvDrained []bool
	// leaving are the members re-resolution removed whose requests in
	// flight have not all finished (resolve.go).
	leaving []*member
}

// member is one server of a group: its pool (the upstream of its key,
// shared with any other use of that key) and its state in the group.
type member struct {
	srv    *Server
	si     int // the index of srv in the group's servers
	up     *upstream
	key    string // up's key: "scheme://host:port"
	scheme string // "http" or "https"
	host   string // host:port to send to
	// addr is the address ("10.0.0.1:8080") of a member that
	// re-resolution made for one of srv's addresses; "" for the
	// member that stands for srv itself (its host as written).
	addr string
	// ownsUp reports that re-resolution made up, and drops it when the
	// member leaves (see Pool.resolvedUpstream).
	ownsUp bool
	// leaving is set when re-resolution removed the member.
	leaving bool
	// probeCancel stops the member's probes (nil when none run).
	probeCancel context.CancelFunc

	// Guarded by group.mu.
	current   int       // smooth round robin
	inflight  int64     // requests chosen and not done (body closed or failed)
	fails     int       // failures counted since failSince
	failSince time.Time // start of the failure window
	downUntil time.Time // out until then; then one trial request
	trial     bool      // the trial request is in flight
	drained   bool
	// Active health (health.go): down by probes, and the probes in a
	// row that passed or failed.
	probeDown           bool
	probeGood, probeBad int
	// Counters.
	requests, failures, ejections uint64
	probes, probeFailures         uint64
}

// newGroup returns the run-time group of g, its members' pools taken
// from (or added to) p.byKey.
func (p *Pool) newGroup(g *Group) *group {
	rg := &group{cfg: g, pool: p, srvDrained: make([]bool, len(g.Servers))}
	for i, s := range g.Servers {
		u := p.byKey[s.Key]
		if u == nil {
			u = p.newUpstream(s.Key, s.Settings, s.tls, true)
			p.byKey[s.Key] = u
		}
		scheme, host, _ := strings.Cut(s.Key, "://")
		rg.members = append(rg.members, &member{srv: s, si: i, up: u, key: s.Key, scheme: scheme, host: host})
	}
	rg.placeMembers()
	return rg
}

// placeMembers puts the members on the consistent rings of hashed
// policies, after the members changed. Called with g.mu held (or before
// the group is used).
func (g *group) placeMembers() {
	if !g.cfg.Balance.hashed() {
		return
	}
	var prim, back []int
	for i, m := range g.members {
		if m.srv.Backup {
			back = append(back, i)
		} else {
			prim = append(prim, i)
		}
	}
	g.ring = newRing(g.members, prim)
	g.backupRing = newRing(g.members, back)
}

// groupFor returns the group a request to the URL host hostport goes
// to, nil when it is not a group's name.
func (p *Pool) groupFor(hostport string) *group {
	if p.groups == nil || strings.IndexByte(hostport, ':') >= 0 {
		return nil
	}
	if g := p.groups[hostport]; g != nil {
		return g
	}
	return p.groups[strings.ToLower(hostport)]
}

// UnavailableError is the failure of a request to a group none of whose
// servers is up (all out after failures, or drained): 503, with
// Retry-After.
type UnavailableError struct {
	Group string
	// After is when a server may be up again (at least a second; 10 s
	// when they are all drained).
	After time.Duration
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("pool: group %s: no server is up", e.Group)
}

// RetryAfter returns how long the client should wait before trying
// again.
func (e *UnavailableError) RetryAfter() time.Duration { return e.After }

// connectError is a call that failed before it was written: its
// connection could not be opened. The request reached no backend.
type connectError struct {
	key string
	err error
}

func (e *connectError) Error() string { return "pool: connecting to " + e.key + ": " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// lostError is a call whose connection closed or failed after the
// request was written and before its response head: the backend may
// have received the request.
type lostError struct {
	key string
	err error
}

func (e *lostError) Error() string {
	return "pool: " + e.key + ": connection lost before the response: " + e.err.Error()
}
func (e *lostError) Unwrap() error { return e.err }

// failure says what a call's error means for the group.
type failure uint8

const (
	notFailure failure = iota // not the server's fault (client, body, cancelled, bad request)
	notSent                   // the request reached no backend: connection refused
	lost                      // connection failed or timed out before a response head
	badAnswer                 // a response that cannot be delimited: not retried
)

func classify(err error) failure {
	var ce *connectError
	var le *lostError
	var te *timeoutError
	var fe *FramingError
	switch {
	case errors.As(err, &ce):
		return notSent
	case errors.As(err, &le), errors.As(err, &te):
		return lost
	case errors.As(err, &fe):
		return badAnswer
	}
	return notFailure
}

// usable reports whether m may take a new request now: not drained, not
// down by active health, and up or due for its trial request (a server with its trial request in
// flight is not). Backup servers are used only when no primary server
// is usable. Called with g.mu held.
func (m *member) usable(now time.Time) bool {
	if m.drained || m.probeDown {
		return false
	}
	if m.downUntil.IsZero() {
		return true
	}
	return !now.Before(m.downUntil) && !m.trial
}

// pick chooses the member for a try, skipping those in tried. It
// returns nil and whether the reason is that no server is up.
func (g *group) pick(req *wire.Request, tried []*member) (*member, bool) {
	key, hasKey := "", false
	if g.cfg.Balance.hashed() {
		key, hasKey = g.hashKey(req)
	}
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	primaryUp, anyUp := false, false
	for _, m := range g.members {
		if m.usable(now) {
			anyUp = true
			primaryUp = primaryUp || !m.srv.Backup
		}
	}
	if !anyUp {
		return nil, true
	}
	backup := !primaryUp
	ok := func(i int) bool {
		m := g.members[i]
		return m.srv.Backup == backup && m.usable(now) && !slices.Contains(tried, m)
	}
	i := g.choose(ok, key, hasKey, backup)
	if i < 0 {
		return nil, false
	}
	m := g.members[i]
	if !m.downUntil.IsZero() {
		m.trial = true
	}
	m.inflight++
	m.requests++
	return m, false
}

// retryAfter returns when a server of the group may be up again.
func (g *group) retryAfter() time.Duration {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	var d time.Duration
	for _, m := range g.members {
		if m.drained {
			continue
		}
		var left time.Duration
		switch {
		case m.probeDown:
			// Rise good probes bring it back.
			h := g.cfg.Health
			left = time.Duration(h.Rise-m.probeGood) * h.Interval
			if !m.downUntil.IsZero() {
				left = max(left, m.downUntil.Sub(now))
			}
		case !m.downUntil.IsZero():
			left = m.downUntil.Sub(now)
		default:
			continue
		}
		if d == 0 || left < d {
			d = left
		}
	}
	switch {
	case d == 0:
		return 10 * time.Second
	case d < time.Second:
		return time.Second
	}
	return d.Round(time.Second)
}

// done records the outcome of a try on m: failed (a failure passive
// health counts) or not. A server that fails max_fails times within
// fail_timeout is out for fail_timeout; then one trial request decides.
// Called without g.mu.
func (g *group) done(m *member, failed bool) {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	wasTrial := m.trial
	m.trial = false
	if !failed {
		if wasTrial {
			m.downUntil, m.fails = time.Time{}, 0
		}
		return
	}
	m.failures++
	s := m.srv
	if s.MaxFails == 0 {
		return
	}
	if wasTrial {
		m.downUntil = now.Add(s.FailTimeout)
		m.ejections++
		return
	}
	if m.failSince.IsZero() || now.Sub(m.failSince) > s.FailTimeout {
		m.fails, m.failSince = 0, now
	}
	m.fails++
	if m.fails >= s.MaxFails {
		m.downUntil = now.Add(s.FailTimeout)
		m.fails, m.failSince = 0, time.Time{}
		m.ejections++
	}
}

// release ends a request chosen for m (its body closed, or its try
// failed).
func (g *group) release(m *member) {
	g.mu.Lock()
	m.inflight--
	if m.leaving && m.inflight == 0 {
		g.dropLeaving(m)
	}
	g.mu.Unlock()
}

// failStatus reports whether passive health counts an answer with status
// as a failure (fail_status).
func (g *group) failStatus(status int) bool { return slices.Contains(g.cfg.FailStatus, status) }

// idempotentMethod reports whether a request with method may be sent
// twice (RFC 9110 section 9.2.2).
func idempotentMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// roundTrip sends req to a server of the group, trying another server
// after a failure when it may (see the package documentation): a request
// that reached no backend, or an idempotent one whose connection failed
// before a response head with its body unread, is tried again, at most
// Retries times and within TryDuration. A request that may have been
// received and is not idempotent is never sent twice.
func (g *group) roundTrip(req *wire.Request) (*wire.Response, error) {
	start := time.Now()
	var body *groupBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &groupBody{rc: req.Body}
		defer body.finish()
	}
	var triedBuf [4]*member
	tried := triedBuf[:0]
	var lastErr error
	for {
		m, allDown := g.pick(req, tried)
		if m == nil {
			return nil, g.noneLeft(len(tried), allDown, lastErr)
		}
		tried = append(tried, m)
		out := *req
		out.Scheme, out.Backend = m.scheme, m.host
		if body != nil {
			out.Body = body
		}
		resp, err := newCall(&out, m.up).run()
		if err == nil {
			g.done(m, g.failStatus(resp.StatusCode))
			resp.Body = &memberBody{ReadCloser: resp.Body, inFlight: inFlight{g: g, m: m}}
			return resp, nil
		}
		kind := classify(err)
		g.done(m, kind == notSent || kind == lost)
		g.release(m)
		lastErr = err
		retry := false
		switch kind {
		case notSent:
			retry = body == nil || !body.read.Load()
		case lost:
			retry = idempotentMethod(req.Method) && (body == nil || !body.read.Load())
		}
		if !retry || req.Context().Err() != nil || len(tried) > g.cfg.Retries ||
			g.cfg.TryDuration > 0 && time.Since(start) >= g.cfg.TryDuration {
			if len(tried) > 1 {
				return nil, fmt.Errorf("pool: group %s: %d servers tried, all failed; the last: %v", g.cfg.Name, len(tried), err)
			}
			return nil, err
		}
	}
}

// groupBody is the request body of a call to a group, shared by its
// tries: it remembers whether it was read (a try that read it cannot be
// repeated), and closes the client's body only once the group has
// returned (the pool closes a body when a try ends, and a try that
// failed before reading it leaves it to the next).
type groupBody struct {
	rc   io.ReadCloser
	read atomic.Bool

	mu                      sync.Mutex
	closeAsked, final, shut bool
}

func (b *groupBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.rc.Read(p)
}

func (b *groupBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closeAsked = true
	if b.final && !b.shut {
		b.shut = true
		return b.rc.Close()
	}
	return nil
}

// finish is called when the group returns: the body is closed now if a
// try asked for it, else when the try still using it does.
func (b *groupBody) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.final = true
	if b.closeAsked && !b.shut {
		b.shut = true
		b.rc.Close()
	}
}

// inFlight is a request counted in flight on a group's server until
// done is first called.
type inFlight struct {
	g    *group
	m    *member
	once atomic.Bool
}

// done stops counting the request, once.
func (f *inFlight) done() {
	if f.once.CompareAndSwap(false, true) {
		f.g.release(f.m)
	}
}

// noneLeft is the error of a request with no server left to try after
// tried tries: 503 (UnavailableError) when no server was usable at all,
// else the last try's error.
func (g *group) noneLeft(tried int, allDown bool, lastErr error) error {
	switch {
	case tried == 0 && allDown:
		return &UnavailableError{Group: g.cfg.Name, After: g.retryAfter()}
	case tried == 1:
		return lastErr
	}
	return fmt.Errorf("pool: group %s: %d servers tried, all failed; the last: %v", g.cfg.Name, tried, lastErr)
}

// memberBody is the body of a group's answer: the request stops counting
// as in flight on its server when the body is closed.
type memberBody struct {
	io.ReadCloser
	inFlight
}

func (b *memberBody) Close() error {
	err := b.ReadCloser.Close()
	b.done()
	return err
}

// Unwrap returns the pool's body.
func (b *memberBody) Unwrap() io.ReadCloser { return b.ReadCloser }
