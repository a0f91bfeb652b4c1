package forward

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// clientAddrNames are the client-address fields of SPEC.md section 7 as
// clients spell them.
var clientAddrNames = []string{"X-Real-IP", "True-Client-IP", "CF-Connecting-IP", "X-Client-IP",
	"X-Cluster-Client-IP", "Client-IP", "Fastly-Client-IP", "X-Original-Forwarded-For", "Forwarded",
	"X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Prefix", "X-Forwarded-Scheme", "X-Forwarded-SSL",
	"X-URL-Scheme", "Front-End-Https"}

// newState returns the state of a request from peer carrying h, as the
// server builds it: header keys canonical, Host set.
func newState(h http.Header, peer string, accepted []string, secure bool) *stage.State {
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header = make(http.Header)
	for k, vv := range h {
		r.Header[http.CanonicalHeaderKey(k)] = vv
	}
	p := netip.MustParseAddr(peer)
	r.RemoteAddr = netip.AddrPortFrom(p, 40000).String()
	st := &stage.State{In: wire.FromHTTPRequest(r), Method: "GET", Host: "www.example.com", Peer: p, Client: p, Forwarded: accepted, Secure: secure}
	if len(accepted) > 0 {
		st.Client = netip.MustParseAddr(accepted[0])
	}
	return st
}

// TestClientAddressHeadersUntrusted checks that no client-address field an
// untrusted client writes reaches the backend, in any spelling.
func TestClientAddressHeadersUntrusted(t *testing.T) {
	for _, name := range clientAddrNames {
		for _, spelling := range []string{name, strings.ToLower(name), strings.ReplaceAll(name, "-", "_")} {
			t.Run(spelling, func(t *testing.T) {
				r := httptest.NewRequest("GET", "/x", nil)
				r.Header = http.Header{spelling: {"192.0.2.9"}, "Accept": {"*/*"}}
				r.RemoteAddr = "198.51.100.4:40000"
				st := &stage.State{In: wire.FromHTTPRequest(r), Method: "GET", Host: "www.example.com", Peer: netip.MustParseAddr("198.51.100.4")}
				st.Client = st.Peer
				h := outHeader(st, false)
				for k, vv := range h {
					for _, v := range vv {
						if strings.Contains(v, "192.0.2.9") {
							t.Errorf("%s: %q reached the backend", k, v)
						}
					}
				}
				if got := h[HeaderXRealIP]; !reflect.DeepEqual(got, []string{"198.51.100.4"}) {
					t.Errorf("X-Real-IP = %q, want the peer", got)
				}
				if got := h["Accept"]; len(got) != 1 {
					t.Errorf("Accept = %q, want it kept", got)
				}
			})
		}
	}
}

