package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocsiproxy/ocsiproxy/wire"
)

// Pool is the backend client: an [http.RoundTripper] holding, per
// upstream (scheme, host and port), at most Workers HTTP/1.1 connections,
// on which it pipelines the requests that may be (see the package
// documentation). The zero value is not usable; call [New].
type Pool struct {
	cfg    Config
	ctx    context.Context // cancelled by Close: stops dials and the janitor
	cancel context.CancelFunc
	dialer func(ctx context.Context, network, addr string) (net.Conn, error)

	mu        sync.RWMutex
	hosts     [2]map[string]*upstream // by scheme (http, https) and URL.Host as written
	byKey     map[string]*upstream
	groups    map[string]*group // by name; nil when there is none
	dynamic   int               // upstreams created for hosts not listed in the configuration
	janitorOn bool

	closed    atomic.Bool
	openConns atomic.Int64

	// resolver looks up the servers with resolve= (nil:
	// net.DefaultResolver); resolvedRefs counts the members using each
	// upstream made for a resolved address (guarded by mu).
	resolver     func(ctx context.Context, host string) ([]netip.Addr, error)
	resolvedRefs map[*upstream]int

	// The background work (health.go): its cancel while it runs,
	// whether it was stopped, and its goroutines.
	hcMu      sync.Mutex
	hcCancel  context.CancelFunc
	hcStopped bool
	hcWG      sync.WaitGroup

	// upgraders are the transports of the Upgraders given out (under
	// mu), whose idle connections Close closes.
	upgraders []*http.Transport

	// logf, when set (SetEventLog), receives the connection events.
	logf func(format string, args ...any)

	// The sweeper (sweep.go): the upstreams with calls watched, whether
	// it runs, how many times it was started and how many passes it made
	// (for tests); when it sleeps past its next tick, the time it wakes
	// (sweepUntil, Unix nanoseconds; math.MaxInt64 while it decides), and
	// the channel that wakes it earlier (sweepKick).
	sweepMu     sync.Mutex
	sweepUps    []*upstream
	sweepOn     bool
	sweepRuns   int
	sweepPasses int
	sweepUntil  atomic.Int64
	sweepKick   chan struct{}

	// The coarse clock (clock.go): epoch is read once by New; coarse is
	// the latest tick's time, in nanoseconds since epoch.
	epoch  time.Time
	coarse atomic.Int64
}

var _ http.RoundTripper = (*Pool)(nil)

// maxDynamic bounds the upstreams created on demand (a dest template can
// name any host); idle ones are dropped after a few seconds.
const maxDynamic = 4096

// janitorTick is how often idle connections and upstreams are looked
// for.
const janitorTick = time.Second

// New returns a pool for cfg. A Config whose Defaults are zero gets
// [DefaultSettings] with no timeouts.
func New(cfg Config) *Pool {
	if cfg.Defaults.Workers == 0 {
		cfg.Defaults = DefaultSettings(0)
	}
	p := &Pool{cfg: cfg, byKey: make(map[string]*upstream), epoch: time.Now(), sweepKick: make(chan struct{}, 1)}
	p.hosts[0] = make(map[string]*upstream)
	p.hosts[1] = make(map[string]*upstream)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	p.dialer = d.DialContext
	for _, up := range cfg.Upstreams {
		p.byKey[up.Key] = p.newUpstream(up.Key, up.Settings, up.tls, true)
	}
	for _, g := range cfg.Groups {
		if p.groups == nil {
			p.groups = make(map[string]*group)
		}
		p.groups[g.Name] = p.newGroup(g)
	}
	return p
}

func (p *Pool) newUpstream(key string, s Settings, tc *tls.Config, declared bool) *upstream {
	scheme, addr, _ := strings.Cut(key, "://")
	return &upstream{p: p, key: key, addr: addr, https: scheme == "https", set: s, tls: tc, declared: declared, wslack: writeSlack(s)}
}

