package server

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// trailerBackend answers with a body ("hello", none for /empty) and
// trailers: X-Checksum announced by its Trailer header, Grpc-Status not
// announced, and Set-Cookie and Location, which may not be trailers.
func trailerBackend(t *testing.T) *backend {
	return newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Path != "/empty" {
			io.WriteString(w, "hello")
		}
		// The head goes now: what is set from here on is a trailer.
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "sha-"+r.URL.Path)
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Set-Cookie", "evil=1")
		w.Header().Set(http.TrailerPrefix+"Location", "/evil")
	})
}

// trailerConf proxies everything to b, with output filters on a header
// of the same name as the trailer (which must not touch the trailer) and
// on another header (to show that the filters ran).
func trailerConf(b *backend) string {
	return fmt.Sprintf(`<host><revproxy suburl="(.*)" dest="%s/\1"/>
<outputfilter header="X-Checksum" regexp="sha" dest="filtered"/>
<outputfilter header="X-Filtered" dest="yes"/></host>`, b.URL)
}

// wantTrailer is what a client that accepts trailers receives for path.
func wantTrailer(path string) http.Header {
	return http.Header{"X-Checksum": {"sha-" + path}, "Grpc-Status": {"0"}}
}

// TestTrailersPlainHTTP reads the raw answers of the plain-HTTP server:
// the trailer section after the last chunk for an HTTP/1.1 client that
// sent "TE: trailers", none otherwise.
func TestTrailersPlainHTTP(t *testing.T) {
	b := trailerBackend(t)
	r := start(t, t.TempDir(), `<port>127.0.0.1:0</port>`+trailerConf(b))
	tests := []struct {
		name, path, proto, te string
		trailers              bool // the client gets the trailers (and the backend TE: trailers)
		chunked               bool
	}{
		{"HTTP/1.1 TE trailers", "/a", "HTTP/1.1", "trailers", true, true},
		{"HTTP/1.1 TE list", "/b", "HTTP/1.1", "deflate;q=0.5, trailers", true, true},
		{"HTTP/1.1 TE trailers, empty body", "/empty", "HTTP/1.1", "trailers", true, true},
		{"HTTP/1.1 without TE", "/c", "HTTP/1.1", "", false, true},
		{"HTTP/1.1 TE gzip", "/d", "HTTP/1.1", "gzip", false, true},
		{"HTTP/1.0 TE trailers", "/e", "HTTP/1.0", "trailers", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := "GET " + tt.path + " " + tt.proto + "\r\nHost: h\r\nConnection: close\r\n"
			if tt.te != "" {
				req = "GET " + tt.path + " " + tt.proto + "\r\nHost: h\r\nTE: " + tt.te + "\r\nConnection: TE, close\r\n"
			}
			all := rawAll(t, r.addr(0), req+"\r\n")
			head, rest, ok := strings.Cut(all, "\r\n\r\n")
			if !ok {
				t.Fatalf("no head in %q", all)
			}
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(all)), nil)
			if err != nil {
				t.Fatalf("reading %q: %v", all, err)
			}
			body, err := io.ReadAll(resp.Body)
			wantBody := "hello"
			if tt.path == "/empty" {
				wantBody = ""
			}
			if err != nil || string(body) != wantBody {
				t.Fatalf("body %q %v, want %q; answer %q", body, err, wantBody, all)
			}
			if !strings.Contains(head, "\r\nX-Filtered: yes") || strings.Contains(head, "\r\nX-Checksum:") {
				t.Errorf("head %q: want the filters run, no X-Checksum header", head)
			}
			if got := strings.Contains(head, "\r\nTransfer-Encoding: chunked"); got != tt.chunked {
				t.Errorf("chunked %t, want %t; head %q", got, tt.chunked, head)
			}
			if strings.Contains(all, "evil") {
				t.Errorf("a field that may not be a trailer was sent: %q", all)
			}
			var want http.Header
			if tt.trailers {
				want = wantTrailer(tt.path)
				if !strings.Contains(head, "\r\nTrailer: X-Checksum") {
					t.Errorf("head %q does not announce X-Checksum", head)
				}
				lines := strings.Split(strings.TrimSuffix(trailerSection(t, rest), "\r\n\r\n"), "\r\n")
				slices.Sort(lines)
				if wantLines := []string{"Grpc-Status: 0", "X-Checksum: sha-" + tt.path}; !slices.Equal(lines, wantLines) {
					t.Errorf("trailer section %q, want %q", lines, wantLines)
				}
			} else {
				if strings.Contains(head, "Trailer") || strings.Contains(all, "sha-") || strings.Contains(all, "Grpc-Status") {
					t.Errorf("trailers sent to a client that does not accept them: %q", all)
				}
				if tt.chunked {
					if sec := trailerSection(t, rest); sec != "\r\n" {
						t.Errorf("trailer section %q, want none", sec)
					}
				}
			}
			if !maps.EqualFunc(resp.Trailer, want, slices.Equal) {
				t.Errorf("trailers %q, want %q", resp.Trailer, want)
			}
			wantTE := ""
			if tt.trailers {
				wantTE = "trailers"
			}
			if got := strings.Join(b.last(t).Header["Te"], ","); got != wantTE {
				t.Errorf("backend TE %q, want %q", got, wantTE)
			}
		})
	}
}

