package pool

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

// readResponse reads one response from data the way a connection does:
// the head, then the body by its framing. With fast set, a chunked body
// that is all buffered is read whole first, as bufferedBody does;
// otherwise it is streamed. The head is returned with the response.
func readResponse(data []byte, method string, fast bool) (*head, []byte, error) {
	size := 4096
	if fast {
		size += len(data)
	}
	br := bufio.NewReaderSize(bytes.NewReader(data), size)
	tp := textproto.NewReader(br)
	h, err := readHead(tp, method, nil)
	if err != nil {
		return nil, nil, err
	}
	switch h.framing {
	case framingNone:
		return h, nil, nil
	case framingLength:
		if h.length > int64(len(data)) {
			return h, nil, io.ErrUnexpectedEOF
		}
		body := make([]byte, h.length)
		_, err := io.ReadFull(br, body)
		return h, body, err
	case framingChunked:
		if fast && br.Buffered() > 0 {
			p, _ := br.Peek(br.Buffered())
			if _, n, ok := chunkedComplete(p); ok {
				body := make([]byte, n)
				h.resp.Trailer = nil
				cr := newChunkedReader(br, tp, nil)
				_, err := io.ReadFull(cr, body)
				if err == nil {
					var one [1]byte
					if m, e := cr.Read(one[:]); m != 0 || e != io.EOF {
						err = framingErrorf("chunked body longer than announced (%d, %v)", m, e)
					}
				}
				return h, body, err
			}
		}
		body, err := io.ReadAll(io.LimitReader(newChunkedReader(br, tp, h.resp), int64(len(data))))
		return h, body, err
	default:
		body, err := io.ReadAll(br)
		return h, body, err
	}
}

