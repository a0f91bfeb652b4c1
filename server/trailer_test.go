package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/internal/wiretest"
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
			all := wiretest.RawAll(t, r.addr(0), req+"\r\n")
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
				lines := strings.Split(strings.TrimSuffix(wiretest.TrailerSection(t, rest), "\r\n\r\n"), "\r\n")
				slices.Sort(lines)
				if wantLines := []string{"Grpc-Status: 0", "X-Checksum: sha-" + tt.path}; !slices.Equal(lines, wantLines) {
					t.Errorf("trailer section %q, want %q", lines, wantLines)
				}
			} else {
				if strings.Contains(head, "Trailer") || strings.Contains(all, "sha-") || strings.Contains(all, "Grpc-Status") {
					t.Errorf("trailers sent to a client that does not accept them: %q", all)
				}
				if tt.chunked {
					if sec := wiretest.TrailerSection(t, rest); sec != "\r\n" {
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
			addr := oneShotBackend(t, func(c net.Conn, br *bufio.Reader, _ *http.Request) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Pad\r\n\r\n5\r\nhello\r\n0\r\n"+tt.trailer+"\r\n")
				io.Copy(io.Discard, br) // until the proxy closes
			})
			r := start(t, t.TempDir(), `<port>127.0.0.1:0</port><host><revproxy suburl="(.*)" dest="http://`+addr+`/\1"/></host>`)
			all := wiretest.RawAll(t, r.addr(0), "GET /x HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nConnection: TE\r\n\r\n")
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