// trailerSection returns what follows the last chunk of the chunked
// body: the trailer fields, each with its CRLF, then the empty line.
func trailerSection(t *testing.T, body string) string {
	t.Helper()
	rest := body
	for {
		line, after, ok := strings.Cut(rest, "\r\n")
		n, err := strconv.ParseUint(line, 16, 32)
		if !ok || err != nil {
			t.Fatalf("bad chunk size line %q in %q", line, body)
		}
		if n == 0 {
			return after
		}
		if uint64(len(after)) < n+2 || after[n:n+2] != "\r\n" {
			t.Fatalf("bad chunk in %q", body)
		}
		rest = after[n+2:]
	}
}

// rawAll sends req on a new connection and returns every byte of the
// answer, up to the server's close.
func rawAll(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, c); err != nil {
		t.Fatalf("reading the answer to %q: %v (so far %q)", req, err, buf.String())
	}
	return buf.String()
}

// TestTrailersHTTPS checks the trailers of net/http's server: HTTP/2
// clients always get them; HTTP/1.1 clients over TLS when they send "TE:
// trailers".
func TestTrailersHTTPS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, roots := selfSigned(t, dir)
	b := trailerBackend(t)
	r := start(t, dir, fmt.Sprintf(`<port protocol="HTTPS">127.0.0.1:0</port>
<ssl><certificate>%s</certificate><privatekey>%s</privatekey></ssl>`, certFile, keyFile)+trailerConf(b))
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	defer h2.CloseIdleConnections()
	defer h1.CloseIdleConnections()
	tests := []struct {
		name     string
		client   *http.Client
		path, te string
		proto    int
		trailers bool
	}{
		{"HTTP/2", h2, "/a", "", 2, true},
		{"HTTP/2, empty body", h2, "/empty", "", 2, true},
		{"HTTP/2 TE trailers", h2, "/b", "trailers", 2, true},
		{"HTTP/1.1 TE trailers", h1, "/c", "trailers", 1, true},
		{"HTTP/1.1 TE trailers, empty body", h1, "/empty", "trailers", 1, true},
		{"HTTP/1.1 without TE", h1, "/d", "", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "https://"+r.addr(0)+tt.path, nil)
			if tt.te != "" {
				req.Header.Set("TE", tt.te)
			}
			resp, err := tt.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			wantBody := "hello"
			if tt.path == "/empty" {
				wantBody = ""
			}
			if err != nil || string(body) != wantBody {
				t.Fatalf("body %q %v, want %q", body, err, wantBody)
			}
			if resp.ProtoMajor != tt.proto {
				t.Errorf("protocol %s, want major %d", resp.Proto, tt.proto)
			}
			if resp.Header.Get("X-Filtered") != "yes" || resp.Header.Get("X-Checksum") != "" {
				t.Errorf("header %q: want the filters run, no X-Checksum header", resp.Header)
			}
			var want http.Header
			wantTE := ""
			if tt.trailers {
				want, wantTE = wantTrailer(tt.path), "trailers"
			}
			if !maps.EqualFunc(resp.Trailer, want, slices.Equal) {
				t.Errorf("trailers %q, want %q", resp.Trailer, want)
			}
			if got := strings.Join(b.last(t).Header["Te"], ","); got != wantTE {
				t.Errorf("backend TE %q, want %q", got, wantTE)
			}
		})
	}
}

