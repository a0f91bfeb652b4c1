package engine

import (
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

func TestValidHost(t *testing.T) {
	for _, h := range []string{"h", "h:80", "h:", "Example.COM", "127.0.0.1:8080", "[::1]", "[::1]:80", "[2001:db8::1]:443", "a-b_c~d", "xn--bcher-kva.example", "h%41"} {
		if !validHost(h) {
			t.Errorf("validHost(%q) = false, want true", h)
		}
	}
	for _, h := range []string{"h:80:80", "h:8o", "[::1", "::1", "[::1]x", "[127.0.0.1]", "[fe80::1%25eth0]", "h h", "h/x", "user@h", "h\x00", "h:123456", "h%4", "h\\x", "h#"} {
		if validHost(h) {
			t.Errorf("validHost(%q) = true, want false", h)
		}
	}
}

func TestIsDecimal(t *testing.T) {
	for _, n := range []int64{0, 1, 9, 10, 64, 65536, 999999999999999999} {
		s := strconv.FormatInt(n, 10)
		if !isDecimal(s, n) {
			t.Errorf("isDecimal(%q, %d) = false", s, n)
		}
		for _, bad := range []string{"0" + s, "+" + s, s + " ", " " + s, s + "0", "", "-" + s} {
			if isDecimal(bad, n) {
				t.Errorf("isDecimal(%q, %d) = true", bad, n)
			}
		}
	}
	if isDecimal("9223372036854775807", 1<<63-1) {
		t.Errorf("a 19-digit value accepted")
	}
	for _, tt := range []struct {
		fields []string // the answer's Content-Length values
		want   string
	}{{[]string{"012"}, "12"}, {[]string{"12"}, "12"}, {nil, "12"}, {[]string{"12", "12"}, "12"}} {
		var h wire.Header
		h.Add("X-Before", "1")
		for _, v := range tt.fields {
			h.Add("Content-Length", v)
		}
		setContentLength(&h, 12)
		if got := h.Values("Content-Length"); len(got) != 1 || got[0] != tt.want {
			t.Errorf("setContentLength on %q: %q, want [%s]", tt.fields, got, tt.want)
		}
	}
}

// trailerBody is a backend body that fills its response's Trailer at its
// end, as the pool's does.
type trailerBody struct {
	r    io.Reader
	resp *wire.Response
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
			resp := &wire.Response{StatusCode: 200, ContentLength: tt.length}
			resp.Header.Add("Content-Type", "text/plain")
			if tt.declared {
				resp.Trailer = http.Header{"X-A": nil}
			} else {
				resp.Trailer = http.Header{}
			}
			resp.Body = &trailerBody{r: strings.NewReader("hello"), resp: resp,
				set: http.Header{"X-A": {"1"}, "X-B": {"2"}, "Set-Cookie": {"evil=1"}}}
			in := wire.FromHTTPRequest(r)
			st := &stage.State{In: in}
			st.SetAnswer(resp, xmlconf.Pos{})
			w := httptest.NewRecorder()
			respond(w, in, st, nil, false, 0)
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

// TestInitStatePeer checks that the peer the connection gives and the one
// parsed from RemoteAddr make the same state: the address (unmapped) and,
// for a dotted IPv4 RemoteAddr only, its text.
func TestInitStatePeer(t *testing.T) {
	for _, tt := range []struct {
		remote   string
		peer     netip.AddrPort // as a dual-stack socket may give it
		want     string
		wantText string
	}{
		{"192.0.2.7:1234", netip.MustParseAddrPort("[::ffff:192.0.2.7]:1234"), "192.0.2.7", "192.0.2.7"},
		{"192.0.2.7:1234", netip.MustParseAddrPort("192.0.2.7:1234"), "192.0.2.7", "192.0.2.7"},
		{"[2001:db8::1]:80", netip.MustParseAddrPort("[2001:db8::1]:80"), "2001:db8::1", ""},
		{"[::ffff:192.0.2.9]:80", netip.MustParseAddrPort("[::ffff:192.0.2.9]:80"), "192.0.2.9", ""},
	} {
		for _, peer := range []netip.AddrPort{tt.peer, {}} {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			in := wire.FromHTTPRequest(r)
			in.Peer = peer
			var st stage.State
			if err := initState(&st, in, nil); err != nil {
				t.Fatal(err)
			}
			if st.Peer.String() != tt.want || st.PeerText != tt.wantText {
				t.Errorf("%s (peer %v): Peer %v PeerText %q, want %s %q", tt.remote, peer, st.Peer, st.PeerText, tt.want, tt.wantText)
			}
		}
	}
}

// endRecorder is a ResponseWriter that notes when EndAnswer is called, as
// the plain-HTTP server's does, in events.
type endRecorder struct {
	*httptest.ResponseRecorder
	events *[]string
}

func (w endRecorder) EndAnswer() { *w.events = append(*w.events, "answer ended") }

// doneRecorder is an observer that notes each request's end in events.
type doneRecorder struct{ events *[]string }

func (doneRecorder) Begin(*stage.State) func(error) { return nil }
func (o doneRecorder) Done(_ *stage.State, status int, _ int64, _ time.Duration, _ error) {
	*o.events = append(*o.events, "done "+strconv.Itoa(status))
}

// TestAnswerEndedBeforeObservers checks that the writer is told the answer
// is whole (and sends it) before the observers learn the request is over:
// the access line and the metrics do not delay the answer.
func TestAnswerEndedBeforeObservers(t *testing.T) {
	cfg, err := xmlconf.Parse("end.conf", []byte(`<ocsigen><server><port>8080</port>
<extension findlib-package="ocsigenserver.ext.redirectmod"/>
<host hostfilter="*"><redirect suburl="old" dest="/new"/></host></server></ocsigen>`))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := Compile(cfg, &stage.Env{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	h := NewHandler(tree, cfg, doneRecorder{&events})
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/old", []string{"answer ended", "done 301"}},
		{"/missing", []string{"answer ended", "done 404"}},
	} {
		events = nil
		w := endRecorder{httptest.NewRecorder(), &events}
		h.ServeHTTP(w, httptest.NewRequest("GET", "http://h"+tt.path, nil))
		if !slices.Equal(events, tt.want) {
			t.Errorf("GET %s: %q, want %q", tt.path, events, tt.want)
		}
	}
}
