package forward

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

func TestNewRequestHeaders(t *testing.T) {
	tests := []struct {
		name      string
		in        http.Header
		forwarded []string
		secure    bool
		wantXFF   string
		wantProto string
		wantUA    []string
	}{
		{"client XFF dropped", http.Header{"X-Forwarded-For": {"6.6.6.6"}, "X-Forwarded-Proto": {"https"}}, nil, false, "192.0.2.7", "http", nil},
		{"accepted chain kept", http.Header{"X-Forwarded-For": {"6.6.6.6, 198.51.100.1"}}, []string{"198.51.100.1"}, true, "198.51.100.1, 192.0.2.7", "https", nil},
		{"user agent kept", http.Header{"User-Agent": {"curl/8"}}, nil, false, "192.0.2.7", "http", []string{"curl/8"}},
		{"forwarded stripped", http.Header{"Forwarded": {"for=6.6.6.6"}}, nil, false, "192.0.2.7", "http", nil},
		{"connection cannot strip XFF", http.Header{"Connection": {"X-Forwarded-For"}}, nil, false, "192.0.2.7", "http", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := httptest.NewRequest("GET", "/x", nil)
			in.Header = tt.in
			st := &stage.State{In: wire.FromHTTPRequest(in), Method: "GET", Peer: netip.MustParseAddr("192.0.2.7"), Forwarded: tt.forwarded, Secure: tt.secure}
			out := NewRequest(context.Background(), st, &Target{Scheme: "http", Host: "b:8080", Path: "/y", RawQuery: "q=1", HasQuery: true}, "b:8080", Options{})
			if got := out.Header.Get("X-Forwarded-For"); got != tt.wantXFF {
				t.Errorf("X-Forwarded-For = %q, want %q", got, tt.wantXFF)
			}
			if got := out.Header.Get("X-Forwarded-Proto"); got != tt.wantProto {
				t.Errorf("X-Forwarded-Proto = %q, want %q", got, tt.wantProto)
			}
			if got := out.Header.Values("User-Agent"); !reflect.DeepEqual(got, tt.wantUA) {
				t.Errorf("User-Agent = %q, want %q", got, tt.wantUA)
			}
			if out.Header.Get("Forwarded") != "" {
				t.Errorf("Forwarded passed on")
			}
			if got := out.Target; got != "/y?q=1" {
				t.Errorf("request target = %q, want /y?q=1", got)
			}
			if in.Header.Get("X-Forwarded-Proto") != tt.in.Get("X-Forwarded-Proto") {
				t.Errorf("inbound request modified")
			}
		})
	}
}

// TestOutHeaderAsClone checks that the header built for the backend is
// what cloning the client's header, removing the hop-by-hop fields and
// the forwarding fields, and setting X-Forwarded-For, X-Forwarded-Proto
// and X-Real-IP gives (less the fields without values, which are not
// sent).
func TestOutHeaderAsClone(t *testing.T) {
	headers := []http.Header{
		{},
		{"Accept": {"*/*"}, "User-Agent": {"wrk"}},
		{"Connection": {"keep-alive, X-Secret", "close, x-other"}, "X-Secret": {"1"}, "X-Other": {"2"}, "X-Kept": {"yes"}},
		{"Connection": {"X-Forwarded-Proto, Forwarded"}, "X-Forwarded-Proto": {"https"}, "Forwarded": {"for=x"}},
		{"Set-Cookie": {"a=1", "b=2"}, "X-Empty": {}, "X-Nil": nil, "Keep-Alive": {"timeout=5"}, "Te": {"trailers"}},
		{"Upgrade": {"websocket"}, "Proxy-Authorization": {"Basic x"}, "X-Forwarded-For": {"6.6.6.6"}, "x-lower": {"kept as is"}},
		{"X-Real-Ip": {"6.6.6.6"}, "True-Client-Ip": {"6.6.6.6"}, "X_real_ip": {"6.6.6.6"}, "x-client-ip": {"6.6.6.6"}},
		{"Connection": {"x-lower"}, "x-lower": {"not canonical: not named"}, "X-Lower": {"named"}},
	}
	peers := []struct{ remote, peer string }{
		{"192.0.2.7:1234", "192.0.2.7"},
		{"192.0.2.1:1234", "192.0.2.7"}, // RemoteAddr disagreeing with Peer: Peer wins
		{"[2001:db8::1]:80", "2001:db8::1"},
		{"[::ffff:192.0.2.9]:80", "::ffff:192.0.2.9"},
	}
	for i, in := range headers {
		for _, p := range peers {
			for _, fwd := range [][]string{nil, {"198.51.100.1", "203.0.113.5"}} {
				r := httptest.NewRequest("GET", "/x", nil)
				r.Header, r.RemoteAddr = in, p.remote
				st := &stage.State{In: wire.FromHTTPRequest(r), Peer: netip.MustParseAddr(p.peer), Forwarded: fwd, Secure: i%2 == 1}
				want := in.Clone()
				withoutHops(want)
				for k, vv := range want {
					if c, _, ok := forwardingField(k); ok && (len(fwd) == 0 || k != c || c == HeaderXRealIP) || len(vv) == 0 {
						delete(want, k) // a field without values is not sent
					}
				}
				xff := st.Peer.Unmap().String()
				realIP := xff
				if len(fwd) > 0 {
					xff = strings.Join(fwd, ", ") + ", " + xff
					realIP = fwd[0]
				}
				want.Set(HeaderXForwardedFor, xff)
				want.Set(HeaderXForwardedProto, st.Scheme())
				want.Set(HeaderXRealIP, realIP)
				got := outHeader(st, false)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("header %d, peer %s, forwarded %q:\n got %#v\nwant %#v", i, p.remote, fwd, got, want)
				}
			}
		}
	}
}