// writeSlack is how much later than a request's deadline its
// connection's write deadline may be: 1 s, or a quarter of the shortest
// of CallTimeout and RequestTimeout when that is less.
func writeSlack(s Settings) time.Duration {
	d := time.Second
	for _, t := range [...]time.Duration{s.CallTimeout, s.RequestTimeout} {
		if t > 0 && t/4 < d {
			d = t / 4
		}
	}
	return d
}

func (p *Pool) isClosed() bool { return p.closed.Load() }

// SetEventLog makes p report its connection events to logf, one line
// each, starting "pool: " and the upstream: a connection opened or failing
// to open, a connection closed and why (idle, not reusable, given up,
// closed by the backend, a response that cannot be delimited) with the
// requests sent again, pipelining turned off, an upstream added or
// dropped. logf may be called with the upstream's lock held: it must not
// call back into p. nil, the default, reports nothing. Call it before the
// first RoundTrip.
func (p *Pool) SetEventLog(logf func(format string, args ...any)) { p.logf = logf }

// upstreamFor finds or creates the upstream of req's URL.
func (p *Pool) upstreamFor(req *wire.Request) (*upstream, error) {
	scheme := req.Scheme
	idx := 0
	switch {
	case scheme == "http":
	case scheme == "https":
		idx = 1
	case strings.EqualFold(scheme, "http"):
		scheme = "http"
	case strings.EqualFold(scheme, "https"):
		scheme, idx = "https", 1
	default:
		return nil, fmt.Errorf("pool: unsupported scheme %q", req.Scheme)
	}
	hostport := req.Backend
	p.mu.RLock()
	u := p.hosts[idx][hostport]
	p.mu.RUnlock()
	if u != nil {
		return u, nil
	}
	key, host, ok := normalize(scheme, hostport)
	if !ok {
		return nil, fmt.Errorf("pool: bad backend address %q", hostport)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if u = p.hosts[idx][hostport]; u != nil {
		return u, nil
	}
	if u = p.byKey[key]; u == nil {
		if p.dynamic >= maxDynamic {
			return nil, fmt.Errorf("pool: too many backends (%d) in use", maxDynamic)
		}
		var tc *tls.Config
		if idx == 1 {
			tc = p.cfg.tlsFor(host)
		}
		u = p.newUpstream(key, p.cfg.Defaults, tc, false)
		p.byKey[key] = u
		p.dynamic++
		if p.logf != nil {
			p.logf("pool: %s: upstream added (not in an <upstream>: the <pool> settings)", key)
		}
	}
	p.hosts[idx][hostport] = u
	u.aliases = append(u.aliases, hostport)
	return u, nil
}

// errRemoved is an upstream that was dropped while a call looked it up.
var errRemoved = errors.New("pool: upstream removed")

// Send sends req on a connection to its backend and returns the answer
// once its head has arrived (its body, if small, too); it is the pool's
// [wire.Sender]. It treats req.Close as "a new connection of its own,
// closed after the exchange" (nopipeline). A request whose Backend is the
// name of a group goes to one of the group's servers (see [Group]); when
// none is up the error is an [*UnavailableError]. Errors: a timeout
// satisfies net.Error with Timeout() true; a client body error is a
// [*BodyError]; a cancelled context gives its error. req.Body is closed.
func (p *Pool) Send(req *wire.Request) (*wire.Response, error) {
	if err := checkRequest(req); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	if g := p.groupFor(req.Backend); g != nil {
		return g.roundTrip(req)
	}
	for {
		u, err := p.upstreamFor(req)
		if err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
		resp, err := newCall(req, u).run()
		if err != errRemoved {
			return resp, err
		}
	}
}

// RoundTrip is [Pool.Send] for a request and an answer in net/http's
// types (for code that works on them, such as tests): the request's URL
// names the backend, its header fields are sent in sorted order, and the
// answer's fields are in a new map.
func (p *Pool) RoundTrip(hr *http.Request) (*http.Response, error) {
	req, err := requestFromHTTP(hr)
	if err != nil {
		if hr.Body != nil {
			hr.Body.Close()
		}
		return nil, err
	}
	resp, err := p.Send(req)
	if err != nil {
		return nil, err
	}
	return responseToHTTP(resp, hr), nil
}

// CloseIdleConnections closes the connections with nothing in flight.
func (p *Pool) CloseIdleConnections() { p.reap(time.Time{}, true) }

// Close closes every connection, fails the calls in progress and stops
// the active health checks. The pool is unusable afterwards. The idle
// connections of its Upgraders (those of upgrade requests answered
// without a switch) are closed too; their tunnels are not cut.
func (p *Pool) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	p.cancel()
	p.StopBackground()
	for _, u := range p.upstreams() {
		u.failAll(errPoolClosed)
	}
	p.mu.RLock()
	ups := p.upgraders
	p.mu.RUnlock()
	for _, t := range ups {
		t.CloseIdleConnections()
	}
	return nil
}

