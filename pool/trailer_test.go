package pool

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// padTrailer returns trailer field lines whose bytes, CRLFs included,
// add up to n (n at least 16), and the fields they hold.
func padTrailer(n int) (string, http.Header) {
	var b strings.Builder
	h := make(http.Header)
	for i := 0; b.Len() < n; i++ {
		name := fmt.Sprintf("X-Pad-%04d", i)
		left := n - b.Len()
		size := min(1000, left)
		if left-size > 0 && left-size < 16 {
			size = left - 16 // room for a whole last line
		}
		v := strings.Repeat("a", size-len(name)-4)
		b.WriteString(name + ": " + v + "\r\n")
		h[name] = []string{v}
	}
	return b.String(), h
}

// show prints h with its values clipped, for a failure message.
func show(h http.Header) string {
	if h == nil {
		return "nil"
	}
	keys := slices.Sorted(maps.Keys(h))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=", k)
		if h[k] == nil {
			b.WriteString("nil ")
			continue
		}
		for _, v := range h[k] {
			fmt.Fprintf(&b, "%q ", clip(v))
		}
	}
	return fmt.Sprintf("%d fields: %s", len(h), b.String())
}

func TestTrailers(t *testing.T) {
	// head returns a chunked response head with the given fields.
	head := func(fields string) string {
		return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + fields + "\r\n"
	}
	const body = "5\r\nhello\r\n0\r\n"
	atBound, atBoundFields := padTrailer(maxTrailerBytes)
	overBound, _ := padTrailer(maxTrailerBytes + 1)
	tests := []struct {
		name, in string
		// want is resp.Trailer once the body is streamed to its end.
		want http.Header
		// fast is resp.Trailer when the body is read whole.
		fast http.Header
		err  string // "framing", "eof", or ""
	}{
		{name: "none", in: head("") + body + "\r\n"},
		{name: "announced, none sent", in: head("Trailer: X-Checksum\r\n") + body + "\r\n",
			want: http.Header{"X-Checksum": nil}},
		{name: "announced and sent", in: head("Trailer: X-Checksum\r\n") + body + "X-Checksum: abc\r\n\r\n",
			want: http.Header{"X-Checksum": {"abc"}}, fast: http.Header{"X-Checksum": {"abc"}}},
		{name: "announced list, some sent", in: head("Trailer: x-a, X-B\r\nTrailer: grpc-status\r\n") + body + "grpc-status: 0\r\nx-a: 1\r\n\r\n",
			want: http.Header{"X-A": {"1"}, "X-B": nil, "Grpc-Status": {"0"}}, fast: http.Header{"X-A": {"1"}, "X-B": nil, "Grpc-Status": {"0"}}},
		{name: "not announced", in: head("") + body + "Server-Timing: db;dur=53\r\n\r\n",
			want: http.Header{"Server-Timing": {"db;dur=53"}}, fast: http.Header{"Server-Timing": {"db;dur=53"}}},
		{name: "repeated field", in: head("") + body + "X-V: 1\r\nX-V: 2\r\n\r\n",
			want: http.Header{"X-V": {"1", "2"}}, fast: http.Header{"X-V": {"1", "2"}}},
		{name: "blanks trimmed, empty value", in: head("") + body + "X-A: \t a b \t\r\nX-E:\r\n\r\n",
			want: http.Header{"X-A": {"a b"}, "X-E": {""}}, fast: http.Header{"X-A": {"a b"}, "X-E": {""}}},
		{name: "forbidden fields sent", in: head("") + body + "Content-Length: 99\r\nTransfer-Encoding: chunked\r\nHost: evil\r\n" +
			"Set-Cookie: a=1\r\nLocation: /x\r\nConnection: close\r\nAuthorization: x\r\nContent-Type: text/html\r\nIf-Match: *\r\nX-Ok: 1\r\n\r\n",
			want: http.Header{"X-Ok": {"1"}}, fast: http.Header{"X-Ok": {"1"}}},
		{name: "forbidden fields announced", in: head("Trailer: Content-Length, Host, Trailer, X-Sum, bad name, Set-Cookie\r\n") + body + "X-Sum: 5\r\n\r\n",
			want: http.Header{"X-Sum": {"5"}}, fast: http.Header{"X-Sum": {"5"}}},
		{name: "section at the bound", in: head("") + body + atBound + "\r\n", want: atBoundFields, fast: atBoundFields},
		{name: "section over the bound", in: head("Trailer: X-Pad-0000\r\n") + body + overBound + "\r\n", err: "framing",
			want: http.Header{"X-Pad-0000": nil}},
		{name: "line over the bound", in: head("") + body + "X-Long: " + strings.Repeat("a", maxTrailerBytes) + "\r\n\r\n", err: "framing"},
		{name: "no colon", in: head("Trailer: X-A\r\n") + body + "X-A 1\r\n\r\n", err: "framing", want: http.Header{"X-A": nil}},
		{name: "space in name", in: head("") + body + "X-A : 1\r\n\r\n", err: "framing"},
		{name: "folded line", in: head("") + body + "X-A: 1\r\n 2\r\n\r\n", err: "framing"},
		{name: "control byte", in: head("") + body + "X-A: 1\x012\r\n\r\n", err: "framing"},
		{name: "bare LF", in: head("") + body + "X-A: 1\n\r\n", err: "framing"},
		{name: "cut", in: head("Trailer: X-A\r\n") + body + "X-A: 1\r\n", err: "eof", want: http.Header{"X-A": nil}},
		{name: "not chunked", in: "HTTP/1.1 200 OK\r\nTrailer: X-A\r\nContent-Length: 5\r\n\r\nhello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, fast := range []bool{false, true} {
				h, b, err := readResponse([]byte(tt.in), "GET", fast)
				var fe *FramingError
				switch {
				case tt.err == "framing" && !errors.As(err, &fe):
					t.Errorf("fast=%t: err %v, want a framing error", fast, err)
				case tt.err == "eof" && !errors.Is(err, io.ErrUnexpectedEOF):
					t.Errorf("fast=%t: err %v, want io.ErrUnexpectedEOF", fast, err)
				case tt.err == "" && (err != nil || string(b) != "hello"):
					t.Errorf("fast=%t: body %q %v, want \"hello\"", fast, clip(string(b)), err)
				}
				if h == nil {
					t.Fatalf("fast=%t: no response", fast)
				}
				want := tt.want
				if fast && tt.err == "" {
					want = tt.fast
				}
				if !maps.EqualFunc(h.resp.Trailer, want, slices.Equal) {
					t.Errorf("fast=%t: Trailer %s, want %s", fast, show(h.resp.Trailer), show(want))
				}
			}
		})
	}
}

