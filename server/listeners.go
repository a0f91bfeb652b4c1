package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/admin"
	"github.com/ocsiproxy/ocsiproxy/http1"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// The listeners of a running server, and how a reload changes them.
//
// Each <port> is a port: a listener with an accept loop of its own, which
// takes a connection slot (<maxconnected>), accepts, and hands the
// connection to the server of the port's protocol. A plain port's go to
// the HTTP/1 server (one for every port). An HTTPS port's go to the HTTP/1
// server's ServeTLS, with the TLS configuration of the port's HTTPS
// generation: it makes the handshake and serves HTTP/1.x itself, and
// hands the connections that negotiated HTTP/2 to the generation's
// net/http server, made for one configuration. A net/http server reads
// its fields per connection and per request, so that changing them while
// it serves would be a data race: a reload makes a new generation with
// the new bounds and certificates, hands the port's next connections to
// it, and retires the old one, whose connections go on with what they
// started with. The HTTP/1 server takes its bounds (http1.Options) from
// an atomic snapshot when it accepts a connection.
//
// A reload opens the listeners the new configuration adds before it
// changes anything: when one cannot be opened, every listener stays as
// it was and the reload fails. Then the new ones start accepting, and
// only then are those no longer configured closed; their connections end
// as in a graceful shutdown. A <port> whose address is unchanged keeps
// its listener; so does the admin listener.

// connOptionsOf returns the bounds of client connections set by cfg.
func connOptionsOf(cfg *xmlconf.Config) http1.Options {
	maxHeader := int(cfg.NetBufferSize)
	if maxHeader <= 0 {
		maxHeader = http.DefaultMaxHeaderBytes
	}
	return http1.Options{
		HeaderTimeout:  cfg.Timeout,
		IdleTimeout:    cfg.KeepAliveTimeout,
		WriteTimeout:   cfg.Timeout,
		MaxHeaderBytes: maxHeader,
	}
}

// port is one open <port>.
type port struct {
	net.Listener
	// addr is the address of the <port> element it was opened for
	// (xmlconf.Port.Addr), by which a reload recognises it.
	addr string
	// https is the port's protocol in the configuration in force
	// (Server.mu).
	https bool
	// gen serves the connections of an HTTPS port; nil on a plain port.
	gen atomic.Pointer[httpsGen]
	// old are the generations a reload retired that still had
	// connections (Server.mu).
	old []*httpsGen
	// retired is set once a reload closed the port: its HTTP/1
	// connections then end after their answer.
	retired atomic.Bool
	// quit is closed when the port is closed; done when its accept loop
	// has returned (nil while it has not started).
	quit      chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

// close stops the port's accepting and closes its listener.
func (p *port) close() {
	p.closeOnce.Do(func() {
		close(p.quit)
		p.Listener.Close()
	})
}

// closing reports whether close was called.
func (p *port) closing() bool {
	select {
	case <-p.quit:
		return true
	default:
		return false
	}
}

// listen opens the listener of a <port> or of the admin listener. A
// refusal says why where the system's words do not: an address that
// overlaps one of the listeners held, which this server closes only once
// every new listener is open; a port below 1024 without the privilege.
func listen(addr string, held []net.Listener) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l, nil
	}
	ta, rerr := net.ResolveTCPAddr("tcp", addr)
	if rerr != nil {
		return nil, err
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		for _, h := range held {
			if ha, ok := h.Addr().(*net.TCPAddr); ok && overlap(ha, ta) {
				return nil, fmt.Errorf("%w (by this server's listener on %s, which a reload closes only once every new listener is open: moving to an overlapping address needs a restart)", err, ha)
			}
		}
	case errors.Is(err, os.ErrPermission) && ta.Port < 1024 && os.Geteuid() != 0:
		return nil, fmt.Errorf("%w (a port below 1024 needs root or CAP_NET_BIND_SERVICE; a process started as root gives them up when it switches to <user>)", err)
	}
	return nil, err
}

