package http1

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testCert returns a self-signed certificate for 127.0.0.1 and the pool
// that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "http1 test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, roots
}

// startTLS serves h over TLS (ALPN h2 and http/1.1) with a Server, its
// bounds changed by opts, on a loopback port, as an HTTPS port does: the
// connections that choose h2 are sent on h2s. It returns the server, its
// address and the roots that trust it; the server is closed at the end
// of the test.
func startTLS(t *testing.T, h http.Handler, h2s chan<- *tls.Conn, opts ...func(*Options)) (*Server, string, *x509.CertPool) {
	t.Helper()
	cert, roots := testCert(t)
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{HeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, MaxHeaderBytes: 4096}
	for _, f := range opts {
		f(&o)
	}
	s := NewServer(h, o, nil)
	var h2 func(*tls.Conn)
	if h2s != nil {
		h2 = func(tc *tls.Conn) { h2s <- tc }
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			s.ServeTLS(tls.Server(nc, conf), h2, nil)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Wait(ctx)
	})
	return s, l.Addr().String(), roots
}

// coalescingConn is a client connection whose writes, while hold is set,
// are kept and sent in one write by flush: TLS records written one by
// one then reach the server in one segment.
type coalescingConn struct {
	net.Conn
	hold bool
	buf  []byte
}

func (c *coalescingConn) Write(p []byte) (int, error) {
	if c.hold {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *coalescingConn) flush() error {
	c.hold = false
	_, err := c.Conn.Write(c.buf)
	c.buf = nil
	return err
}

// dialTLS opens a TLS connection to addr offering protos by ALPN, its
// handshake made, bounded by 5 s.
func dialTLS(t *testing.T, addr string, roots *x509.CertPool, protos ...string) (*tls.Conn, *coalescingConn) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	cc := &coalescingConn{Conn: nc}
	tc := tls.Client(cc, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: protos})
	t.Cleanup(func() { tc.Close() })
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc, cc
}

// tlsEcho is echo for requests that must have arrived over TLS with the
// connection's state and local address; a request whose framing the
// tracker refused is answered 400 and its connection closed, as the
// engine does.
func tlsEcho(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || !r.TLS.HandshakeComplete || r.Context().Value(http.LocalAddrContextKey) == nil {
		http.Error(w, "not a TLS request", http.StatusInternalServerError)
		return
	}
	if err := w.(interface{ FramingError() error }).FramingError(); err != nil {
		w.Header().Set("Connection", "close")
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	echo(w, r)
}

// TestTLSExchanges sends requests over TLS, HTTP/1.1 chosen by ALPN or
// none offered, in rounds: the records of a round reach the server in one
// segment, and the connection waits idle between rounds. Each answer is
// checked as "status body" (a refusal by its status).
func TestTLSExchanges(t *testing.T) {
	_, addr, roots := startTLS(t, http.HandlerFunc(tlsEcho), nil)
	tests := []struct {
		name   string
		protos []string
		rounds [][]string
		want   [][]string
		closed bool // the server closes after the last answer
	}{
		{"one request", []string{"http/1.1"}, [][]string{{"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"}}, [][]string{{"200 GET /a "}}, false},
		{"no ALPN", nil, [][]string{{"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"}}, [][]string{{"200 GET /a "}}, false},
		{"keep-alive, idle between", []string{"http/1.1"},
			[][]string{{"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"}, {"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"}, {"GET /c HTTP/1.1\r\nHost: h\r\n\r\n"}},
			[][]string{{"200 GET /a "}, {"200 POST /b hi"}, {"200 GET /c "}}, false},
		{"pipelined in one record", []string{"http/1.1"},
			[][]string{{"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n"}},
			[][]string{{"200 GET /a ", "200 GET /b "}}, false},
		// The second record is read from the socket with the first: TLS
		// holds it while the connection would wait idle.
		{"pipelined in two records", []string{"http/1.1"},
			[][]string{{"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", "GET /b HTTP/1.1\r\nHost: h\r\n\r\n", "GET /c HTTP/1.1\r\nHost: h\r\n\r\n"}},
			[][]string{{"200 GET /a ", "200 GET /b ", "200 GET /c "}}, false},
		{"head split over records", []string{"http/1.1"},
			[][]string{{"GET /a HTTP/1.1\r\n", "Host: h\r\n", "\r\n"}}, [][]string{{"200 GET /a "}}, false},
		{"body in its own round", []string{"http/1.1"},
			[][]string{{"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n"}, {"body"}},
			[][]string{{}, {"200 POST /a body"}}, false},
		{"CL and TE", []string{"http/1.1"},
			[][]string{{"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"}},
			[][]string{{"400 "}}, true},
		{"TE in HTTP/1.0", []string{"http/1.1"},
			[][]string{{"POST /a HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"}},
			[][]string{{"400 "}}, true},
		{"two Host fields", []string{"http/1.1"},
			[][]string{{"GET /a HTTP/1.1\r\nHost: h\r\nHost: evil\r\n\r\n"}}, [][]string{{"400 "}}, true},
		{"Connection: close", []string{"http/1.1"},
			[][]string{{"GET /close HTTP/1.1\r\nHost: h\r\n\r\n"}}, [][]string{{"200 GET /close "}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, cc := dialTLS(t, addr, roots, tt.protos...)
			br := bufio.NewReader(tc)
			for i, round := range tt.rounds {
				if i > 0 {
					time.Sleep(50 * time.Millisecond) // the connection waits idle
				}
				cc.hold = true
				for _, rec := range round {
					if _, err := io.WriteString(tc, rec); err != nil {
						t.Fatal(err)
					}
				}
				if err := cc.flush(); err != nil {
					t.Fatal(err)
				}
				for _, want := range tt.want[i] {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatalf("round %d: %v, want %q", i, err, want)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if got := fmt.Sprintf("%d %s", resp.StatusCode, b); !strings.HasPrefix(got, want) {
						t.Errorf("round %d: answer %q, want %q", i, got, want)
					}
				}
			}
			// Whether the server keeps the connection: a closed one ends
			// (TLS close_notify), a kept one answers another request.
			io.WriteString(tc, "GET /more HTTP/1.1\r\nHost: h\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if tt.closed {
				if err == nil {
					t.Errorf("the connection was kept (answer %d)", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("the connection was not kept: %v", err)
			}
			resp.Body.Close()
		})
	}
}

// TestTLSExpectContinue checks the interim answer over TLS.
func TestTLSExpectContinue(t *testing.T) {
	_, addr, roots := startTLS(t, http.HandlerFunc(tlsEcho), nil)
	tc, _ := dialTLS(t, addr, roots, "http/1.1")
	expectContinue(t, tc)
}

// TestTLSClientGone checks that the watch notices a TLS client going away
// while its request runs, with a close_notify or with the socket closed.
func TestTLSClientGone(t *testing.T) {
	cancelled := make(chan bool, 1)
	_, addr, roots := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled <- true
		case <-time.After(5 * time.Second):
			cancelled <- false
		}
	}), nil)
	for _, how := range []string{"close_notify", "socket closed"} {
		t.Run(how, func(t *testing.T) {
			tc, cc := dialTLS(t, addr, roots, "http/1.1")
			io.WriteString(tc, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
			time.Sleep(100 * time.Millisecond)
			if how == "close_notify" {
				tc.Close()
			} else {
				cc.Conn.Close()
			}
			if !<-cancelled {
				t.Fatal("the handler's context was not cancelled within 5 s of the client leaving")
			}
		})
	}
}