func TestReadHead(t *testing.T) {
	tests := []struct {
		name, in, method string
		code             int
		body             string
		keep             bool
		err              string // "framing", "eof", or ""
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET", 200, "ok", true, ""},
		{"no reason", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", "GET", 404, "", true, ""},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", "GET", 200, "ok", true, ""},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "GET", 200, "ok", true, ""},
		{"close-delimited", "HTTP/1.1 200 OK\r\n\r\nuntil the end", "GET", 200, "until the end", false, ""},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n", "GET", 200, "", false, ""},
		{"1.0 default close", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", 200, "", false, ""},
		{"1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", "GET", 200, "", true, ""},
		{"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", "HEAD", 200, "", true, ""},
		{"304", "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", 304, "", true, ""},
		{"interim", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", "POST", 201, "x", true, ""},
		{"equal lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", "GET", 200, "x", true, ""},
		{"too many interim", strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 6) + "HTTP/1.1 200 OK\r\n\r\n", "GET", 0, "", false, "framing"},
		{"empty", "", "GET", 0, "", false, "eof"},
		{"cut head", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", "GET", 0, "", false, "eof"},
		{"HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", "GET", 0, "", false, "framing"},
		{"lower case", "http/1.1 200 OK\r\n\r\n", "GET", 0, "", false, "framing"},
		{"code too long", "HTTP/1.1 2000 OK\r\n\r\n", "GET", 0, "", false, "framing"},
		{"negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "GET", 0, "", false, "framing"},
		{"empty length", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", "GET", 0, "", false, "framing"},
		{"huge length", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "GET", 0, "", false, "framing"},
		{"TE and CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", "GET", 0, "", false, "framing"},
		{"two TE lines", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", 0, "", false, "framing"},
		{"identity TE", "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n", "GET", 0, "", false, "framing"},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx", "GET", 0, "", false, "framing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := textproto.NewReader(bufio.NewReader(strings.NewReader(tt.in)))
			h, err := readHead(tp, tt.method, nil)
			var fe *FramingError
			switch {
			case tt.err == "framing":
				if !errors.As(err, &fe) {
					t.Errorf("err %v, want a framing error", err)
				}
				return
			case tt.err == "eof":
				if err == nil || errors.As(err, &fe) {
					t.Errorf("err %v, want an early close", err)
				}
				return
			case err != nil:
				t.Fatalf("err %v", err)
			}
			if h.resp.StatusCode != tt.code || h.keepAlive != tt.keep {
				t.Errorf("code %d keep %t, want %d %t", h.resp.StatusCode, h.keepAlive, tt.code, tt.keep)
			}
			for _, fast := range []bool{false, true} {
				_, body, err := readResponse([]byte(tt.in), tt.method, fast)
				if err != nil || string(body) != tt.body {
					t.Errorf("fast=%t: body %q %v, want %q", fast, body, err, tt.body)
				}
			}
		})
	}
}

func TestChunkedComplete(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		data int64
		ok   bool
	}{
		{"0\r\n\r\n", 5, 0, true},
		{"3\r\nabc\r\n0\r\n\r\nnext", 13, 3, true},
		{"A;x=y\r\n0123456789\r\n0\r\n\r\n", 24, 10, true},
		{"3\r\nabc\r\n", 0, 0, false},                  // not there yet
		{"3\r\nabc\r\n0\r\nX: 1\r\n\r\n", 0, 0, false}, // trailers: streamed
		{"3\nabc\r\n0\r\n\r\n", 0, 0, false},           // bare LF
		{"3\r\nabcd\r\n0\r\n\r\n", 0, 0, false},        // data longer than its size
		{"g\r\n", 0, 0, false},
		{"fffffffffffffffff\r\n", 0, 0, false},
	}
	for _, tt := range tests {
		n, data, ok := chunkedComplete([]byte(tt.in))
		if n != tt.n || data != tt.data || ok != tt.ok {
			t.Errorf("%q: %d %d %t, want %d %d %t", tt.in, n, data, ok, tt.n, tt.data, tt.ok)
		}
	}
}

// FuzzReadResponse checks the response reader on any input: it never
// panics; reading a chunked body whole (when all of it is buffered) and
// streaming it agree, trailers included; and whatever it accepts,
// net/http's ReadResponse accepts too, with the same status, body and
// trailers, but for the fields that may not be trailers, which the
// reader drops (the reader is stricter, never looser). The one
// exception: a Trailer header naming Content-Length, Transfer-Encoding
// or Trailer, which net/http refuses and the reader leaves out.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b\r\nok\r\n0\r\nT: 1\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nbody",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\n Folded: x\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, grpc-status\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 2\r\nGrpc-Status: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-A\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Host, X-A\r\n\r\n0\r\nHost: h\r\nSet-Cookie: a=1\r\nX-A: 1\r\nX-A: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n0\r\nContent-Length: 9\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: \t1 \r\nX-B:\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\n 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		h, body, err := readResponse(data, method, true)
		h2, body2, err2 := readResponse(data, method, false)
		if (err == nil) != (err2 == nil) || !bytes.Equal(body, body2) {
			t.Fatalf("whole: %q %v; streamed: %q %v", body, err, body2, err2)
		}
		if err != nil {
			return
		}
		resp, resp2 := h.resp, h2.resp
		if resp2.StatusCode != resp.StatusCode {
			t.Fatalf("status %d vs %d", resp.StatusCode, resp2.StatusCode)
		}
		if resp.StatusCode < 100 || resp.StatusCode > 999 || resp.ProtoMinor > 1 {
			t.Fatalf("accepted status %d proto HTTP/1.%d", resp.StatusCode, resp.ProtoMinor)
		}
		if bytes.HasPrefix(data, []byte("HTTP/1.1 1")) || bytes.HasPrefix(data, []byte("HTTP/1.0 1")) {
			return // net/http returns the interim response itself
		}
		if !maps.EqualFunc(withValues(resp.Trailer), withValues(resp2.Trailer), slices.Equal) {
			t.Fatalf("trailers: whole %q, streamed %q", resp.Trailer, resp2.Trailer)
		}
		ref, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), &http.Request{Method: method})
		if err != nil && strings.HasPrefix(err.Error(), "bad trailer key") {
			return
		}
		if err != nil {
			t.Fatalf("accepted, net/http refuses the head: %v", err)
		}
		refBody, err := io.ReadAll(ref.Body)
		if err != nil {
			t.Fatalf("accepted (body %q), net/http refuses the body: %v", body, err)
		}
		if ref.StatusCode != resp.StatusCode || !bytes.Equal(refBody, body) {
			t.Fatalf("got %d %q, net/http %d %q", resp.StatusCode, body, ref.StatusCode, refBody)
		}
		if method == http.MethodHead || h2.framing != framingChunked {
			return // net/http announces trailers for bodies that are not read
		}
		var want http.Header
		for k, v := range ref.Trailer {
			if httpsyntax.IsToken(k) && httpsyntax.TrailerAllowed(k) {
				if want == nil {
					want = make(http.Header)
				}
				want[k] = v
			}
		}
		if !maps.EqualFunc(resp2.Trailer, want, slices.Equal) {
			t.Fatalf("trailers %q, net/http %q", resp2.Trailer, ref.Trailer)
		}
	})
}

// withValues returns the fields of h that have values: the trailers
// received, without the names only announced.
func withValues(h http.Header) http.Header {
	var out http.Header
	for k, v := range h {
		if v != nil {
			if out == nil {
				out = make(http.Header)
			}
			out[k] = v
		}
	}
	return out
}

// checkParseHeader compares parseHeader with textproto's ReadMIMEHeader
// on block: when parseHeader takes it, both must give the same header
// and consume the same bytes.
func checkParseHeader(t *testing.T, block []byte) {
	t.Helper()
	var hdr wire.Header
	n := parseHeader(block, &hdr, nil)
	if n == 0 {
		return
	}
	got := hdr.HTTP()
	br := bufio.NewReaderSize(bytes.NewReader(block), len(block)+16)
	want, err := textproto.NewReader(br).ReadMIMEHeader()
	if err != nil {
		t.Fatalf("%q: parseHeader took it, ReadMIMEHeader says %v", block, err)
	}
	if rest := len(block) - br.Buffered(); rest != n {
		t.Fatalf("%q: parseHeader used %d bytes, ReadMIMEHeader %d", block, n, rest)
	}
	if len(got) != len(want) {
		t.Fatalf("%q: got %q, want %q", block, got, want)
	}
	for k, wv := range want {
		gv, ok := got[k]
		if !ok || !slices.Equal(gv, wv) {
			t.Fatalf("%q: got %q, want %q", block, got, want)
		}
	}
}

