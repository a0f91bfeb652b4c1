package stage

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/wire"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

func TestInsideWithSlash(t *testing.T) {
	paths := []string{"", "/", "//", "/a", "/a/", "/a//", "/a/b", "/a/b/", "/ab", "/a%62", "/a%62/c", "/%zz", "/%zz/", "a", "a/b", "/a/b/c", "/b/a"}
	sites := [][]string{nil, {}, {"a"}, {"ab"}, {"a", "b"}, {"a", ""}, {""}, {"a", "b", "c"}, {"%zz"}, {"b"}}
	for _, p := range paths {
		for _, site := range sites {
			_, want := SubPathOf(p+"/", site)
			if got := InsideWithSlash(p, site); got != want {
				t.Errorf("InsideWithSlash(%q, %q) = %v, want %v", p, site, got, want)
			}
		}
	}
}

// oldFullURL and oldHostPort are FullURL and HostPort as they were
// written before they avoided building intermediate strings.
func oldHostPort(st *State) string {
	name := st.Host
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
	hp := name
	if a, err := netip.ParseAddr(name); err == nil && a.Is6() {
		hp = "[" + name + "]"
	}
	if st.LocalPort != 80 && st.LocalPort != 443 && st.LocalPort != 0 {
		hp += ":" + strconv.Itoa(st.LocalPort)
	}
	return hp
}

func oldFullURL(st *State) (string, bool) {
	if st.Host == "" {
		return "", false
	}
	u := st.Scheme() + "://" + oldHostPort(st) + st.Path
	if st.HasQuery {
		u += "?" + st.RawQuery
	}
	return u, true
}

func TestURLs(t *testing.T) {
	hosts := []string{"", "h", "H.Example", "h:8080", "[::1]", "[::1]:81", "::1", "1.2.3.4", "1.2.3.4:9", "[fe80::1%25eth0]:1", "a:b:c", "[v1.x]"}
	ports := []int{0, 80, 443, 8080, 8081, 65535, 80 + 8}
	for _, h := range hosts {
		for _, port := range ports {
			for _, secure := range []bool{false, true} {
				for _, q := range []struct {
					sub, raw string
					has      bool
					uri      string
				}{
					{"x", "", false, "/x"},
					{"x", "", true, "/x?"},
					{"x/y", "a=1", true, "/x/y?a=1"},
					{"y", "a=1", true, "/x/y?a=1"},
					{"y", "a=2", true, "/x/y?a=1"},
					{"x", "a", true, "http://h/x?a"},
					{"", "", true, ""},
					{"z", "q", true, "?q"},
				} {
					st := &State{Host: h, LocalPort: port, Secure: secure, Path: "/" + q.sub, SubPath: q.sub, RawQuery: q.raw, HasQuery: q.has,
						In: &wire.Inbound{Target: q.uri}}
					wantU, wantOK := oldFullURL(st)
					if u, ok := st.FullURL(); u != wantU || ok != wantOK {
						t.Errorf("%+v: FullURL = %q, %v, want %q, %v", st, u, ok, wantU, wantOK)
					}
					if hp, want := st.HostPort(), oldHostPort(st); hp != want {
						t.Errorf("%+v: HostPort = %q, want %q", st, hp, want)
					}
					want := q.sub
					if q.has {
						want += "?" + q.raw
					}
					if got := st.SubURL(); got != want {
						t.Errorf("%+v: SubURL = %q, want %q", st, got, want)
					}
					st.In = nil
					if got := st.SubURL(); got != want {
						t.Errorf("%+v: SubURL = %q, want %q", st, got, want)
					}
				}
			}
		}
	}
}

