package difftest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// backendReq is what the recording backend received: one request, exactly.
type backendReq struct {
	// Listener is "main" (127.0.0.1) or "decoy" (decoyIP), same port.
	Listener string
	TLS      bool
	Method   string
	Target   string
	Proto    string
	Fields   []field
	Body     []byte
	Framing  framing
	Trailers []field
	// ConnReq is the index of the request on its connection (0 = first).
	ConnReq int
	// Resp is the header block the backend answered with (nil: none).
	Resp []field
	Err  string
}

// decoyIP is a second loopback address the backend also listens on, on the
// same port: a proxy that connects to the wrong host (keephost) lands there.
const decoyIP = "127.0.0.3"

// backend is a raw TCP server on loopback that records every request and
// answers the canned response named by the request's X-Want header. A
// connection whose first byte is a TLS handshake record is served over TLS
// (self-signed certificate for 127.0.0.1), any other over plain HTTP, so one
// port serves both http:// and https:// dests.
type backend struct {
	Port  int
	decoy bool // whether decoyIP is served too
	// CertPEM is the backend's self-signed certificate, for SSL_CERT_FILE.
	CertPEM []byte

	tlsConf *tls.Config
	lns     []net.Listener

	mu    sync.Mutex
	reqs  []*backendReq
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// startBackend starts the backend on 127.0.0.1 (and decoyIP when possible);
// t.Cleanup stops it.
func startBackend(t *testing.T) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("backend: %v", err)
	}
	b := &backend{Port: ln.Addr().(*net.TCPAddr).Port, conns: map[net.Conn]bool{}}
	b.tlsConf, b.CertPEM = selfSigned(t)
	b.lns = append(b.lns, ln)
	if dln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", decoyIP, b.Port)); err == nil {
		b.lns = append(b.lns, dln)
		b.decoy = true
	}
	for i, l := range b.lns {
		name := "main"
		if i == 1 {
			name = "decoy"
		}
		b.wg.Add(1)
		go b.accept(l, name)
	}
	t.Cleanup(b.close)
	return b
}

func (b *backend) close() {
	for _, l := range b.lns {
		l.Close()
	}
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// take returns and forgets the requests recorded so far.
func (b *backend) take() []*backendReq {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.reqs
	b.reqs = nil
	return r
}

func (b *backend) accept(l net.Listener, name string) {
	defer b.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns[c] = true
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer func() {
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
				c.Close()
			}()
			b.serve(c, name)
		}()
	}
}

// backendIdle is how long the backend keeps an idle connection.
const backendIdle = 10 * time.Second

func (b *backend) serve(c net.Conn, name string) {
	_ = c.SetDeadline(time.Now().Add(backendIdle))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		return
	}
	isTLS := first[0] == 0x16
	var conn net.Conn = &peekedConn{Conn: c, r: br}
	if isTLS {
		tc := tls.Server(conn, b.tlsConf)
		if err := tc.Handshake(); err != nil {
			b.record(&backendReq{Listener: name, TLS: true, Err: "tls handshake: " + err.Error()})
			return
		}
		conn = tc
		br = bufio.NewReader(tc)
	}
	for n := 0; ; n++ {
		_ = c.SetDeadline(time.Now().Add(backendIdle))
		start, fields, err := readHead(br)
		if err != nil {
			if start != "" || len(fields) > 0 {
				b.record(&backendReq{Listener: name, TLS: isTLS, ConnReq: n, Err: "head: " + err.Error()})
			}
			return
		}
		r := &backendReq{Listener: name, TLS: isTLS, Fields: fields, ConnReq: n}
		parts := strings.SplitN(start, " ", 3)
		if len(parts) != 3 {
			r.Err = fmt.Sprintf("malformed request line %q", start)
			b.record(r)
			return
		}
		r.Method, r.Target, r.Proto = parts[0], parts[1], parts[2]
		want, _ := headerValue(fields, "X-Want")
		if v, _ := headerValue(fields, "Expect"); strings.EqualFold(v, "100-continue") && want != "no-100" {
			_, _ = conn.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
		}
		r.Body, r.Framing, r.Trailers, err = readBody(br, fields, false)
		if err != nil {
			r.Err = "body: " + err.Error()
			b.record(r)
			return
		}
		head, body, closeAfter := canned(want, r.Method, b.Port)
		r.Resp = head
		b.record(r)
		if head == nil { // "reset": close without an answer
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			return
		}
		if want == "slow" {
			time.Sleep(3 * time.Second)
		}
		var out strings.Builder
		out.WriteString("HTTP/1.1 ")
		for i, f := range head {
			if i == 0 { // the status pseudo-field
				out.WriteString(f.Value + "\r\n")
				continue
			}
			out.WriteString(f.Name + ": " + f.Value + "\r\n")
		}
		out.WriteString("\r\n")
		out.Write(body)
		if _, err := conn.Write([]byte(out.String())); err != nil {
			return
		}
		connHdr, _ := headerValue(fields, "Connection")
		if closeAfter || hasToken(connHdr, "close") || (r.Proto == "HTTP/1.0" && !hasToken(connHdr, "keep-alive")) {
			return
		}
	}
}