// TestH1Trailers checks the trailers of the plain-HTTP server's
// ResponseWriter on its own: both of net/http's ways to set them, the
// fields it never sends as trailers, and a Content-Length, which wins.
func TestH1Trailers(t *testing.T) {
	_, addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/declared":
			h.Set("Trailer", "x-a, X-Missing")
			io.WriteString(w, "hi")
			h.Set("X-A", "1")
		case "/prefix":
			io.WriteString(w, "hi")
			h.Set(http.TrailerPrefix+"X-B", "2")
			h[http.TrailerPrefix+"Bad Name"] = []string{"x"}
			h.Set(http.TrailerPrefix+"Content-Length", "9")
			h.Set(http.TrailerPrefix+"X-Crlf", "a\r\nEvil: 1")
		case "/length":
			h.Set("Trailer", "X-A")
			h.Set("Content-Length", "2")
			io.WriteString(w, "hi")
			h.Set("X-A", "1")
		case "/nobody":
			h.Set("Trailer", "X-A")
			w.WriteHeader(http.StatusOK)
			h.Set("X-A", "1")
		}
	}))
	tests := []struct {
		path     string
		te       bool
		announce string // the Trailer field of the head, "" for none
		section  string // the trailer section, lines sorted; "-" when not chunked
	}{
		{"/declared", true, "x-a, X-Missing", "X-A: 1"},
		{"/declared", false, "", ""},
		{"/prefix", true, "", "X-B: 2\r\nX-Crlf: a  Evil: 1"},
		{"/prefix", false, "", ""},
		{"/length", true, "", "-"},
		{"/nobody", true, "X-A", "X-A: 1"},
		{"/nobody", false, "", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s TE %t", tt.path, tt.te), func(t *testing.T) {
			req := "GET " + tt.path + " HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
			if tt.te {
				req = "GET " + tt.path + " HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nConnection: close, TE\r\n\r\n"
			}
			all := rawAll(t, addr, req)
			head, rest, _ := strings.Cut(all, "\r\n\r\n")
			var announce string
			for _, line := range strings.Split(head, "\r\n") {
				if v, ok := strings.CutPrefix(line, "Trailer: "); ok {
					announce = v
				}
			}
			if announce != tt.announce {
				t.Errorf("Trailer field %q, want %q; head %q", announce, tt.announce, head)
			}
			section := "-"
			if strings.Contains(head, "\r\nTransfer-Encoding: chunked") {
				lines := strings.Split(strings.TrimSuffix(trailerSection(t, rest), "\r\n"), "\r\n")
				slices.Sort(lines)
				section = strings.TrimPrefix(strings.Join(lines, "\r\n"), "\r\n")
			}
			if section != tt.section {
				t.Errorf("trailer section %q, want %q; answer %q", section, tt.section, all)
			}
			for _, f := range []string{"\r\nX-A:", "\r\nX-B:", "\r\nX-Crlf:", "\r\nBad Name", "\r\nTrailer:X"} {
				if strings.Contains(head, f) {
					t.Errorf("a trailer (%q) was sent in the head: %q", f, head)
				}
			}
		})
	}
	// Pipelined on one connection: each answer's trailer section ends it,
	// and the next answer is read where it should be.
	resps, bodies, closed := exchange(t, addr, strings.Repeat("GET /declared HTTP/1.1\r\nHost: h\r\nTE: trailers\r\n\r\n", 2), 2)
	if len(resps) != 2 || closed {
		t.Fatalf("%d answers, closed %t; want 2 on a kept connection", len(resps), closed)
	}
	for i, resp := range resps {
		if want := (http.Header{"X-A": {"1"}, "X-Missing": nil}); bodies[i] != "hi" || !maps.EqualFunc(resp.Trailer, want, slices.Equal) {
			t.Errorf("answer %d: body %q, trailers %q, want \"hi\" and %q", i, bodies[i], resp.Trailer, want)
		}
	}
}

// TestTrailersBroken checks that a backend's malformed or oversized
// trailer section is a broken body: the client's answer is cut before
// its last chunk, so that it cannot take it for a whole one.
func TestTrailersBroken(t *testing.T) {
	tests := []struct{ name, trailer string }{
		{"malformed", "no colon\r\n"},
		{"over 16 KiB", strings.Repeat("X-Pad: "+strings.Repeat("a", 1000)+"\r\n", 17)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						c.SetDeadline(time.Now().Add(10 * time.Second))
						br := bufio.NewReader(c)
						if _, err := http.ReadRequest(br); err != nil {
							return
						}
						io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Pad\r\n\r\n5\r\nhello\r\n0\r\n"+tt.trailer+"\r\n")
						io.Copy(io.Discard, br) // until the proxy closes
					}()
				}
			}()
			r := start(t, t.TempDir(), `<port>127.0.0.1:0</port><host><revproxy suburl="(.*)" dest="http://`+ln.Addr().String()+`/\1"/></host>`)
			all := rawAll(t, r.addr(0), "GET /x HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nConnection: TE\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(all)), nil)
			if err != nil {
				t.Fatalf("reading %q: %v", all, err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != io.ErrUnexpectedEOF {
				t.Errorf("body %q, err %v; want a cut answer (io.ErrUnexpectedEOF); answer %q", body, err, clipTail(all))
			}
		})
	}
}