// TestTLSWatchKeepsPipelinedRequest checks that a request arriving over
// TLS while the previous one runs long (the connection is watched, a TLS
// read interrupted by a deadline) is answered.
func TestTLSWatchKeepsPipelinedRequest(t *testing.T) {
	_, addr, roots := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(3 * watchDelay)
		}
		tlsEcho(w, r)
	}), nil)
	tc, _ := dialTLS(t, addr, roots, "http/1.1")
	io.WriteString(tc, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(2 * watchDelay) // the watch is reading now
	io.WriteString(tc, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(tc)
	for _, want := range []string{"GET /slow ", "GET /next ", "GET /after "} {
		if want == "GET /after " {
			// The watch's interrupted read left TLS usable.
			time.Sleep(3 * watchDelay)
			io.WriteString(tc, "GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != want {
			t.Errorf("body %q, want %q", b, want)
		}
	}
}

// TestTLSHijack checks a protocol switch over TLS: the handler gets the
// *tls.Conn with the bytes the client sent after its head, and its
// CloseWrite (a close_notify) ends the client's stream.
func TestTLSHijack(t *testing.T) {
	_, addr, roots := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		if _, ok := conn.(*tls.Conn); !ok {
			t.Errorf("hijacked %T, want *tls.Conn", conn)
		}
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		io.WriteString(conn, "echo: "+line)
		conn.(interface{ CloseWrite() error }).CloseWrite()
	}), nil)
	tc, cc := dialTLS(t, addr, roots, "http/1.1")
	cc.hold = true
	io.WriteString(tc, "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	io.WriteString(tc, "early\n")
	cc.flush()
	br := bufio.NewReader(tc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("answer %v %v, want 101", resp, err)
	}
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "echo: early\n" {
		t.Errorf("after the switch %q %v, want \"echo: early\\n\" and the end", rest, err)
	}
}

// TestTLSHandshakes checks what happens before HTTP: a client speaking
// plain HTTP is told so, a silent one is cut after the head timeout, one
// choosing h2 is handed over.
func TestTLSHandshakes(t *testing.T) {
	h2s := make(chan *tls.Conn, 1)
	_, addr, roots := startTLS(t, http.HandlerFunc(tlsEcho), h2s, func(o *Options) { o.HeaderTimeout = 300 * time.Millisecond })
	t.Run("plain HTTP", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		b, _ := io.ReadAll(c)
		if !strings.HasPrefix(string(b), "HTTP/1.0 400 Bad Request\r\n") {
			t.Errorf("answer %q, want net/http's 400", b)
		}
	})
	t.Run("silent client", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err = c.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("the handshake was not bounded: still open after %v", time.Since(start))
		}
	})
	t.Run("h2", func(t *testing.T) {
		tc, _ := dialTLS(t, addr, roots, "h2", "http/1.1")
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Fatalf("ALPN chose %q, want h2", p)
		}
		select {
		case sc := <-h2s:
			if !sc.ConnectionState().HandshakeComplete {
				t.Error("handed over before its handshake")
			}
			sc.Close()
		case <-time.After(5 * time.Second):
			t.Fatal("the h2 connection was not handed over")
		}
	})
}

// TestTLSShutdown checks that Shutdown closes idle TLS connections and
// those in their handshake at once.
func TestTLSShutdown(t *testing.T) {
	s, addr, roots := startTLS(t, http.HandlerFunc(tlsEcho), nil)
	tc, _ := dialTLS(t, addr, roots, "http/1.1")
	io.WriteString(tc, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(tc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	time.Sleep(50 * time.Millisecond) // both accepted and waiting
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v, want the idle and handshaking connections closed at once", err)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("the idle TLS connection is still open")
	}
	silent.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Error("the connection in its handshake is still open")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the connection in its handshake is still open")
	}
}
