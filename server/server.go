// Package server runs ocsiproxy: it compiles a configuration with its
// backend pool (engine, pool), opens the <port>s and the admin listener
// and serves them (http1 for HTTP/1.x, plain or over TLS; net/http for
// HTTP/2 and the admin listener), and handles reloads, signals, privileges and shutdown
// (listeners.go, ops.go). The request handling itself is the engine's.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/admin"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/forward"
	"github.com/ocsiproxy/ocsiproxy/http1"
	"github.com/ocsiproxy/ocsiproxy/pool"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// newEnv returns the run-time environment of cfg: its backend clients,
// the pool p for proxied requests and p's net/http client for upgrades
// (which sends an upgrade to a group to a server its balancer picks).
func newEnv(cfg *xmlconf.Config, p *pool.Pool) *stage.Env {
	return &stage.Env{
		Transport:      p,
		Upgrade:        p.Upgrader(cfg.Timeout),
		BackendTimeout: cfg.Timeout,
	}
}

// compileTree compiles cfg with a backend pool configured by the <pool>
// and <upstream> children of its revproxy and routes <extension>
// elements, and reads its
// admin listener, reporting the problems of all together, each
// "file:line:col: message". At -vvv the pool's connection events go to
// logs (which may be nil).
func compileTree(cfg *xmlconf.Config, opts engine.Options, logs *accesslog.Logs) (*engine.Tree, *admin.Config, error) {
	var errs xmlconf.ErrorList
	pc := pool.ParseConfig(cfg, &errs)
	adm := admin.ParseConfig(cfg, &errs)
	p := pool.New(pc)
	if logs != nil && logs.Enabled(accesslog.Debug) {
		p.SetEventLog(func(format string, args ...any) { logs.Debugf(accesslog.Debug, format, args...) })
	}
	env := newEnv(cfg, p)
	env.Forwarded = forward.ParseConfig(cfg, &errs)
	env.PathPrefix = pc.PathPrefixFunc()
	tree, err := engine.Compile(cfg, env, opts)
	if err = errs.With(err); err != nil {
		p.Close()
		return nil, nil, err
	}
	return tree, adm, nil
}

// Server is a running ocsiproxy: its listeners and handler.
type Server struct {
	Handler *engine.Handler
	Logs    *accesslog.Logs
	// Metrics are served by the admin listener.
	Metrics *admin.Metrics
	// OnReady, when not nil, is called by Serve once every listener
	// serves, before readiness is notified to systemd (NOTIFY_SOCKET).
	OnReady func()
	// cfg is the configuration the server started with: a reload does
	// not change <logdir>, <user> and <group>.
	cfg   *xmlconf.Config
	opts  engine.Options
	stopc chan time.Duration
	// h1 serves the plain-HTTP ports.
	h1 *http1.Server
	// slots bounds the open client connections (<maxconnected>).
	slots connSlots
	// shutdownTimeout is the <shutdowntimeout> in force (a reload
	// changes it), a time.Duration.
	shutdownTimeout atomic.Int64
	// draining counts the listeners closed by a reload whose
	// connections are not all done (listeners.go).
	draining sync.WaitGroup

	// mu guards the listeners and serializes reloads.
	mu      sync.Mutex
	ports   []*port // in the order of the <port> elements in force
	adminLn *adminPort
	// adminCfg is the admin listener of the configuration in force.
	adminCfg *admin.Config
	tlsConf  *tls.Config
	// serving is set by Serve, stopped by Shutdown.
	serving, stopped bool
	// errc receives an error that ends Serve.
	errc chan error
	// loaded is the fingerprint of the configuration files when New
	// compiled them, from which Watch starts.
	loaded [sha256.Size]byte
}