func (b *backend) record(r *backendReq) {
	b.mu.Lock()
	b.reqs = append(b.reqs, r)
	b.mu.Unlock()
}

// hasToken reports whether the comma-separated list v holds tok.
func hasToken(v, tok string) bool {
	for _, p := range strings.Split(v, ",") {
		if strings.EqualFold(strings.TrimSpace(p), tok) {
			return true
		}
	}
	return false
}

// tunnelBytes is what the backend sends after a 101 answer.
const tunnelBytes = "bytes through the tunnel\n"

// backendBody is the body of the default response.
const backendBody = "hello from the backend\n"

// canned returns the response the backend gives for X-Want: want. The first
// field of head is the status line ("200 OK"); the caller writes the rest in
// order. A nil head means: reset the connection without answering.
func canned(want, method string, port int) (head []field, body []byte, closeAfter bool) {
	status := "200 OK"
	extra := []field{}
	body = []byte(backendBody)
	chunked := false
	switch {
	case want == "" || want == "plain" || want == "no-100":
	case want == "reset":
		return nil, nil, true
	case want == "upgrade":
		// A WebSocket handshake answer, then bytes of the new protocol; the
		// connection is then closed.
		return []field{{"", "101 Switching Protocols"}, {"X-Recorder", "1"}, {"Upgrade", "websocket"},
			{"Connection", "Upgrade"}, {"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}}, []byte(tunnelBytes), true
	case want == "cookies":
		extra = []field{{"Set-Cookie", "a=1; Path=/"}, {"Set-Cookie", "b=2; Path=/"}, {"X-Multi", "one"}, {"X-Multi", "two"}}
	case want == "location":
		status = "302 Found"
		extra = []field{{"Location", fmt.Sprintf("http://127.0.0.1:%d/inner/page?x=1", port)}}
	case want == "server":
		extra = []field{{"Server", "backend/1.0"}, {"Date", "Mon, 02 Jan 2006 15:04:05 GMT"}}
	case want == "hop":
		extra = []field{{"Connection", "X-Hop-Resp, Keep-Alive"}, {"X-Hop-Resp", "secret"}, {"Keep-Alive", "timeout=5"},
			{"Proxy-Authenticate", "Basic realm=x"}, {"Upgrade", "foo/1"}, {"X-After", "kept"}}
	case want == "chunked":
		chunked = true
	case want == "empty":
		body = nil
	case want == "nocontent":
		status = "204 No Content"
		body = nil
	case want == "big":
		body = []byte(strings.Repeat("0123456789abcdef", 8192))
	case want == "close":
		// No length: the body ends when the connection closes.
		head = append([]field{{"", status}}, field{"X-Recorder", "1"}, field{"Content-Type", "text/plain"}, field{"Connection", "close"})
		return head, body, true
	case strings.HasPrefix(want, "status-"):
		code := strings.TrimPrefix(want, "status-")
		status = code + " Canned"
		extra = []field{{"X-Status", code}}
	}
	head = append([]field{{"", status}}, field{"X-Recorder", "1"}, field{"Content-Type", "text/plain"})
	head = append(head, extra...)
	noBody := strings.HasPrefix(status, "204 ") || strings.HasPrefix(status, "304 ")
	if method == "HEAD" || noBody {
		if !noBody {
			head = append(head, field{"Content-Length", fmt.Sprint(len(body))})
		}
		return head, nil, false
	}
	if chunked {
		head = append(head, field{"Transfer-Encoding", "chunked"})
		var sb strings.Builder
		for _, part := range []string{"hello ", "from the ", "backend\n"} {
			fmt.Fprintf(&sb, "%x\r\n%s\r\n", len(part), part)
		}
		sb.WriteString("0\r\n\r\n")
		return head, []byte(sb.String()), false
	}
	head = append(head, field{"Content-Length", fmt.Sprint(len(body))})
	return head, body, false
}

// peekedConn is a net.Conn whose reads go through the bufio.Reader that
// already peeked at the first byte.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// selfSigned makes a throw-away CA and a certificate it signs for 127.0.0.1
// and localhost; it returns the server config and the CA in PEM.
func selfSigned(t *testing.T) (*tls.Config, []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "difftest CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost", "127.0.0.1"}, // OpenSSL checks the name as a DNS name
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der, caDER}, PrivateKey: key}}}
	return conf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}