// clipTail returns the end of s, for a failure message.
func clipTail(s string) string {
	if len(s) > 200 {
		return "..." + s[len(s)-200:]
	}
	return s
}

// trailerBody is a backend body that fills its response's Trailer at its
// end, as the pool's does.
type trailerBody struct {
	r    io.Reader
	resp *http.Response
	set  http.Header
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		maps.Copy(b.resp.Trailer, b.set)
	}
	return n, err
}

func (b *trailerBody) Close() error { return nil }

// TestRespondTrailers checks respond on its own, with any RoundTripper's
// answer: which clients get the trailers, and the Content-Length an
// HTTP/1.1 answer with announced trailers gives up.
func TestRespondTrailers(t *testing.T) {
	tests := []struct {
		name     string
		proto    string
		method   string
		te       string
		length   int64 // the backend's ContentLength
		declared bool  // the backend announced X-A
		wantCL   string
		trailers bool
	}{
		{"HTTP/1.1 TE, length, announced", "HTTP/1.1", "GET", "trailers", 5, true, "", true},
		{"HTTP/1.1 TE, no length, announced", "HTTP/1.1", "GET", "trailers", -1, true, "", true},
		{"HTTP/1.1 TE, no length, not announced", "HTTP/1.1", "GET", "trailers", -1, false, "", true},
		// Handed to the writer, which drops them: the length wins.
		{"HTTP/1.1 TE, length, not announced", "HTTP/1.1", "GET", "trailers", 5, false, "5", true},
		{"HTTP/1.1 no TE, length, announced", "HTTP/1.1", "GET", "", 5, true, "5", false},
		{"HTTP/1.1 no TE, no length", "HTTP/1.1", "GET", "", -1, true, "", false},
		{"HTTP/1.0 TE", "HTTP/1.0", "GET", "trailers", 5, true, "5", false},
		{"HTTP/2, length, announced", "HTTP/2.0", "GET", "", 5, true, "5", true},
		{"HTTP/2 HEAD", "HTTP/2.0", "HEAD", "", 5, true, "5", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/x", nil)
			r.Proto = tt.proto
			r.ProtoMajor, r.ProtoMinor, _ = http.ParseHTTPVersion(tt.proto)
			if tt.te != "" {
				r.Header.Set("TE", tt.te)
			}
			resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/plain"}}, ContentLength: tt.length}
			if tt.declared {
				resp.Trailer = http.Header{"X-A": nil}
			} else {
				resp.Trailer = http.Header{}
			}
			resp.Body = &trailerBody{r: strings.NewReader("hello"), resp: resp,
				set: http.Header{"X-A": {"1"}, "X-B": {"2"}, "Set-Cookie": {"evil=1"}}}
			st := &stage.State{In: r}
			st.SetAnswer(resp, xmlconf.Pos{})
			w := httptest.NewRecorder()
			respond(w, r, st, nil, false, 0)
			res := w.Result()
			body, _ := io.ReadAll(res.Body)
			if tt.method == "GET" && string(body) != "hello" {
				t.Errorf("body %q", body)
			}
			if got := res.Header.Get("Content-Length"); got != tt.wantCL {
				t.Errorf("Content-Length %q, want %q", got, tt.wantCL)
			}
			var want http.Header
			if tt.trailers {
				want = http.Header{"X-A": {"1"}, "X-B": {"2"}}
			}
			got := res.Trailer
			if len(got) == 0 {
				got = nil
			}
			if !maps.EqualFunc(got, want, slices.Equal) {
				t.Errorf("trailers %q, want %q", res.Trailer, want)
			}
			if announced := res.Header.Get("Trailer") != ""; announced != (tt.trailers && tt.declared) {
				t.Errorf("Trailer field %q, want one: %t", res.Header.Get("Trailer"), tt.trailers && tt.declared)
			}
		})
	}
}
