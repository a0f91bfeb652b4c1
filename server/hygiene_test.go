package server

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRequestHygiene sends request-smuggling and malformed shapes on raw
// sockets. Each must be refused (4xx/5xx, want) or handled as exactly the
// requests a correct parser sees; in no case may the backend receive a
// request the client did not send as a whole, in particular a second one
// hidden in the first's body. The cases are sent on a plain port and,
// over TLS with HTTP/1.1 chosen by ALPN, on an HTTPS port: both are
// served by the same parser and framing tracker.
func TestRequestHygiene(t *testing.T) {
	b := newBackend(t, nil)
	dir := t.TempDir()
	certFile, keyFile, roots := selfSigned(t, dir)
	// Through Serve: the framing tracker sits on the real listener.
	r := start(t, dir, `<port>127.0.0.1:0</port><port protocol="HTTPS">127.0.0.1:0</port>
<ssl><certificate>`+certFile+`</certificate><privatekey>`+keyFile+`</privatekey></ssl>
<host><revproxy suburl="(.*)" dest="`+b.URL+`/\1"/></host>`)
	ports := []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"plain", func() (net.Conn, error) { return net.DialTimeout("tcp", r.addr(0), 5*time.Second) }},
		{"TLS", func() (net.Conn, error) { return dialTLS(r.addr(1), roots) }},
	}
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
	tests := []struct {
		name string
		req  string
		// want is the status of the first response; backend is how many
		// requests the backend may receive (the smuggled one never).
		want    int
		backend int
	}{
		// RFC 9112 6.3: Content-Length with Transfer-Encoding.
		{"CL and TE chunked", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400, 0},
		{"TE and CL chunked", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + smuggled, 400, 0},
		// RFC 9112 6.3 item 5: differing or malformed Content-Length.
		{"two different CL", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nbody" + smuggled, 400, 0},
		{"CL list differing", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4, 40\r\n\r\nbody" + smuggled, 400, 0},
		{"CL plus sign", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: +4\r\n\r\nbody", 400, 0},
		{"CL negative", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, 0},
		{"CL hex", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0x4\r\n\r\nbody", 400, 0},
		{"CL with space inside", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4 4\r\n\r\nbody", 400, 0},
		{"CL empty", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", 400, 0},
		// RFC 9112 6.1: Transfer-Encoding other than chunked last.
		{"TE obfuscated space", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:  chunked \r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + smuggled, 400, 0},
		{"TE xchunked", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501, 0},
		{"TE identity", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 501, 0},
		{"TE chunked twice", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 501, 0},
		{"TE gzip, chunked", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, 0},
		{"TE in two lines", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", 501, 0},
		{"TE with vertical tab", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\vchunked\r\n\r\n0\r\n\r\n", 400, 0},
		// RFC 9112 6.1: TE in HTTP/1.0 is faulty framing.
		{"TE in HTTP/1.0", "POST /a HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400, 0},
		{"CL folded", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n 0\r\n\r\nbody", 400, 0},
		// Sound framing keeps working after a chunked request with
		// extensions and trailers, on the same connection.
		{"keep-alive after chunked", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nbody\r\n0\r\nX-Trailer: t\r\n\r\nGET /second HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 200, 1},
		// RFC 9112 7.1: chunk framing.
		{"chunk size not hex", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbody\r\n0\r\n\r\n", 400, 1},
		{"chunk size overflow", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff1\r\nbody\r\n0\r\n\r\n", 400, 1},
		{"chunk without CRLF after data", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbodyXX0\r\n\r\n", 400, 1},
		// RFC 9112 2.2, 5.1, 5.2: header syntax.
		{"space before colon", "GET /a HTTP/1.1\r\nHost: h\r\nX-Bad : 1\r\n\r\n", 400, 0},
		{"header name with space", "GET /a HTTP/1.1\r\nHost: h\r\nX Bad: 1\r\n\r\n", 400, 0},
		// RFC 9112 5.2: obs-fold may be replaced by SP instead of refused;
		// the backend gets one clean line.
		{"obs-fold", "GET /a HTTP/1.1\r\nHost: h\r\nX-Fold: a\r\n b\r\n\r\n", 200, 1},
		{"NUL in header value", "GET /a HTTP/1.1\r\nHost: h\r\nX-Nul: a\x00b\r\n\r\n", 400, 0},
		{"CR in header value", "GET /a HTTP/1.1\r\nHost: h\r\nX-Cr: a\rb\r\n\r\n", 400, 0},
		// RFC 9112 2.2: a recipient may take a bare LF as a line end; the
		// backend gets CRLF.
		{"bare LF line ends", "GET /a HTTP/1.1\nHost: h\nX-Lf: 1\n\n", 200, 1},
		{"two Host headers", "GET /a HTTP/1.1\r\nHost: h\r\nHost: evil\r\n\r\n", 400, 0},
		{"Host with path", "GET /a HTTP/1.1\r\nHost: h/evil\r\n\r\n", 400, 0},
		{"Host with space", "GET /a HTTP/1.1\r\nHost: h evil\r\n\r\n", 400, 0},
		// RFC 9112 3: request line and target.
		{"NUL in target", "GET /a\x00b HTTP/1.1\r\nHost: h\r\n\r\n", 400, 0},
		{"CR in target", "GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n", 400, 0},
		{"encoded NUL in target", "GET /a%00b HTTP/1.1\r\nHost: h\r\n\r\n", 400, 0},
		{"fragment in target", "GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", 400, 0},
		{"asterisk form GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, 0},
		{"CONNECT", "CONNECT b:443 HTTP/1.1\r\nHost: b:443\r\n\r\n", 400, 0},
		{"HTTP/2 preface on HTTP/1 port", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, 0},
		{"unknown version", "GET /a HTTP/1.2\r\nHost: h\r\n\r\n", 200, 1},
		{"bad version", "GET /a HTTP/x\r\nHost: h\r\n\r\n", 400, 0},
		{"lower-case method is a different method", "get /a HTTP/1.1\r\nHost: h\r\n\r\n", 200, 1},
		{"space in target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400, 0},
		// A well-framed body that looks like a request stays a body.
		{"request-looking body", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: " + itoa(len(smuggled)) + "\r\n\r\n" + smuggled, 200, 1},
		{"chunked request-looking body", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + hex(len(smuggled)) + "\r\n" + smuggled + "\r\n0\r\n\r\n", 200, 1},
	}
	for _, p := range ports {
		for _, tt := range tests {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				before := b.count()
				status := rawStatusOn(t, p.dial, tt.req)
				if status != tt.want {
					t.Errorf("status %d, want %d", status, tt.want)
				}
				// Give a smuggled request time to arrive if one slipped through.
				time.Sleep(20 * time.Millisecond)
				got := b.count() - before
				if got > tt.backend {
					t.Errorf("backend received %d requests, want at most %d", got, tt.backend)
				}
				for _, r := range b.reqsSince(before) {
					if strings.Contains(r.Target, "smuggled") {
						t.Errorf("smuggled request reached the backend: %+v", r)
					}
				}
			})
		}
	}
	t.Logf("%d request-hygiene cases on each port", len(tests))
}

// dialTLS opens a TLS connection to addr that offers only HTTP/1.1 by
// ALPN, and checks that it was chosen.
func dialTLS(addr string, roots *x509.CertPool) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		c.Close()
		return nil, fmt.Errorf("ALPN chose %q, want http/1.1", p)
	}
	return c, nil
}

// rawStatus sends req on a fresh connection and returns the status of the
// first response (0 when the connection closed without one).
func rawStatus(t *testing.T, addr, req string) int {
	t.Helper()
	return rawStatusOn(t, func() (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }, req)
}

// rawStatusOn is rawStatus on a connection made by dial.
func rawStatusOn(t *testing.T, dial func() (net.Conn, error), req string) int {
	t.Helper()
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, req)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func itoa(n int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n, 10)) }
func hex(n int) string  { return fmtInt(n, 16) }

func fmtInt(n, base int) string {
	const digits = "0123456789abcdef"
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= base {
		b = append([]byte{digits[n%base]}, b...)
	}
	return string(b)
}