func TestFullURLHasPrefix(t *testing.T) {
	for _, h := range []string{"", "h", "h:8080", "[::1]:81", "Ex.org"} {
		for _, port := range []int{80, 8080} {
			for _, q := range []bool{false, true} {
				st := &State{Host: h, LocalPort: port, Path: "/a/b", RawQuery: "x=1", HasQuery: q}
				u, ok := st.FullURL()
				prefixes := []string{"", "h", "http", "http:", "http://", "https://", "http://h", "http://h/", "http://h:", "http://h:8080/a", "http://h:8081",
					"http://[::1]", "http://[::1]:8080/a/b?", "http://Ex.org/a/b?x=1", "http://Ex.org/a/b?x=12", "http://ex.org", "http://h/a/b?x", "http://h:8080/a/b?x=1"}
				for i := 0; i <= len(u); i++ {
					prefixes = append(prefixes, u[:i], u[:i]+"z")
				}
				for _, p := range prefixes {
					want := ok && strings.HasPrefix(u, p)
					if got := st.FullURLHasPrefix(p); got != want {
						t.Errorf("%+v: FullURLHasPrefix(%q) = %v, want %v (FullURL %q)", st, p, got, want, u)
					}
				}
			}
		}
	}
}

type standInBody struct{ io.ReadCloser }

func (standInBody) StandIn() {}

type wrapBody struct{ io.ReadCloser }

func (w wrapBody) Unwrap() io.ReadCloser { return w.ReadCloser }

func TestIsStandIn(t *testing.T) {
	plain := io.NopCloser(strings.NewReader("x"))
	tests := []struct {
		name string
		body io.ReadCloser
		want bool
	}{
		{"nil", nil, false},
		{"plain", plain, false},
		{"stand-in", standInBody{plain}, true},
		{"wrapped stand-in", wrapBody{wrapBody{standInBody{plain}}}, true},
		{"wrapped plain", wrapBody{plain}, false},
		{"wrapper of nil", wrapBody{nil}, false},
	}
	for _, tt := range tests {
		if got := IsStandIn(tt.body); got != tt.want {
			t.Errorf("%s: IsStandIn = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestAnswerRequest checks that AnswerRequest names the backend request
// of a proxied answer only: SetProxied sets it, SetAnswer and DropAnswer
// clear it.
func TestAnswerRequest(t *testing.T) {
	var st State
	out := &wire.Request{Method: "GET"}
	st.SetProxied(&wire.Response{StatusCode: 200, Body: http.NoBody}, out, xmlconf.Pos{})
	if st.AnswerRequest != out {
		t.Errorf("after SetProxied: AnswerRequest %v", st.AnswerRequest)
	}
	st.DropAnswer()
	if st.Answer != nil || st.AnswerRequest != nil {
		t.Errorf("after DropAnswer: Answer %v, AnswerRequest %v", st.Answer, st.AnswerRequest)
	}
	st.SetProxied(&wire.Response{StatusCode: 200, Body: http.NoBody}, out, xmlconf.Pos{})
	st.SetAnswer(&wire.Response{StatusCode: 301, Body: http.NoBody}, xmlconf.Pos{})
	if st.AnswerRequest != nil {
		t.Errorf("after SetAnswer: AnswerRequest %v", st.AnswerRequest)
	}
}

// TestFields: the request's fields are In's (wire.Inbound.Fields, tested
// in wire), and a state without a request has none; Request gives
// net/http a request with them.
func TestFields(t *testing.T) {
	ordered := wire.FromHTTP(http.Header{"B": {"2"}, "A": {"1", "3"}})
	in := &wire.Inbound{Method: "GET", Target: "/x"}
	in.SetFields(&ordered)
	tests := []struct {
		name       string
		st         *State
		wantA      []string
		wantHeader http.Header // Request().Header
	}{
		{"fields in order", &State{In: in}, []string{"1", "3"}, http.Header{"A": {"1", "3"}, "B": {"2"}}},
		{"from net/http", &State{In: wire.FromHTTPRequest(&http.Request{Header: http.Header{"A": {"x"}}})},
			[]string{"x"}, http.Header{"A": {"x"}}},
		{"no request", &State{}, nil, http.Header{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.st.Fields()
			if f == nil || f != tt.st.Fields() {
				t.Fatalf("Fields() = %p, then %p: want one header, kept", f, tt.st.Fields())
			}
			if got := f.Values("a"); !reflect.DeepEqual(got, tt.wantA) {
				t.Errorf("Values(a) = %q, want %q", got, tt.wantA)
			}
			if r := tt.st.Request(); !reflect.DeepEqual(r.Header, tt.wantHeader) {
				t.Errorf("Request().Header = %q, want %q", r.Header, tt.wantHeader)
			}
		})
	}
}
