package wire

import (
	"context"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

type ctxKey struct{}

// TestInboundFields: the fields are those the server set, in their order;
// for a request made from net/http's, its map's, converted once, in the
// order of their names.
func TestInboundFields(t *testing.T) {
	ordered := MakeHeader(nil)
	ordered.Add("B", "2")
	ordered.Add("A", "1")
	ordered.Add("A", "3")
	set := &Inbound{}
	set.SetFields(&ordered)
	hr := &http.Request{Header: http.Header{"A": {"1", "3"}, "B": {"2"}}}
	for _, tt := range []struct {
		name string
		in   *Inbound
		want []Field
	}{
		{"set", set, []Field{{"B", "2"}, {"A", "1"}, {"A", "3"}}},
		{"from net/http", FromHTTPRequest(hr), []Field{{"A", "1"}, {"A", "3"}, {"B", "2"}}},
		{"none", &Inbound{}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.in.Fields()
			if f == nil || f != tt.in.Fields() {
				t.Fatalf("Fields() = %p, then %p: want one header, kept", f, tt.in.Fields())
			}
			if got := f.Fields(); !reflect.DeepEqual(got, tt.want) && len(got)+len(tt.want) > 0 {
				t.Errorf("fields %q, want %q", got, tt.want)
			}
		})
	}
	if len(hr.Header) != 2 {
		t.Errorf("the net/http request's map changed: %q", hr.Header)
	}
}

// TestInboundRequest: net/http code is given the request it came from when
// its body is still the Inbound's, a copy with the Inbound's body when the
// handler wrapped it, and for a request the server parsed itself a new one
// with every part of it.
func TestInboundRequest(t *testing.T) {
	ctx := context.WithValue(context.Background(), ctxKey{}, "conn")

	hr := (&http.Request{Method: "GET", Header: http.Header{}, Body: http.NoBody}).WithContext(ctx)
	in := FromHTTPRequest(hr)
	if in.Request() != hr {
		t.Error("Request() is not the net/http request the Inbound came from")
	}
	wrapped := io.NopCloser(strings.NewReader("x"))
	in.Body = wrapped
	if r := in.Request(); r == hr || r.Body != wrapped || hr.Body != http.NoBody {
		t.Errorf("with a wrapped body: Request() %p (the original %p), Body %v; the original's Body %v", r, hr, r.Body, hr.Body)
	}

	fields := MakeHeader(nil)
	fields.Add("Accept", "*/*")
	fields.Add("X-A", "1")
	fields.Add("X-A", "2")
	own := &Inbound{Method: "POST", Target: "/a/b?c=d", Proto: "HTTP/1.0", Major: 1, Minor: 0, Host: "h:81",
		ContentLength: 1, Body: wrapped, Close: true, RemoteAddr: "192.0.2.1:4000"}
	own.SetFields(&fields)
	own.SetContext(ctx)
	r := own.Request()
	want := http.Header{"Accept": {"*/*"}, "X-A": {"1", "2"}}
	switch {
	case r.Method != "POST" || r.RequestURI != "/a/b?c=d" || r.URL.Path != "/a/b" || r.URL.RawQuery != "c=d":
		t.Errorf("request line: %s %q (URL %v)", r.Method, r.RequestURI, r.URL)
	case r.Proto != "HTTP/1.0" || r.ProtoMajor != 1 || r.ProtoMinor != 0:
		t.Errorf("version %s %d.%d", r.Proto, r.ProtoMajor, r.ProtoMinor)
	case r.Host != "h:81" || !reflect.DeepEqual(r.Header, want):
		t.Errorf("Host %q, Header %q; want h:81, %q", r.Host, r.Header, want)
	case r.ContentLength != 1 || r.Body != wrapped || !r.Close || r.RemoteAddr != "192.0.2.1:4000":
		t.Errorf("ContentLength %d Body %v Close %v RemoteAddr %q", r.ContentLength, r.Body, r.Close, r.RemoteAddr)
	case r.Context().Value(ctxKey{}) != "conn":
		t.Error("the request does not have the Inbound's context")
	}
	if r := (&Inbound{Method: "GET", Target: "/"}).Request(); r.Body != http.NoBody {
		t.Errorf("no body: Body %v, want http.NoBody", r.Body)
	}
}

// TestFromHTTPRequest: the local port comes from the connection's address
// that net/http puts in the context.
func TestFromHTTPRequest(t *testing.T) {
	for _, a := range []net.Addr{
		&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080},
		&net.UnixAddr{Name: "127.0.0.1:8080", Net: "unix"}, // any Addr whose text is ip:port
	} {
		ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, a)
		r := (&http.Request{Method: "GET", RequestURI: "/x", Proto: "HTTP/2.0", ProtoMajor: 2, Host: "h", Header: http.Header{}}).WithContext(ctx)
		in := FromHTTPRequest(r)
		if in.LocalPort != 8080 || in.Target != "/x" || in.Major != 2 || in.Host != "h" || in.Context() != ctx {
			t.Errorf("%T: LocalPort %d Target %q Major %d Host %q", a, in.LocalPort, in.Target, in.Major, in.Host)
		}
	}
	if p := PortOf(&net.UnixAddr{Name: "/run/x.sock", Net: "unix"}); p != 0 {
		t.Errorf("PortOf(a socket path) = %d, want 0", p)
	}
}