// New compiles cfg and prepares a server for it, with the backend pool.
func New(cfg *xmlconf.Config, logs *accesslog.Logs, opts engine.Options) (*Server, error) {
	tree, adm, err := compileTree(cfg, opts, logs)
	if err != nil {
		return nil, err
	}
	s := &Server{Logs: logs, Metrics: admin.NewMetrics(), cfg: cfg, adminCfg: adm, opts: opts, stopc: make(chan time.Duration, 1), errc: make(chan error, 1)}
	var observers []engine.Observer
	if logs != nil {
		observers = append(observers, logs)
	}
	s.Handler = engine.NewHandler(tree, cfg, append(observers, s.Metrics)...)
	s.shutdownTimeout.Store(int64(cfg.ShutdownTimeout))
	s.h1 = http1.NewServer(s.Handler, connOptionsOf(cfg), logs.StdLogger())
	s.slots.logs = logs
	s.slots.setMax(cfg.MaxConnected)
	s.Metrics.Register(admin.PoolCollector(s.PoolStats))
	s.Metrics.Register(admin.GroupCollector(s.Upstreams))
	if p, ok := tree.Env().Transport.(*pool.Pool); ok {
		p.StartBackground()
	}
	if cfg.File != xmlconf.ReverseProxyFile {
		s.loaded = fingerprint(cfg.File, cfg.ExtconfDirs)
	}
	return s, nil
}

// Config returns the configuration serving now (for the admin API).
func (s *Server) Config() *xmlconf.Config { return s.Handler.Tree().Config() }

// PoolStats returns the metrics of the backend pool serving the current
// configuration, one entry per upstream (see [pool.Stats]).
func (s *Server) PoolStats() []pool.Stats {
	if p, ok := s.Handler.Tree().Env().Transport.(*pool.Pool); ok {
		return p.Stats()
	}
	return nil
}

// Upstreams returns the state of the groups of servers of the
// configuration serving now (see [pool.Pool.GroupStates]).
func (s *Server) Upstreams() []pool.GroupState {
	if p, ok := s.Handler.Tree().Env().Transport.(*pool.Pool); ok {
		return p.GroupStates()
	}
	return nil
}

// SetDrained drains a server of a group of the configuration serving now,
// or brings it back (see [pool.Pool.SetDrained]). A reload keeps the
// drain of a server that stays in its group; a drain asked during a
// reload waits for it, so that it is not lost between the state the new
// pool took over and the swap.
func (s *Server) SetDrained(group, server string, drained bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.Handler.Tree().Env().Transport.(*pool.Pool)
	if !ok {
		return fmt.Errorf("%w: %q", pool.ErrNoGroup, group)
	}
	return p.SetDrained(group, server, drained)
}

// Listen opens every <port> of the configuration, and the admin
// listener. It fails, closing what it opened, when one cannot be opened.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	pl, err := s.planListeners(s.cfg, s.adminCfg)
	if err != nil {
		return err
	}
	s.ports, s.adminLn, s.tlsConf = pl.ports, pl.adminLn, pl.tlsConf
	for i, p := range s.ports {
		p.https = s.cfg.Ports[i].HTTPS
	}
	return nil
}

// AdminAddr returns the address of the admin listener, nil when it is off.
func (s *Server) AdminAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adminLn == nil {
		return nil
	}
	return s.adminLn.Addr()
}

// Addrs returns the addresses listened on (useful with port 0), in the
// order of the <port> elements in force.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var a []net.Addr
	for _, p := range s.ports {
		a = append(a, p.Addr())
	}
	return a
}

// Serve serves on the listeners until ctx is done, then shuts down
// gracefully (see [Server.Shutdown]) with the <shutdowntimeout> of the
// configuration. HTTPS ports negotiate HTTP/2 or HTTP/1.1 by ALPN.
// Connections beyond <maxconnected> wait in the kernel's accept queue
// until one closes.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.serving = true
	s.logStart()
	for _, p := range s.ports {
		s.startPort(p)
	}
	if s.adminLn != nil {
		s.startAdmin()
	}
	s.mu.Unlock()
	if s.OnReady != nil {
		s.OnReady()
	}
	notify("READY=1")
	var serveErr error
	var timeout time.Duration
	select {
	case <-ctx.Done():
		timeout = s.ShutdownTimeout()
		s.Logs.Infof("shutting down (%v)", context.Cause(ctx))
	case serveErr = <-s.errc:
		timeout = s.ShutdownTimeout()
	case timeout = <-s.stopc:
	}
	s.Shutdown(timeout)
	s.Logs.Infof("stopped")
	return serveErr
}

