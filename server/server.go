package server

import (
	"context"
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

	"github.com/ocsiproxy/ocsiproxy/forward"
	"github.com/ocsiproxy/ocsiproxy/pipeline"
	"github.com/ocsiproxy/ocsiproxy/pool"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// NewTransport returns a net/http keep-alive client: connections are
// reused per backend, https backends are verified against the system
// roots (SSL_CERT_FILE and SSL_CERT_DIR are honoured), nothing is
// compressed or proxied behind the operator's back, and the wait for a
// response head is bounded by timeout (0: no bound). It carries protocol
// upgrades (WebSocket); proxied requests go through the backend pool.
func NewTransport(timeout time.Duration) *http.Transport {
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

// newEnv returns the run-time environment of cfg: its backend clients,
// the pool p for proxied requests and a net/http client for upgrades.
func newEnv(cfg *xmlconf.Config, p *pool.Pool) *pipeline.Env {
	return &pipeline.Env{
		Transport:      p,
		Upgrade:        NewTransport(cfg.Timeout),
		BackendTimeout: cfg.Timeout,
	}
}

// compileTree compiles cfg with a backend pool configured by the <pool>
// and <upstream> children of its revproxy <extension>, reporting the
// problems of both together, each "file:line:col: message". At Debug the
// pool's connection events go to logs (which may be nil).
func compileTree(cfg *xmlconf.Config, opts Options, logs *Logs) (*Tree, error) {
	var errs xmlconf.ErrorList
	pc := pool.ParseConfig(cfg, &errs)
	p := pool.New(pc)
	if logs != nil && logs.Enabled(Debug) {
		p.SetEventLog(func(format string, args ...any) { logs.Debugf(Debug, format, args...) })
	}
	env := newEnv(cfg, p)
	env.Forwarded = forward.ParseConfig(cfg, &errs)
	tree, err := Compile(cfg, env, opts)
	if err = joinConfigErrors(errs, err); err != nil {
		p.Close()
		return nil, err
	}
	return tree, nil
}

// joinConfigErrors merges the pool's configuration problems with the
// error of Compile.
func joinConfigErrors(errs xmlconf.ErrorList, err error) error {
	var el xmlconf.ErrorList
	switch {
	case err == nil:
		return errs.Err()
	case len(errs) == 0:
		return err
	case errors.As(err, &el):
		return append(errs, el...).Err()
	}
	return errors.Join(errs.Err(), err)
}

// Server is a running ocsiproxy: its listeners and handler.
type Server struct {
	Handler *Handler
	Logs    *Logs
	// Metrics are served by the admin listener.
	Metrics   *Metrics
	admin     net.Listener
	cfg       *xmlconf.Config
	opts      Options
	tlsConf   *tls.Config
	stopc     chan time.Duration
	servers   []*http.Server
	h1        []*h1Server
	listeners []listener
	// connSlots bounds the open client connections (<maxconnected>).
	connSlots chan struct{}
	// fullLogged is when the -v line "<maxconnected> reached" was last
	// written (Unix nanoseconds).
	fullLogged atomic.Int64
	// shutdownTimeout is the <shutdowntimeout> in force (a reload
	// changes it), a time.Duration.
	shutdownTimeout atomic.Int64
}

// listener is one opened <port>.
type listener struct {
	net.Listener
	https bool
}

// New compiles cfg and prepares a server for it, with the backend pool.
func New(cfg *xmlconf.Config, logs *Logs, opts Options) (*Server, error) {
	tree, err := compileTree(cfg, opts, logs)
	if err != nil {
		return nil, err
	}
	s := &Server{Handler: NewHandler(tree, cfg, logs), Logs: logs, Metrics: NewMetrics(), cfg: cfg, opts: opts, stopc: make(chan time.Duration, 1)}
	s.shutdownTimeout.Store(int64(cfg.ShutdownTimeout))
	s.Handler.metrics = s.Metrics
	s.Metrics.Register(poolCollector{s})
	return s, nil
}

// PoolStats returns the metrics of the backend pool serving the current
// configuration, one entry per upstream (see [pool.Stats]).
func (s *Server) PoolStats() []pool.Stats {
	if p, ok := s.Handler.Tree().env.Transport.(*pool.Pool); ok {
		return p.Stats()
	}
	return nil
}

// Listen opens every <port> of the configuration. It fails, closing what
// it opened, when one cannot be opened.
func (s *Server) Listen() error {
	if len(s.cfg.Ports) == 0 {
		return errors.New("server: no <port> in the configuration")
	}
	var tlsConf *tls.Config
	for _, p := range s.cfg.Ports {
		l, err := net.Listen("tcp", p.Addr)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("server: %s: listening on %s: %w", p.Pos, p.Addr, err)
		}
		if p.HTTPS && tlsConf == nil {
			if tlsConf, err = s.tlsConfig(p.Pos); err != nil {
				l.Close()
				s.closeListeners()
				return err
			}
		}
		s.listeners = append(s.listeners, listener{Listener: l, https: p.HTTPS})
	}
	if a := s.Handler.Tree().admin; a != nil {
		l, err := net.Listen("tcp", a.Addr)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("server: %s: admin listener on %s: %w", a.Pos, a.Addr, err)
		}
		s.admin = l
	}
	return nil
}