var parseHeaderSeeds = []string{
	"\r\n",
	"\r\nbody",
	"Content-Type: text/plain\r\nContent-Length: 64\r\n\r\n0123",
	"content-length:64\r\nX-FOO-bar:  a b \t\r\nx-foo-BAR: c\r\n\r\n",
	"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nSet-Cookie: c=3\r\n\r\n",
	"A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\nI: 9\r\nJ: 10\r\n\r\n",
	"Empty:\r\nTabs:\t\t\r\n\r\n",
	"Obs: caf\xe9\r\n\r\n",
	"Folded: a\r\n b\r\n\r\n",
	" Lead: a\r\n\r\n",
	"Content-Length : 1\r\n\r\n",
	"Bad@Name: 1\r\n\r\n",
	"NoColon\r\n\r\n",
	": empty name\r\n\r\n",
	"LF: a\nB: b\r\n\r\n",
	"CR: a\rb\r\n\r\n",
	"Ctl: a\x01b\r\n\r\n",
	"Del: a\x7fb\r\n\r\n",
	"A: b\r\n\nC: d\r\n\r\n",
	"Etag: \"x\"\r\nDATE: now\r\nserver: s\r\nkeep-alive: timeout=5\r\n\r\n",
	"Unfinished: a\r\n",
}

func TestParseHeader(t *testing.T) {
	for _, s := range parseHeaderSeeds {
		checkParseHeader(t, []byte(s))
	}
	// Plain blocks must all be taken.
	for _, s := range parseHeaderSeeds[:8] {
		var hdr wire.Header
		if parseHeader([]byte(s), &hdr, nil) == 0 {
			t.Errorf("%q: not taken by parseHeader", s)
		}
	}
	// Random blocks from a small alphabet.
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("aZ-:: \t\r\n\r\nx\x01\x80~@")
	for i := 0; i < 200000; i++ {
		b := []byte("Content-Type: a\r\n")
		for j := rng.IntN(40); j > 0; j-- {
			b = append(b, alphabet[rng.IntN(len(alphabet))])
		}
		b = append(b, "\r\n\r\n"...)
		checkParseHeader(t, b)
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range parseHeaderSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkParseHeader(t, b) })
}

// BenchmarkReadHead reads a response head as a connection does: small
// (the benchmarks' backend) and typical (a web server's dozen fields).
func BenchmarkReadHead(b *testing.B) {
	for _, tt := range []struct{ name, head string }{
		{"small", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\n"},
		{"typical", "HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nDate: Sun, 22 Nov 2026 03:00:00 GMT\r\n" +
			"Content-Type: text/html; charset=utf-8\r\nContent-Length: 1234\r\nConnection: keep-alive\r\n" +
			"Last-Modified: Sat, 21 Nov 2026 12:00:00 GMT\r\nETag: \"6540a1b2-4d2\"\r\nAccept-Ranges: bytes\r\n" +
			"Cache-Control: max-age=60\r\nVary: Accept-Encoding\r\nX-Request-Id: 4f1c2a9e\r\n\r\n"},
	} {
		b.Run(tt.name, func(b *testing.B) {
			r := strings.NewReader(tt.head)
			br := bufio.NewReaderSize(r, 4096)
			tp := textproto.NewReader(br)
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(tt.head)
				br.Reset(r)
				if _, err := readHead(tp, "GET", nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestBytesAfterAnswerNotReused checks that a connection on which the
// backend sent bytes after a whole answer (a body after 204, 304 or a
// HEAD answer) is not used for the next request, whose answer could not be
// told from those bytes.
func TestBytesAfterAnswerNotReused(t *testing.T) {
	for _, tt := range []struct{ name, method, answer string }{
		{"204 with a body", "GET", "HTTP/1.1 204 No Content\r\nContent-Length: 8\r\n\r\nSMUGGLED"},
		{"304 with a body", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 8\r\n\r\nSMUGGLED"},
		{"HEAD answer with a body", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newRawBackend(t, func(c *rawConn) {
				c.each(func(req *http.Request) bool {
					if req.URL.Path == "/first" {
						c.write(tt.answer) // one write: the bytes arrive with the head
					} else {
						c.write(ok("next"))
					}
					return true
				})
			})
			// One connection, and requests queued for it: the next one is
			// handed the connection as soon as the answer is complete.
			p := testPool(t, func(s *Settings) { s.Workers = 1 })
			var wg sync.WaitGroup
			errs := make(chan string, 8)
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 10; i++ {
						if r := roundTrip(p, tt.method, b.url("/first"), nil); r.err != nil {
							errs <- "first: " + r.String()
							return
						}
						if r := roundTrip(p, "GET", b.url("/next"), nil); r.err != nil || r.status != 200 || r.body != "next" {
							errs <- "next request got " + r.String() + ", want 200 \"next\""
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
			}
		})
	}
}