func TestAliasesReserved(t *testing.T) {
	for _, k := range []string{"Transfer_encoding", "Content_length", "Proxy_connection", "Keep_alive"} {
		if !aliasesReserved(k) {
			t.Errorf("aliasesReserved(%q) = false, want true", k)
		}
	}
	for _, k := range []string{"X_custom", "Content-Length", "My_header", "X-Forwarded-For"} {
		if aliasesReserved(k) {
			t.Errorf("aliasesReserved(%q) = true, want false", k)
		}
	}
}

func TestCanonicalName(t *testing.T) {
	names := []string{"keep-alive", "KEEP-ALIVE", "Keep-Alive", "close", "CLOSE", "upgrade", "te", "TE", "trailer", "x-other",
		"transfer-encoding", "proxy-connection", "proxy-authorization", "proxy-authenticate", "connection",
		"\u212aeep-alive", "keep-alive ", "keep_alive", "clos", "closed", "", "x y", "é"}
	for _, n := range names {
		if got, want := canonicalName(n), http.CanonicalHeaderKey(n); got != want {
			t.Errorf("canonicalName(%q) = %q, want %q", n, got, want)
		}
	}
	for _, k := range append(hopHeaders, "Close", "X-Other", "Connections", "") {
		if got, want := IsHopByHop(k), slices.Contains(hopHeaders, k); got != want {
			t.Errorf("IsHopByHop(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestTrailersAccepted(t *testing.T) {
	tests := []struct {
		name  string
		proto string
		te    []string
		want  bool
	}{
		{"HTTP/1.1 TE trailers", "HTTP/1.1", []string{"trailers"}, true},
		{"HTTP/1.1 TE list", "HTTP/1.1", []string{"gzip;q=0.5, Trailers"}, true},
		{"HTTP/1.1 TE second line", "HTTP/1.1", []string{"gzip", " trailers "}, true},
		{"HTTP/1.1 no TE", "HTTP/1.1", nil, false},
		{"HTTP/1.1 TE gzip", "HTTP/1.1", []string{"gzip"}, false},
		{"HTTP/1.1 TE not a token match", "HTTP/1.1", []string{"trailersx, x-trailers"}, false},
		{"HTTP/1.0 TE trailers", "HTTP/1.0", []string{"trailers"}, false},
		{"HTTP/2 without TE", "HTTP/2.0", nil, true},
		{"HTTP/2 TE trailers", "HTTP/2.0", []string{"trailers"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := httptest.NewRequest("GET", "/x", nil)
			var ok bool
			in.Proto = tt.proto
			if in.ProtoMajor, in.ProtoMinor, ok = http.ParseHTTPVersion(tt.proto); !ok {
				t.Fatalf("bad proto %q", tt.proto)
			}
			if tt.te != nil {
				in.Header["Te"] = tt.te
			}
			if got := httpsyntax.AcceptsTrailers(in.ProtoMajor, in.ProtoMinor, in.Header["Te"]); got != tt.want {
				t.Errorf("AcceptsTrailers = %v, want %v", got, tt.want)
			}
			st := &stage.State{In: wire.FromHTTPRequest(in), Method: "GET", Peer: netip.MustParseAddr("192.0.2.7")}
			out := NewRequest(context.Background(), st, &Target{Scheme: "http", Host: "b", Path: "/"}, "b", Options{})
			var want []string
			if tt.want {
				want = []string{"trailers"}
			}
			if got := out.Header.Values("Te"); !slices.Equal(got, want) {
				t.Errorf("backend TE %q, want %q", got, want)
			}
			if !slices.Equal(in.Header["Te"], tt.te) {
				t.Errorf("inbound TE modified: %q", in.Header["Te"])
			}
		})
	}
}

// TestHopHeadersListed checks that hopHeaders (the names Connection
// lines are canonicalised against) and IsHopByHop name the same fields,
// in any case.
func TestHopHeadersListed(t *testing.T) {
	for _, k := range hopHeaders {
		if !IsHopByHop(k) || !IsHopByHop(strings.ToLower(k)) || !IsHopByHop(strings.ToUpper(k)) {
			t.Errorf("%s is in hopHeaders, not in IsHopByHop in every case", k)
		}
	}
	for _, k := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		if !slices.Contains(hopHeaders, k) {
			t.Errorf("%s is hop-by-hop but not in hopHeaders", k)
		}
	}
	for _, k := range []string{"", "T", "Tee", "X-Upgrade", "Connections", "Keep_Alive", "Proxy-Connectio"} {
		if IsHopByHop(k) {
			t.Errorf("IsHopByHop(%q) = true", k)
		}
	}
}

// withoutHops deletes from h the fields Connection names and the fixed
// hop-by-hop list: the model the tests build expected headers with.
func withoutHops(h http.Header) {
	for _, line := range h["Connection"] {
		for name := range strings.SplitSeq(line, ",") {
			if name = strings.TrimSpace(name); name != "" {
				delete(h, http.CanonicalHeaderKey(name))
			}
		}
	}
	for k := range h {
		if slices.Contains(hopHeaders, k) {
			delete(h, k)
		}
	}
}

// outHeader is the header block appendOutHeader gives, as an http.Header
// for the assertions written on net/http's type.
func outHeader(st *stage.State, ownForwarded bool) http.Header {
	h := appendOutHeader(wire.Header{}, st, ownForwarded)
	return h.HTTP()
}
