package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFramingNotBypassed checks that no sequence of requests on one
// connection can get a request with ambiguous framing past the framing
// tracker: requests net/http answers itself (OPTIONS *), duplicated equal
// Content-Lengths, and trailers longer than the tracker follows must not
// leave the verdicts behind net/http's parsing.
func TestFramingNotBypassed(t *testing.T) {
	b := newBackend(t, nil)
	r := start(t, t.TempDir(), `<port>127.0.0.1:0</port><host><revproxy suburl="(.*)" dest="`+b.URL+`/\1"/></host>`)
	addr := r.addr(0)
	const clte = "POST /clte HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
	tests := []struct {
		name string
		req  string
	}{
		{"after OPTIONS *", strings.Repeat("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 2) + clte},
		{"after equal Content-Lengths", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok" + clte},
		// net/http gives up on a trailer whose end is not within its 4 kB
		// buffer without consuming it; the connection must then close, or
		// the trailer is read as the next request.
		{"trailer read as a request", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\nX-Pad: " + strings.Repeat("p", 5000) + "\r\n\r\n"},
		{"after a long trailer", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: " + strings.Repeat("t", 100<<10) + "\r\n\r\n" + clte},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := b.count()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			go io.WriteString(c, tt.req)
			br := bufio.NewReader(c)
			var statuses []int
			for {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					break
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				statuses = append(statuses, resp.StatusCode)
			}
			t.Logf("statuses %v", statuses)
			for _, r := range b.reqsSince(before) {
				t.Logf("backend got %s %s", r.Method, r.Target)
				if r.Target == "/clte" || strings.Contains(r.Target, "smuggled") {
					t.Errorf("ambiguous request reached the backend: %s %s", r.Method, r.Target)
				}
			}
		})
	}
}