func (p *Pool) upstreams() []*upstream {
	p.mu.RLock()
	defer p.mu.RUnlock()
	ups := make([]*upstream, 0, len(p.byKey))
	for _, u := range p.byKey {
		ups = append(ups, u)
	}
	return ups
}

// startJanitor makes sure the janitor runs while connections are open.
func (p *Pool) startJanitor() {
	p.mu.Lock()
	if !p.janitorOn && !p.isClosed() {
		p.janitorOn = true
		// The coarse clock may be as old as the janitor's last run:
		// it is brought to the present before the connection just
		// opened can go idle (its answers are read after this).
		p.tick(time.Now())
		go p.janitor()
	}
	p.mu.Unlock()
}

// janitor looks at the idle connections and upstreams every janitorTick,
// closing those idle too long, until the pool is closed.
func (p *Pool) janitor() {
	t := time.NewTicker(janitorTick)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			p.mu.Lock()
			p.janitorOn = false
			p.mu.Unlock()
			return
		case now := <-t.C:
			p.tick(now)
			p.reap(now, false)
			p.mu.Lock()
			if p.openConns.Load() == 0 && p.dynamic == 0 {
				p.janitorOn = false
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
		}
	}
}

// reap closes the connections idle for longer than their IdleTimeout
// (all idle ones when force is set), and the idle connections without a
// reader goroutine (callerReads) that the backend closed or sent bytes on
// (see conn.idleGone: nobody else would notice before their next
// request), and drops the upstreams created on demand that have had
// nothing to do for two ticks.
func (p *Pool) reap(now time.Time, force bool) {
	var gone []*upstream
	for _, u := range p.upstreams() {
		var toClose []*conn
		u.mu.Lock()
		pruned := u.pruneIdle()
		for _, c := range u.conns {
			idle := len(c.pending)+c.reserved == 0 && !c.broken && !c.closing && c.reservedFor == nil
			if idle && (force || u.set.IdleTimeout > 0 && now.Sub(c.idleSince) >= u.set.IdleTimeout) {
				toClose = append(toClose, c)
			}
		}
		for _, c := range toClose {
			c.broken, c.closing = true, true
			u.removeConn(c)
			if p.logf != nil {
				why := "idle for idle_timeout " + u.set.IdleTimeout.String()
				if force {
					why = "idle connections closed"
				}
				p.logf("pool: %s: connection %s closed (%s), %d open", u.key, c.raw.LocalAddr(), why, len(u.conns))
			}
		}
		if !u.declared && len(u.conns) == 0 && u.dialing == 0 && len(u.waiters) == 0 {
			if u.idleTicks++; u.idleTicks >= 2 {
				gone = append(gone, u)
			}
		} else {
			u.idleTicks = 0
		}
		u.mu.Unlock()
		for _, c := range toClose {
			c.closeNet()
		}
		for _, c := range pruned {
			c.closeNet()
		}
	}
	if len(gone) == 0 {
		return
	}
	p.mu.Lock()
	for _, u := range gone {
		u.mu.Lock()
		if !u.declared && len(u.conns) == 0 && u.dialing == 0 && len(u.waiters) == 0 && !u.removed {
			u.removed = true
			delete(p.byKey, u.key)
			for _, a := range u.aliases {
				if strings.HasPrefix(u.key, "https:") {
					delete(p.hosts[1], a)
				} else {
					delete(p.hosts[0], a)
				}
			}
			p.dynamic--
			if p.logf != nil {
				p.logf("pool: %s: upstream dropped (idle)", u.key)
			}
		}
		u.mu.Unlock()
	}
	p.mu.Unlock()
}