// overlap reports whether listening on a and on b conflict: the same
// port on the same or an unspecified address.
func overlap(a, b *net.TCPAddr) bool {
	return a.Port == b.Port && (a.IP.IsUnspecified() || b.IP == nil || b.IP.IsUnspecified() || a.IP.Equal(b.IP))
}

// acceptLoop accepts connections on p until it is closed, each once a
// connection slot is free, and hands them over (dispatch). An accept error
// other than a temporary one is sent to errc.
func (s *Server) acceptLoop(p *port, errc chan<- error) {
	defer close(p.done)
	var delay time.Duration
	for {
		if !s.slots.acquire(p.quit) {
			return
		}
		nc, err := p.Accept()
		if err != nil {
			s.slots.release()
			if p.closing() {
				return
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				// Out of file descriptors and the like: back off as
				// net/http does rather than spin.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.Logs.Errorf("accept error on %s: %v; retrying in %v", p.Addr(), err, delay)
				time.Sleep(delay)
				continue
			}
			select {
			case errc <- fmt.Errorf("server: accepting on %s: %w", p.Addr(), err):
			default:
			}
			return
		}
		delay = 0
		// The slot was taken before the accept: the bound may have been
		// lowered since.
		if !s.slots.fits(p.quit) {
			nc.Close()
			return
		}
		s.dispatch(p, &slotConn{Conn: nc, release: s.slots.release})
	}
}

// dispatch hands the connection c accepted on p to the server of p's
// protocol: on an HTTPS port, to the TLS handshake of the HTTP/1 server,
// which serves HTTP/1.x and hands HTTP/2 to the generation's net/http
// server (serveH2).
func (s *Server) dispatch(p *port, c net.Conn) {
	g := p.gen.Load()
	if g == nil {
		s.h1.ServeConn(c, &p.retired)
		return
	}
	var nc net.Conn = c
	if g.o.WriteTimeout > 0 {
		nc = http1.NewSendTimeoutConn(c, g.o.WriteTimeout)
	}
	s.h1.ServeTLS(tls.Server(nc, g.tlsConf), func(tc *tls.Conn) { serveH2(p, g, tc) }, &p.retired)
}

// serveH2 hands tc, an HTTP/2 connection whose handshake was made with
// the configuration of the generation g of p, to g's net/http server, or
// to its successor when a reload retired g meanwhile.
func serveH2(p *port, g *httpsGen, tc *tls.Conn) {
	for {
		if g.ln.deliver(tc) {
			return
		}
		next := p.gen.Load()
		if next == nil || next == g {
			// Retired with no successor: the port is closing.
			tc.Close()
			return
		}
		g = next
	}
}

// httpsGen is the TLS configuration of an HTTPS port and its net/http
// server of HTTP/2, for one configuration. Its fields are never changed
// once it serves.
type httpsGen struct {
	// tlsConf is the configuration of the handshakes (ServeTLS).
	tlsConf *tls.Config
	hs      *http.Server
	o       http1.Options
	ln      *handoffListener
	// open counts its connections not yet closed or hijacked.
	open atomic.Int64
	// cancel ends the context of the requests still running when
	// shutdown closes their connections.
	cancel context.CancelCauseFunc
}

// alpn are the protocols an HTTPS port offers, HTTP/2 first (as net/http
// offers them).
var alpn = []string{"h2", "http/1.1"}

