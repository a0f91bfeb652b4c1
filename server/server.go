package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ocsiproxy/ocsiproxy/pipeline"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// NewTransport returns the keep-alive backend client: connections are
// reused per backend, https backends are verified against the system
// roots (SSL_CERT_FILE and SSL_CERT_DIR are honoured), nothing is
// compressed or proxied behind the operator's back, and the wait for a
// response head is bounded by timeout (0: no bound).
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

// Server is a running ocsiproxy: its listeners and handler.
type Server struct {
	Handler   *Handler
	Logs      *Logs
	cfg       *xmlconf.Config
	servers   []*http.Server
	listeners []net.Listener
}

// New compiles cfg and prepares a server for it, with the keep-alive
// backend client.
func New(cfg *xmlconf.Config, logs *Logs, opts Options) (*Server, error) {
	env := &pipeline.Env{Transport: NewTransport(cfg.Timeout), BackendTimeout: cfg.Timeout}
	tree, err := Compile(cfg, env, opts)
	if err != nil {
		return nil, err
	}
	return &Server{Handler: NewHandler(tree, cfg, logs), Logs: logs, cfg: cfg}, nil
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
		if p.HTTPS {
			if tlsConf == nil {
				if tlsConf, err = s.tlsConfig(p.Pos); err != nil {
					l.Close()
					s.closeListeners()
					return err
				}
			}
			l = tls.NewListener(l, tlsConf)
		}
		s.listeners = append(s.listeners, l)
	}
	return nil
}

func (s *Server) tlsConfig(pos xmlconf.Pos) (*tls.Config, error) {
	if s.cfg.SSL == nil {
		return nil, fmt.Errorf("server: %s: protocol=\"HTTPS\" needs <ssl><certificate> and <privatekey>", pos)
	}
	cert, err := tls.LoadX509KeyPair(s.cfg.SSL.Certificate, s.cfg.SSL.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("server: %s: <ssl>: %w", s.cfg.SSL.Pos, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}, nil
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		l.Close()
	}
	s.listeners = nil
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
// gracefully: in-flight requests get <shutdowntimeout> to finish (no
// bound when it is "notimeout").
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, len(s.listeners))
	for _, l := range s.listeners {
		hs := &http.Server{
			Handler:           s.Handler,
			ReadHeaderTimeout: s.cfg.Timeout,
			IdleTimeout:       s.cfg.KeepAliveTimeout,
			MaxHeaderBytes:    int(s.cfg.NetBufferSize),
			ErrorLog:          nil,
		}
		s.servers = append(s.servers, hs)
		go func() {
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	sctx := context.Background()
	if d := s.cfg.ShutdownTimeout; d >= 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(sctx, d)
		defer cancel()
	}
	for _, hs := range s.servers {
		if err := hs.Shutdown(sctx); err != nil {
			hs.Close()
		}
	}
	return serveErr
}
