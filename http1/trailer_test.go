package http1

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/internal/wiretest"
)

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
			all := wiretest.RawAll(t, addr, req)
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
				lines := strings.Split(strings.TrimSuffix(wiretest.TrailerSection(t, rest), "\r\n"), "\r\n")
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