// newHTTPSGen starts a generation whose handshakes use tlsConf, and whose
// net/http server serves with the bounds o the HTTP/2 connections handed
// to it for the listener l.
func (s *Server) newHTTPSGen(l net.Listener, tlsConf *tls.Config, o http1.Options, errc chan<- error) *httpsGen {
	g := &httpsGen{o: o, ln: &handoffListener{addr: l.Addr(), conns: make(chan net.Conn), closed: make(chan struct{})}}
	g.tlsConf = tlsConf.Clone()
	g.tlsConf.NextProtos = alpn
	// The requests' contexts derive from base, cancelled with the cause
	// http.ErrServerClosed when shutdown closes the connections left, as
	// http1's are: those requests are logged as cut by the server.
	base, cancel := context.WithCancelCause(context.Background())
	g.cancel = cancel
	g.hs = &http.Server{
		BaseContext:       func(net.Listener) context.Context { return base },
		Handler:           s.Handler,
		ReadHeaderTimeout: o.HeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          s.Logs.StdLogger(),
		// "OPTIONS *" goes to the handler too, which answers and logs
		// it as on the plain ports, instead of net/http's own 200.
		DisableGeneralOptionsHandler: true,
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				g.open.Add(1)
			case http.StateClosed, http.StateHijacked:
				g.open.Add(-1)
			}
		},
		// Its own copy, as enabling HTTP/2 edits it; "h2" among its
		// protocols makes Serve enable HTTP/2 for the connections handed
		// over, whose handshake is made (tls.Conn's Handshake, which
		// net/http calls, does nothing on a connection past it).
		TLSConfig: g.tlsConf.Clone(),
	}
	go func() {
		err := g.hs.Serve(g.ln)
		// Whatever ended it, the accept loop must not wait on it.
		g.ln.Close()
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			select {
			case errc <- err:
			default:
			}
		}
	}()
	return g
}

// shutdown ends the generation's connections gracefully, closing those
// left when ctx is done.
func (g *httpsGen) shutdown(ctx context.Context) {
	g.ln.Close()
	if err := g.hs.Shutdown(ctx); err != nil {
		g.cancel(http.ErrServerClosed)
		g.hs.Close()
		// The handlers of the requests cut return and log them; a
		// connection counts as closed once its handler has returned.
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for deadline := time.Now().Add(cutLogWait); g.open.Load() > 0 && time.Now().Before(deadline); {
			<-t.C
		}
	}
}

