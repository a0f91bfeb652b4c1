package http1

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/nbio"
)

// HTTP/1.x over TLS. An HTTPS port hands its connections to ServeTLS,
// which makes the handshake (ALPN "h2" and "http/1.1") and serves the
// connections that did not choose HTTP/2 with the same loop, parser,
// framing tracker and bounds as plain ones. An idle TLS connection holds
// no read buffer either: it waits for its socket to become readable
// (readable, which reads nothing), and only then reads through TLS, once
// what TLS may already hold (a record read with the previous one) has
// been served (probeTLS, parkTLS).

// ServeTLS serves the TLS connection tc once its handshake is done, in a
// goroutine of its own, the handshake bounded by the head timeout in
// force: a connection that negotiated "h2" by ALPN is handed to h2
// (closed when h2 is nil); any other is served as HTTP/1.x, as
// [Server.ServeConn] serves a plain one, with requests whose TLS field is
// the connection's state. retired is as for ServeConn; a connection still
// in its handshake counts as idle for shutdowns and drains.
func (s *Server) ServeTLS(tc *tls.Conn, h2 func(*tls.Conn), retired *atomic.Bool) {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		tc.Close()
		return
	}
	if s.handshakes == nil {
		s.handshakes = make(map[*tls.Conn]*atomic.Bool)
	}
	s.handshakes[tc] = retired
	s.mu.Unlock()
	go s.handshake(tc, h2, retired)
}

// handshake makes tc's handshake, then serves it (ServeTLS).
func (s *Server) handshake(tc *tls.Conn, h2 func(*tls.Conn), retired *atomic.Bool) {
	o := s.opts.Load()
	if o.HeaderTimeout > 0 {
		tc.SetDeadline(time.Now().Add(o.HeaderTimeout))
	}
	err := tc.Handshake()
	if err == nil && o.HeaderTimeout > 0 {
		tc.SetDeadline(time.Time{})
	}
	s.mu.Lock()
	delete(s.handshakes, tc)
	s.mu.Unlock()
	if err != nil {
		// As net/http's server: a client speaking plain HTTP to the port
		// is told so, and the failure is logged.
		reason := err.Error()
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && recordLooksLikeHTTP(re.RecordHeader) {
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
			reason = "client sent an HTTP request to an HTTPS server"
		}
		s.logf("http: TLS handshake error from %s: %v", tc.RemoteAddr(), reason)
		tc.Close()
		return
	}
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		if h2 == nil {
			tc.Close()
			return
		}
		h2(tc)
		return
	}
	s.ServeConn(tc, retired)
}

// recordLooksLikeHTTP reports whether the first bytes of what should
// have been a TLS record look like a plain HTTP request (net/http's test).
func recordLooksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// probeTLS is wait's first step on a TLS connection: TLS may hold bytes
// read from the socket with the last request (a record not yet
// decrypted, or one not wholly read; often, for the first request, the
// record sent with the end of the handshake), which the socket's
// readability would never announce. A read with a deadline in the past
// returns them, or fails without touching the socket (a read timeout
// leaves a tls.Conn usable). held reports whether bytes are now in c.br;
// when none are, c.br is given back.
func (c *h1Conn) probeTLS() (held bool, err error) {
	c.br = h1Readers.Get().(*bufio.Reader)
	c.br.Reset(&c.in)
	c.nc.SetReadDeadline(aLongTimeAgo)
	_, err = c.br.Peek(1)
	c.nc.SetReadDeadline(c.rdl)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.releaseReader()
		return false, nil
	}
	return false, err
}

// parkTLS waits, holding no buffer, until the socket beneath an idle TLS
// connection is readable, then reads the next bytes through TLS and
// serves them (resume).
func (c *h1Conn) parkTLS() {
	err := c.rc.Read(c.readableFn)
	if err == nil {
		c.br = h1Readers.Get().(*bufio.Reader)
		c.br.Reset(&c.in)
		_, err = c.br.Peek(1)
	}
	c.resume(err)
}

// readable is the RawConn.Read callback of parkTLS: it reports whether
// the socket has bytes or an end to read, reading nothing (MSG_PEEK).
func (c *h1Conn) readable(fd uintptr) bool {
	_, err := nbio.Peek(int(fd))
	return err != syscall.EAGAIN
}

// rawConnOf returns the socket beneath nc, a *tls.Conn or a plain
// connection, when there is one.
func rawConnOf(nc net.Conn) syscall.RawConn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			return rc
		}
	}
	return nil
}