// Stats is a snapshot of the pool of one upstream: gauges (connections
// open, idle, being opened, requests in flight and waiting, the deepest
// pipeline now) and counters since the pool was made.
type Stats struct {
	Upstream string // "http://host:port"
	Declared bool   // listed in an <upstream> element
	// Gauges.
	Open, Idle, Dialing, InFlight, Waiting, Depth int
	Distrusted                                    bool // pipelining off for now
	// Counters.
	Requests    uint64 // calls made
	Pipelined   uint64 // requests written while another was in flight on the connection
	MaxDepth    int    // the deepest pipeline seen
	Retries     uint64 // resent after their connection failed (at most once each)
	Requeued    uint64 // resent because their connection closed politely or was given up by us
	HOLResends  uint64 // resent because they were stuck behind a streamed body for HOLTimeout
	Poisoned    uint64 // connections closed on a framing error
	EarlyCloses uint64 // connections closed by the backend with requests unanswered
	Distrusts   uint64 // times pipelining was turned off for Distrust
	Dials       uint64 // connections opened (attempts)
	DialErrors  uint64
	Timeouts    uint64 // calls that ran out of time
	Abandoned   uint64 // calls given up by their caller (timeouts included)
	Drained     uint64 // responses left by their client and read to their end to keep the connection
}

// Stats returns a snapshot of every upstream's pool, sorted by upstream.
func (p *Pool) Stats() []Stats {
	var out []Stats
	for _, u := range p.upstreams() {
		u.mu.Lock()
		s := Stats{
			Upstream: u.key, Declared: u.declared, Open: len(u.conns), Dialing: u.dialing, Waiting: len(u.waiters),
			Distrusted: u.distrusted(),
			Requests:   u.st.requests, Pipelined: u.st.pipelined, MaxDepth: u.st.maxDepth, Retries: u.st.retries,
			Requeued: u.st.requeued, HOLResends: u.st.holResends, Poisoned: u.st.poisoned, EarlyCloses: u.st.earlyCloses,
			Distrusts: u.st.distrusts, Dials: u.st.dials, DialErrors: u.st.dialErrors, Timeouts: u.st.timeouts,
			Abandoned: u.st.abandoned, Drained: u.st.drained,
		}
		for _, c := range u.conns {
			n := len(c.pending) + c.reserved
			if n == 0 {
				s.Idle++
			}
			s.InFlight += n
			s.Depth = max(s.Depth, n)
		}
		u.mu.Unlock()
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Upstream < out[j].Upstream })
	return out
}

// NewUpgradeTransport returns a net/http keep-alive client: connections are
// reused per backend, https backends are verified against the system
// roots (SSL_CERT_FILE and SSL_CERT_DIR are honoured), nothing is
// compressed or proxied behind the operator's back, and the wait for a
// response head is bounded by timeout (0: no bound). It carries protocol
// upgrades (WebSocket) to hosts, which become tunnels ([Pool.Upgrader]
// uses it, and sends the upgrades to groups to their servers); every
// other proxied request goes through the [Pool].
func NewUpgradeTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
	}
}