// handoffListener is the listener of an httpsGen: Accept returns the
// connections the port's accept loop hands over, until Close.
type handoffListener struct {
	addr      net.Addr
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// deliver hands c to Accept; false when the listener is closed (c was not
// taken).
func (l *handoffListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

// Close makes Accept fail; it closes no connection.
func (l *handoffListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// adminPort is the open admin listener and its server.
type adminPort struct {
	net.Listener
	addr string // the <listen> text it was opened for
	hs   *http.Server
}

// listenPlan is what a configuration needs of the listeners: the ports in
// its order, kept or opened, and the admin listener. Nothing is closed
// while it is made.
type listenPlan struct {
	ports   []*port
	opened  []*port // the new ones among ports
	removed []*port // open now and not configured
	adminLn *adminPort
	// adminLnOld is the admin listener to close (nil: none, or kept).
	adminLnOld *adminPort
	tlsConf    *tls.Config
}

// planListeners opens the listeners cfg adds to those open now (s.mu
// held). When one cannot be opened, or the certificates of an HTTPS port
// cannot be loaded, it closes what it opened and fails with the position
// of the element and the reason.
func (s *Server) planListeners(cfg *xmlconf.Config, adm *admin.Config) (_ *listenPlan, err error) {
	if len(cfg.Ports) == 0 {
		return nil, errors.New("server: no <port> in the configuration")
	}
	pl := &listenPlan{}
	defer func() {
		if err != nil {
			for _, p := range pl.opened {
				p.Listener.Close()
			}
			if pl.adminLn != nil && pl.adminLn != s.adminLn {
				pl.adminLn.Close()
			}
		}
	}()
	kept := make(map[*port]bool)
	for _, cp := range cfg.Ports {
		var k *port
		for _, p := range s.ports {
			if !kept[p] && p.addr == cp.Addr {
				k = p
				break
			}
		}
		if k != nil {
			kept[k] = true
			pl.ports = append(pl.ports, k)
			continue
		}
		pl.ports = append(pl.ports, nil) // opened below, once the kept ones are known
	}
	for _, p := range s.ports {
		if !kept[p] {
			pl.removed = append(pl.removed, p)
		}
	}
	for i, cp := range cfg.Ports {
		if pl.ports[i] != nil {
			continue
		}
		var held []net.Listener
		for _, p := range pl.removed {
			held = append(held, p.Listener)
		}
		l, err := listen(cp.Addr, held)
		if err != nil {
			return nil, fmt.Errorf("server: %s: listening on %s: %w", cp.Pos, cp.Addr, err)
		}
		p := &port{Listener: l, addr: cp.Addr, quit: make(chan struct{})}
		pl.ports[i] = p
		pl.opened = append(pl.opened, p)
	}
	for _, cp := range cfg.Ports {
		if cp.HTTPS {
			if pl.tlsConf, err = loadTLS(cfg, cp.Pos); err != nil {
				return nil, err
			}
			break
		}
	}
	switch {
	case adm == nil:
		pl.adminLnOld = s.adminLn
	case s.adminLn != nil && s.adminLn.addr == adm.Addr:
		pl.adminLn = s.adminLn
	default:
		var held []net.Listener
		if s.adminLn != nil {
			held = append(held, s.adminLn.Listener)
		}
		l, err := listen(adm.Addr, held)
		if err != nil {
			return nil, fmt.Errorf("server: %s: admin listener on %s: %w", adm.Pos, adm.Addr, err)
		}
		pl.adminLn = &adminPort{Listener: l, addr: adm.Addr}
		pl.adminLnOld = s.adminLn
	}
	return pl, nil
}

// loadTLS reads the certificate and key of cfg's <ssl>, for the HTTPS
// <port> at pos.
func loadTLS(cfg *xmlconf.Config, pos xmlconf.Pos) (*tls.Config, error) {
	if cfg.SSL == nil {
		return nil, fmt.Errorf("server: %s: protocol=\"HTTPS\" needs <ssl><certificate> and <privatekey>", pos)
	}
	cert, err := tls.LoadX509KeyPair(cfg.SSL.Certificate, cfg.SSL.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("server: %s: <ssl>: %w", cfg.SSL.Pos, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// applyListeners puts pl in force (s.mu held): the ports of cfg serve
// with its protocols, bounds and certificates, new listeners start
// accepting when the server serves, then those no longer configured are
// closed and their connections drained for up to <shutdowntimeout>.
func (s *Server) applyListeners(pl *listenPlan, cfg *xmlconf.Config) {
	adminNew := pl.adminLn != nil && pl.adminLn != s.adminLn
	s.ports, s.tlsConf = pl.ports, pl.tlsConf
	for i, p := range s.ports {
		p.https = cfg.Ports[i].HTTPS
		if s.serving {
			s.startPort(p)
		}
	}
	if pl.adminLn != s.adminLn {
		s.adminLn = pl.adminLn
		if s.serving && s.adminLn != nil {
			s.startAdmin()
		}
	}
	for _, p := range pl.removed {
		p.close()
		if p.done != nil {
			<-p.done
		}
		s.Logs.Infof("reload: no longer listening on %s", p.Addr())
		gens := p.old
		if g := p.gen.Swap(nil); g != nil {
			gens = append(gens, g)
		}
		s.drain(func(ctx context.Context) {
			s.h1.Drain(ctx, &p.retired)
			var wg sync.WaitGroup
			for _, g := range gens {
				wg.Go(func() { g.shutdown(ctx) })
			}
			wg.Wait()
		})
	}
	for _, p := range pl.opened {
		s.Logs.Infof("reload: listening on %s", p.Addr())
	}
	if adminNew {
		s.Logs.Infof("reload: admin listener on %s", pl.adminLn.Addr())
	}
	if a := pl.adminLnOld; a != nil {
		a.Close()
		s.Logs.Infof("reload: admin listener on %s closed", a.Addr())
		if a.hs != nil {
			s.drain(func(ctx context.Context) {
				if err := a.hs.Shutdown(ctx); err != nil {
					a.hs.Close()
				}
			})
		}
	}
}

// startPort makes p serve with its protocol, the bounds and the
// certificates in force (s.mu held), and starts its accept loop if it
// has none: an HTTPS port gets a new generation, and the one it replaces
// is retired.
func (s *Server) startPort(p *port) {
	var g *httpsGen
	if p.https {
		g = s.newHTTPSGen(p.Listener, s.tlsConf, s.h1.Options(), s.errc)
	}
	if old := p.gen.Swap(g); old != nil {
		old.ln.Close()
		p.old = append(p.old, old)
	}
	// Generations whose connections have all ended are forgotten.
	n := 0
	for _, o := range p.old {
		if o.open.Load() > 0 {
			p.old[n] = o
			n++
		}
	}
	clear(p.old[n:])
	p.old = p.old[:n]
	if p.done == nil {
		p.done = make(chan struct{})
		go s.acceptLoop(p, s.errc)
	}
}

// startAdmin serves the admin endpoints on the admin listener (s.mu held).
func (s *Server) startAdmin() {
	hs := &http.Server{Handler: admin.NewHandler(s.Metrics, s), ReadHeaderTimeout: 10 * time.Second, ErrorLog: s.Logs.StdLogger()}
	s.adminLn.hs = hs
	go hs.Serve(s.adminLn.Listener)
}

// drain runs f in the background with a context ended after the
// <shutdowntimeout> in force; Shutdown waits for the drains under way.
func (s *Server) drain(f func(ctx context.Context)) {
	s.draining.Add(1)
	go func() {
		defer s.draining.Done()
		ctx := context.Background()
		if t := s.ShutdownTimeout(); t >= 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, t)
			defer cancel()
		}
		f(ctx)
	}()
}

// connSlots bounds the client connections open across every port
// (<maxconnected>). The bound can change while connections are open:
// lowering it closes none, and new connections wait until fewer than the
// new bound are open.
type connSlots struct {
	// logs, when set, get at accesslog.Verbose a line saying that every slot is
	// taken, at most once a second.
	logs *accesslog.Logs
	// logged is when that was last said (Unix nanoseconds).
	logged atomic.Int64

	mu   sync.Mutex
	max  int // 0: no bound
	open int
	// wake is closed, and forgotten, when a slot frees or the bound
	// changes; it is made by a waiter.
	wake chan struct{}
}

// acquire takes a slot, waiting until one is free; false when quit was
// closed first.
func (cs *connSlots) acquire(quit <-chan struct{}) bool {
	cs.mu.Lock()
	for cs.max > 0 && cs.open >= cs.max {
		if cs.wake == nil {
			cs.wake = make(chan struct{})
		}
		wake, bound := cs.wake, cs.max
		cs.mu.Unlock()
		if cs.logs != nil && cs.logs.Enabled(accesslog.Verbose) {
			cs.full(bound)
		}
		select {
		case <-wake:
		case <-quit:
			return false
		}
		cs.mu.Lock()
	}
	cs.open++
	cs.mu.Unlock()
	return true
}

// fits keeps a slot acquired before a reload lowered the bound when it is
// still within the bound; otherwise it gives it back and waits for
// another (acquire), so that slots held over the bound are never waited
// on by each other. False when quit was closed first: no slot is held.
func (cs *connSlots) fits(quit <-chan struct{}) bool {
	cs.mu.Lock()
	if cs.max <= 0 || cs.open <= cs.max {
		cs.mu.Unlock()
		return true
	}
	cs.open--
	cs.wakeLocked()
	cs.mu.Unlock()
	return cs.acquire(quit)
}

// full writes the -v line saying that new connections wait, unless it
// was written less than a second ago.
func (cs *connSlots) full(bound int) {
	now := time.Now().UnixNano()
	last := cs.logged.Load()
	if now-last < int64(time.Second) || !cs.logged.CompareAndSwap(last, now) {
		return
	}
	cs.logs.Infof("<maxconnected> %d reached: new connections wait in the accept queue until one closes", bound)
}

// release gives a slot back.
func (cs *connSlots) release() {
	cs.mu.Lock()
	cs.open--
	cs.wakeLocked()
	cs.mu.Unlock()
}

// setMax sets the bound (0 or less: none).
func (cs *connSlots) setMax(n int) {
	cs.mu.Lock()
	cs.max = max(n, 0)
	cs.wakeLocked()
	cs.mu.Unlock()
}

func (cs *connSlots) wakeLocked() {
	if cs.wake != nil {
		close(cs.wake)
		cs.wake = nil
	}
}