// TestTrailersThroughPool sends requests to a net/http backend that
// answers with trailers, announced (Trailer header) and not
// (http.TrailerPrefix), and checks what the pool's caller sees: the
// announced names before the body is read, their values after.
func TestTrailersThroughPool(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum, Content-Length")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "hello ")
		w.(http.Flusher).Flush() // the body streams: the pool hands it over before its end
		io.WriteString(w, r.URL.Path)
		w.Header().Set("X-Checksum", "sum"+r.URL.Path)
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Set-Cookie", "a=1")
	}))
	defer ts.Close()
	p := New(Config{Defaults: DefaultSettings(0)})
	defer p.Close()
	for _, path := range []string{"/a", "/b", "/c"} {
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		resp, err := p.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if want := (http.Header{"X-Checksum": nil}); !maps.EqualFunc(resp.Trailer, want, slices.Equal) {
			t.Errorf("%s: Trailer before the body %q, want %q", path, resp.Trailer, want)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "hello "+path {
			t.Fatalf("%s: body %q %v", path, b, err)
		}
		want := http.Header{"X-Checksum": {"sum" + path}, "Grpc-Status": {"0"}}
		if !maps.EqualFunc(resp.Trailer, want, slices.Equal) {
			t.Errorf("%s: Trailer %q, want %q", path, resp.Trailer, want)
		}
	}
}