// TestClientAddressHeaders checks each forwarding field for an untrusted
// and a trusted peer.
func TestClientAddressHeaders(t *testing.T) {
	forged := http.Header{
		"X-Forwarded-For":          {"192.0.2.9"},
		"X-Real-IP":                {"192.0.2.9"},
		"True-Client-IP":           {"192.0.2.9"},
		"CF-Connecting-IP":         {"192.0.2.9"},
		"X-Client-IP":              {"192.0.2.9"},
		"X-Cluster-Client-IP":      {"192.0.2.9"},
		"Client-IP":                {"192.0.2.9"},
		"Fastly-Client-IP":         {"192.0.2.9"},
		"X-Original-Forwarded-For": {"192.0.2.9"},
		"Forwarded":                {"for=192.0.2.9"},
		"X-Forwarded-Host":         {"evil.example"},
		"X-Forwarded-Proto":        {"https"},
		"X-Forwarded-Port":         {"8443"},
		"X-Forwarded-Server":       {"evil.example"},
		"X-Forwarded-Prefix":       {"/evil"},
		"X-Forwarded-Scheme":       {"https"},
		"X-Forwarded-Ssl":          {"on"},
		"X-Url-Scheme":             {"https"},
		"Front-End-Https":          {"on"},
	}
	tests := []struct {
		name      string
		peer      string
		accepted  []string
		own       bool // <forwarded/>
		secure    bool
		want      http.Header // the forwarding fields the backend gets
		wantOther []string    // client fields passed on unchanged
	}{
		{
			name: "untrusted IPv4",
			peer: "198.51.100.4",
			want: http.Header{
				"X-Forwarded-For":   {"198.51.100.4"},
				"X-Forwarded-Proto": {"http"},
				"X-Real-Ip":         {"198.51.100.4"},
				"X-Forwarded-Host":  {"www.example.com"},
			},
		},
		{
			name: "untrusted IPv6 with Forwarded",
			peer: "2001:db8::7", own: true, secure: true,
			want: http.Header{
				"X-Forwarded-For":   {"2001:db8::7"},
				"X-Forwarded-Proto": {"https"},
				"X-Real-Ip":         {"2001:db8::7"},
				"X-Forwarded-Host":  {"www.example.com"},
				"Forwarded":         {`for="[2001:db8::7]";proto=https;host=www.example.com`},
			},
		},
		{
			name: "trusted proxy",
			peer: "10.0.0.2", accepted: []string{"203.0.113.5", "10.0.0.1"},
			want: http.Header{
				"X-Forwarded-For":   {"203.0.113.5, 10.0.0.1, 10.0.0.2"},
				"X-Forwarded-Proto": {"http"},
				"X-Real-Ip":         {"203.0.113.5"},
				"X-Forwarded-Host":  {"evil.example"},
				"Forwarded":         {"for=192.0.2.9"},
			},
			wantOther: []string{"True-Client-Ip", "Cf-Connecting-Ip", "X-Client-Ip", "X-Cluster-Client-Ip", "Client-Ip", "Fastly-Client-Ip", "X-Original-Forwarded-For",
				"X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Prefix", "X-Forwarded-Scheme", "X-Forwarded-Ssl", "X-Url-Scheme", "Front-End-Https"},
		},
		{
			name: "trusted proxy, own Forwarded",
			peer: "::1", accepted: []string{"2001:db8::7"}, own: true,
			want: http.Header{
				"X-Forwarded-For":   {"2001:db8::7, ::1"},
				"X-Forwarded-Proto": {"http"},
				"X-Real-Ip":         {"2001:db8::7"},
				"X-Forwarded-Host":  {"evil.example"},
				"Forwarded":         {`for="[2001:db8::7]", for="[::1]";proto=http;host=www.example.com`},
			},
			wantOther: []string{"True-Client-Ip", "Cf-Connecting-Ip", "X-Client-Ip", "X-Cluster-Client-Ip", "Client-Ip", "Fastly-Client-Ip", "X-Original-Forwarded-For",
				"X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Prefix", "X-Forwarded-Scheme", "X-Forwarded-Ssl", "X-Url-Scheme", "Front-End-Https"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newState(forged, tt.peer, tt.accepted, tt.secure)
			h := outHeader(st, tt.own)
			got := ForwardingHeaders(h)
			for _, k := range tt.wantOther {
				if !reflect.DeepEqual(h[k], st.In.HTTP.Header[k]) {
					t.Errorf("%s = %q, want the trusted proxy's %q", k, h[k], st.In.HTTP.Header[k])
				}
				delete(got, k)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("forwarding fields:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestXForwardedHost checks that the client's Host replaces an untrusted
// X-Forwarded-Host only when one was sent, and that none is invented.
func TestXForwardedHost(t *testing.T) {
	tests := []struct {
		name string
		in   http.Header
		host string
		want []string
	}{
		{"absent stays absent", http.Header{}, "a.example", nil},
		{"replaced", http.Header{"X-Forwarded-Host": {"evil.example"}}, "a.example:8080", []string{"a.example:8080"}},
		{"two lines, one value", http.Header{"X-Forwarded-Host": {"evil.example", "b"}}, "a.example", []string{"a.example"}},
		{"no Host: removed", http.Header{"X-Forwarded-Host": {"evil.example"}}, "", nil},
		{"alias replaced", http.Header{"X_Forwarded_Host": {"evil.example"}}, "a.example", []string{"a.example"}},
		{"named by Connection: removed", http.Header{"X-Forwarded-Host": {"evil.example"}, "Connection": {"X-Forwarded-Host"}}, "a.example", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newState(tt.in, "198.51.100.4", nil, false)
			st.Host = tt.host
			h := outHeader(st, false)
			if got := h[HeaderXForwardedHost]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("X-Forwarded-Host = %q, want %q", got, tt.want)
			}
			if _, ok := h["X_forwarded_host"]; ok {
				t.Errorf("alias passed on")
			}
		})
	}
}

// TestForwardedValue checks the RFC 7239 field for hosts that need
// quoting and for IPv4, IPv6 and mapped peers.
func TestForwardedValue(t *testing.T) {
	tests := []struct {
		peer, host string
		accepted   []string
		secure     bool
		want       string
	}{
		{"192.0.2.1", "a.example", nil, false, "for=192.0.2.1;proto=http;host=a.example"},
		{"192.0.2.1", "a.example:8443", nil, true, `for=192.0.2.1;proto=https;host="a.example:8443"`},
		{"192.0.2.1", "[2001:db8::1]:80", nil, false, `for=192.0.2.1;proto=http;host="[2001:db8::1]:80"`},
		{"192.0.2.1", "", nil, false, "for=192.0.2.1;proto=http"},
		{"192.0.2.1", "bad\x01host", nil, false, "for=192.0.2.1;proto=http"},
		{"192.0.2.1", `q"uote\`, nil, false, `for=192.0.2.1;proto=http;host="q\"uote\\"`},
		{"::ffff:192.0.2.1", "a", nil, false, "for=192.0.2.1;proto=http;host=a"},
		{"2001:db8::7", "a", []string{"198.51.100.1", "2001:db8::1"}, false, `for=198.51.100.1, for="[2001:db8::1]", for="[2001:db8::7]";proto=http;host=a`},
	}
	for _, tt := range tests {
		st := newState(nil, tt.peer, tt.accepted, tt.secure)
		st.Host = tt.host
		out := NewRequest(context.Background(), st, &Target{Scheme: "http", Host: "b", Path: "/"}, "b", Options{Forwarded: true})
		if got := out.Header.Get(HeaderForwarded); got != tt.want {
			t.Errorf("peer %s host %q: Forwarded = %s, want %s", tt.peer, tt.host, got, tt.want)
		}
	}
	// <forwarded/> of the extension turns it on without the rule's option.
	st := newState(nil, "192.0.2.1", nil, false)
	st.Env = &stage.Env{Forwarded: true}
	if out := NewRequest(context.Background(), st, &Target{Scheme: "http", Host: "b", Path: "/"}, "b", Options{}); out.Header.Get(HeaderForwarded) == "" {
		t.Errorf("Env.Forwarded: no Forwarded sent")
	}
	st.Env.Forwarded = false
	if out := NewRequest(context.Background(), st, &Target{Scheme: "http", Host: "b", Path: "/"}, "b", Options{}); out.Header.Get(HeaderForwarded) != "" {
		t.Errorf("Forwarded sent without being asked for")
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		ext  string
		want bool
		errs []string
	}{
		{"absent", `<extension findlib-package="ocsigenserver.ext.revproxy"/>`, false, nil},
		{"present", `<extension findlib-package="ocsigenserver.ext.revproxy"><forwarded/></extension>`, true, nil},
		{"attribute", `<extension findlib-package="ocsigenserver.ext.revproxy"><forwarded x="1"/></extension>`, false, []string{`<forwarded>: unknown attribute "x"`}},
		{"twice", `<extension findlib-package="ocsigenserver.ext.revproxy"><forwarded/><forwarded/></extension>`, true, []string{"only one is allowed"}},
		{"child", `<extension findlib-package="ocsigenserver.ext.revproxy"><forwarded><x/></forwarded></extension>`, false, []string{"want an empty element"}},
		{"other extension", `<extension findlib-package="ocsigenserver.ext.staticmod"><forwarded/></extension>`, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := `<ocsigen><server><port>8080</port>` + tt.ext + `</server></ocsigen>`
			cfg, err := xmlconf.Parse("t.conf", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			var errs xmlconf.ErrorList
			if got := ParseConfig(cfg, &errs); got != tt.want {
				t.Errorf("ParseConfig = %v, want %v", got, tt.want)
			}
			if len(errs) != len(tt.errs) {
				t.Fatalf("errors %v, want %d", errs, len(tt.errs))
			}
			for i, e := range errs {
				if !strings.Contains(e.Error(), tt.errs[i]) || !strings.HasPrefix(e.Error(), "t.conf:1:") {
					t.Errorf("error %q, want t.conf:1:... %q", e, tt.errs[i])
				}
			}
		})
	}
}

// FuzzOutHeader checks, for any header set, trusted or not, that every
// forwarding field the backend receives is the proxy's own value or, from
// a trusted proxy, the proxy's field in its canonical spelling, and that
// no field name reaches the backend in a spelling that a CGI-style
// backend would read as a forwarding field.
func FuzzOutHeader(f *testing.F) {
	f.Add("X-Real-IP: 192.0.2.9\nX-Forwarded-Host: evil\nForwarded: for=1.2.3.4", false, false)
	f.Add("x_real_ip: 192.0.2.9\nconnection: x-real-ip\ntrue-client-ip: 6.6.6.6", true, true)
	f.Add("X-Forwarded-For: 1.1.1.1, 2.2.2.2\nCF-Connecting-IP: 1.1.1.1\nX-Forwarded-Proto: https", true, false)
	f.Fuzz(func(t *testing.T, block string, trusted, own bool) {
		in := make(http.Header)
		for i, line := range strings.Split(block, "\n") {
			name, value, ok := strings.Cut(line, ":")
			if !ok || !httpsyntax.IsToken(name) {
				continue
			}
			if i%2 == 0 {
				name = http.CanonicalHeaderKey(name)
			}
			in[name] = append(in[name], strings.TrimSpace(value))
		}
		var accepted []string
		peer := "198.51.100.4"
		if trusted {
			accepted = []string{"203.0.113.5"}
		}
		st := newState(nil, peer, accepted, false)
		st.In.HTTP.Header = in
		h := outHeader(st, own)
		for k, vv := range h {
			c, p, ok := forwardingField(k)
			if !ok {
				continue
			}
			if k != c {
				t.Fatalf("%q reached the backend, a spelling of %s", k, c)
			}
			var want []string
			switch {
			case c == HeaderXForwardedFor && trusted:
				want = []string{"203.0.113.5, " + peer}
			case c == HeaderXForwardedFor:
				want = []string{peer}
			case c == HeaderXRealIP:
				want = []string{st.Client.String()}
			case c == HeaderXForwardedProto:
				want = []string{"http"}
			case c == HeaderForwarded && own:
				want = []string{forwardedValue(st, peer)}
			case c == HeaderXForwardedHost && !trusted:
				want = []string{st.Host}
			case p == trustedOnly && trusted:
				want = in[k]
			default:
				t.Fatalf("%s: %q reached the backend from an untrusted peer", k, vv)
			}
			if !reflect.DeepEqual(vv, want) {
				t.Fatalf("%s = %q, want %q", k, vv, want)
			}
		}
		if len(h[HeaderXRealIP]) != 1 || len(h[HeaderXForwardedFor]) != 1 {
			t.Fatalf("X-Real-IP %q, X-Forwarded-For %q: want one of each", h[HeaderXRealIP], h[HeaderXForwardedFor])
		}
	})
}