// logStart writes the -v lines of a start: the options accepted with no
// effect and why, then the addresses listened on (s.mu held).
func (s *Server) logStart() {
	if !s.Logs.Enabled(accesslog.Verbose) {
		return
	}
	for _, n := range s.cfg.Notes {
		s.Logs.Infof("%s: <%s>: accepted; %s", n.Pos, n.Option, n.Reason)
	}
	for _, p := range s.ports {
		if p.https {
			s.Logs.Infof("listening on %s (HTTPS: HTTP/2 or HTTP/1.1)", p.Addr())
		} else {
			s.Logs.Infof("listening on %s", p.Addr())
		}
	}
	if s.adminLn != nil {
		s.Logs.Infof("admin listener on %s", s.adminLn.Addr())
	}
	if n := s.cfg.MaxConnected; n > 0 {
		s.Logs.Infof("<maxconnected> %d: client connections at most, across every port", n)
	}
}

// Stop makes Serve shut down with the given timeout instead of
// <shutdowntimeout> (negative: no bound), as the "shutdown" command does.
func (s *Server) Stop(timeout time.Duration) {
	select {
	case s.stopc <- timeout:
	default:
	}
}

// cutLogWait bounds the wait, after shutdown closed the connections
// left, for the handlers of the requests it cut to return and log them.
const cutLogWait = 2 * time.Second

// Shutdown stops accepting connections and lets the requests in flight
// finish for up to timeout (no bound when timeout is negative), then
// closes every connection and waits up to 2 seconds for the requests it
// cut to be logged (503 in access.log).
func (s *Server) Shutdown(timeout time.Duration) {
	notify("STOPPING=1")
	sctx := context.Background()
	if timeout >= 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(sctx, timeout)
		defer cancel()
	}
	s.mu.Lock()
	s.stopped = true
	var gens []*httpsGen
	for _, p := range s.ports {
		p.close()
		gens = append(gens, p.old...)
		if g := p.gen.Load(); g != nil {
			gens = append(gens, g)
		}
	}
	adminLn := s.adminLn
	s.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.h1.Shutdown(sctx); err != nil {
			s.h1.Close()
			ctx, cancel := context.WithTimeout(context.Background(), cutLogWait)
			defer cancel()
			s.h1.Wait(ctx)
		}
	})
	for _, g := range gens {
		wg.Go(func() { g.shutdown(sctx) })
	}
	if adminLn != nil {
		adminLn.Close()
		if adminLn.hs != nil {
			wg.Go(func() {
				if err := adminLn.hs.Shutdown(sctx); err != nil {
					adminLn.hs.Close()
				}
			})
		}
	}
	// The drains of listeners closed by reloads, bounded as well.
	wg.Go(func() {
		done := make(chan struct{})
		go func() { s.draining.Wait(); close(done) }()
		select {
		case <-done:
		case <-sctx.Done():
		}
	})
	wg.Wait()
	if c, ok := s.Handler.Tree().Env().Transport.(io.Closer); ok {
		c.Close()
	}
}

// slotConn is a client connection holding a connection slot, given
// back when it closes.
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// SyscallConn gives the HTTP/1 server the socket to wait on while idle.
func (c *slotConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("server: connection without a socket")
	}
	return sc.SyscallConn()
}

// PlainTCP tells the HTTP/1 server that writing to c is writing to its
// TCP socket (c adds nothing to Write), so that it may write to the
// socket itself.
func (c *slotConn) PlainTCP() bool {
	_, ok := c.Conn.(*net.TCPConn)
	return ok
}

// CloseWrite half-closes the connection when it can, so that the last
// answer on it is not lost to a reset (h1Conn.closeWrite).
func (c *slotConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// WriteBuffers writes the buffers of v with one writev when the
// connection is TCP (the HTTP/1 server's answer head and body together);
// a wrapper that only embeds the connection would hide that from
// net.Buffers.
func (c *slotConn) WriteBuffers(v *net.Buffers) (int64, error) { return v.WriteTo(c.Conn) }

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// ShutdownTimeout returns the <shutdowntimeout> of the configuration in
// force (the last one reloaded).
func (s *Server) ShutdownTimeout() time.Duration { return time.Duration(s.shutdownTimeout.Load()) }