// AdminAddr returns the address of the admin listener, nil when it is off.
func (s *Server) AdminAddr() net.Addr {
	if s.admin == nil {
		return nil
	}
	return s.admin.Addr()
}

func (s *Server) tlsConfig(pos xmlconf.Pos) (*tls.Config, error) {
	if s.cfg.SSL == nil {
		return nil, fmt.Errorf("server: %s: protocol=\"HTTPS\" needs <ssl><certificate> and <privatekey>", pos)
	}
	cert, err := tls.LoadX509KeyPair(s.cfg.SSL.Certificate, s.cfg.SSL.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("server: %s: <ssl>: %w", s.cfg.SSL.Pos, err)
	}
	s.tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return s.tlsConf, nil
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		l.Close()
	}
	s.listeners = nil
	if s.admin != nil {
		s.admin.Close()
		s.admin = nil
	}
}

// Addrs returns the addresses actually listened on (useful with port 0).
func (s *Server) Addrs() []net.Addr {
	var a []net.Addr
	for _, l := range s.listeners {
		a = append(a, l.Addr())
	}
	return a
}

// Serve serves on the listeners until ctx is done, then shuts down
// gracefully (see [Server.Shutdown]) with the <shutdowntimeout> of the
// configuration. HTTPS ports negotiate HTTP/2 or HTTP/1.1 by ALPN.
// Connections beyond <maxconnected> wait in the kernel's accept queue
// until one closes.
func (s *Server) Serve(ctx context.Context) error {
	s.logStart()
	errc := make(chan error, len(s.listeners))
	if s.cfg.MaxConnected > 0 {
		s.connSlots = make(chan struct{}, s.cfg.MaxConnected)
	}
	for _, l := range s.listeners {
		var nl net.Listener = l.Listener
		if s.connSlots != nil {
			nl = &limitListener{Listener: nl, slots: s.connSlots, logs: s.Logs, logged: &s.fullLogged}
		}
		if !l.https {
			maxHeader := int(s.cfg.NetBufferSize)
			if maxHeader <= 0 {
				maxHeader = http.DefaultMaxHeaderBytes
			}
			h := &h1Server{
				handler:        s.Handler,
				headerTimeout:  s.cfg.Timeout,
				idleTimeout:    s.cfg.KeepAliveTimeout,
				writeTimeout:   s.cfg.Timeout,
				maxHeaderBytes: maxHeader,
				errorLog:       s.Logs.stdLogger(),
			}
			s.h1 = append(s.h1, h)
			go func() {
				if err := h.Serve(nl); err != nil && !errors.Is(err, http.ErrServerClosed) {
					errc <- err
				}
			}()
			continue
		}
		if s.cfg.Timeout > 0 {
			nl = &sendTimeoutListener{Listener: nl, timeout: s.cfg.Timeout}
		}
		hs := &http.Server{
			Handler:           s.Handler,
			ReadHeaderTimeout: s.cfg.Timeout,
			IdleTimeout:       s.cfg.KeepAliveTimeout,
			MaxHeaderBytes:    int(s.cfg.NetBufferSize),
			ErrorLog:          s.Logs.stdLogger(),
			// "OPTIONS *" goes to the handler too, so that every request
			// consumes its framing verdict (framing.go).
			DisableGeneralOptionsHandler: true,
		}
		// Each server gets its own copy: enabling HTTP/2 edits it.
		hs.TLSConfig = s.tlsConf.Clone()
		s.servers = append(s.servers, hs)
		go func() {
			if err := hs.ServeTLS(nl, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	if s.admin != nil {
		hs := &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: s.Logs.stdLogger()}
		s.servers = append(s.servers, hs)
		go hs.Serve(s.admin)
	}
	notify("READY=1")
	var serveErr error
	var timeout time.Duration
	select {
	case <-ctx.Done():
		timeout = s.ShutdownTimeout()
		s.Logs.Infof("shutting down (%v)", context.Cause(ctx))
	case serveErr = <-errc:
		timeout = s.ShutdownTimeout()
	case timeout = <-s.stopc:
	}
	s.Shutdown(timeout)
	s.Logs.Infof("stopped")
	return serveErr
}

// logStart writes the -v lines of a start: the options accepted with no
// effect and why, then the addresses listened on.
func (s *Server) logStart() {
	if !s.Logs.Enabled(Verbose) {
		return
	}
	for _, n := range s.cfg.Notes {
		s.Logs.Infof("%s: <%s>: accepted; %s", n.Pos, n.Option, n.Reason)
	}
	for _, l := range s.listeners {
		if l.https {
			s.Logs.Infof("listening on %s (HTTPS: HTTP/2 or HTTP/1.1)", l.Addr())
		} else {
			s.Logs.Infof("listening on %s", l.Addr())
		}
	}
	if s.admin != nil {
		s.Logs.Infof("admin listener on %s", s.admin.Addr())
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

// Shutdown stops accepting connections and lets the requests in flight
// finish for up to timeout (no bound when timeout is negative), then
// closes every connection.
func (s *Server) Shutdown(timeout time.Duration) {
	notify("STOPPING=1")
	sctx := context.Background()
	if timeout >= 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(sctx, timeout)
		defer cancel()
	}
	var wg sync.WaitGroup
	for _, h := range s.h1 {
		wg.Go(func() {
			if err := h.Shutdown(sctx); err != nil {
				h.Close()
			}
		})
	}
	for _, hs := range s.servers {
		wg.Go(func() {
			if err := hs.Shutdown(sctx); err != nil {
				hs.Close()
			}
		})
	}
	wg.Wait()
	if c, ok := s.Handler.Tree().env.Transport.(io.Closer); ok {
		c.Close()
	}
}

// limitListener holds an accepted connection until one of the shared
// slots is free, so that at most cap(slots) client connections are open
// across every listener. At Verbose it says when every slot is taken, at
// most once a second.
type limitListener struct {
	net.Listener
	slots  chan struct{}
	logs   *Logs
	logged *atomic.Int64 // when that was last said, shared by the listeners
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		if l.logs != nil && l.logs.Enabled(Verbose) {
			l.full()
		}
		l.slots <- struct{}{}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &slotConn{Conn: c, release: func() { <-l.slots }}, nil
}

// full writes the -v line saying that new connections wait, unless it
// was written less than a second ago.
func (l *limitListener) full() {
	now := time.Now().UnixNano()
	last := l.logged.Load()
	if now-last < int64(time.Second) || !l.logged.CompareAndSwap(last, now) {
		return
	}
	l.logs.Infof("<maxconnected> %d reached: new connections wait in the accept queue until one closes", cap(l.slots))
}

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

// CloseWrite half-closes the connection when it can, so that the last
// answer on it is not lost to a reset (h1Conn.closeWrite).
func (c *slotConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// ShutdownTimeout returns the <shutdowntimeout> of the configuration in
// force (the last one reloaded).
func (s *Server) ShutdownTimeout() time.Duration { return time.Duration(s.shutdownTimeout.Load()) }
