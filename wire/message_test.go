package wire_test

import (
	"context"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/wire"
)

func body(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

func TestAppendHead(t *testing.T) {
	for _, tt := range []struct {
		desc string
		req  wire.Request
		want string
	}{
		{
			desc: "GET without body",
			req:  wire.Request{Method: "GET", Target: "/a/b?c=d", Host: "example.com"},
			want: "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\n\r\n",
		},
		{
			desc: "DELETE without body: no Content-Length",
			req:  wire.Request{Method: "DELETE", Target: "/x", Host: "h"},
			want: "DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n",
		},
		{
			desc: "POST without body",
			req:  wire.Request{Method: "POST", Target: "/", Host: "h"},
			want: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
		},
		{
			desc: "PUT without body",
			req:  wire.Request{Method: "PUT", Target: "/", Host: "h"},
			want: "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
		},
		{
			desc: "PATCH without body",
			req:  wire.Request{Method: "PATCH", Target: "/", Host: "h"},
			want: "PATCH / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
		},
		{
			desc: "POST with a body of known length",
			req:  wire.Request{Method: "POST", Target: "/p", Host: "h", ContentLength: 11, Body: body("hello world")},
			want: "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n",
		},
		{
			desc: "GET with a body of known length",
			req:  wire.Request{Method: "GET", Target: "/", Host: "h", ContentLength: 1234567890123, Body: body("x")},
			want: "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1234567890123\r\n\r\n",
		},
		{
			desc: "POST with a body of unknown length",
			req:  wire.Request{Method: "POST", Target: "/", Host: "h", ContentLength: -1, Body: body("x")},
			want: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
		},
		{
			desc: "GET with a body of unknown length",
			req:  wire.Request{Method: "GET", Target: "/", Host: "h", ContentLength: -1, Body: body("x")},
			want: "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
		},
		{
			desc: "POST with a body and ContentLength 0: no body",
			req:  wire.Request{Method: "POST", Target: "/", Host: "h", ContentLength: 0, Body: body("ignored")},
			want: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
		},
		{
			desc: "GET with a body and ContentLength 0: no body",
			req:  wire.Request{Method: "GET", Target: "/", Host: "h", ContentLength: 0, Body: body("ignored")},
			want: "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		},
		{
			desc: "PUT with http.NoBody of unknown length: no body",
			req:  wire.Request{Method: "PUT", Target: "/", Host: "h", ContentLength: -1, Body: http.NoBody},
			want: "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
		},
		{
			desc: "GET with http.NoBody and a length: no body",
			req:  wire.Request{Method: "GET", Target: "/", Host: "h", ContentLength: 5, Body: http.NoBody},
			want: "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		},
		{
			desc: "GET with a length and no Body: no body",
			req:  wire.Request{Method: "GET", Target: "/", Host: "h", ContentLength: 5},
			want: "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		},
		{
			desc: "Close",
			req:  wire.Request{Method: "GET", Target: "/", Host: "h", Close: true},
			want: "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		},
		{
			desc: "Close after the framing",
			req: wire.Request{Method: "POST", Target: "/", Host: "h", Close: true,
				Header: hdr("Accept", "*/*"), ContentLength: 3, Body: body("abc")},
			want: "POST / HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nContent-Length: 3\r\nConnection: close\r\n\r\n",
		},
		{
			desc: "Close, chunked",
			req:  wire.Request{Method: "PUT", Target: "/", Host: "h", Close: true, ContentLength: -1, Body: body("abc")},
			want: "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
		},
		{
			desc: "fields in order, after Host, none added",
			req: wire.Request{Method: "GET", Target: "/", Host: "h",
				Header: hdr("X-B", "2", "Accept", "a", "X-A", "1", "x-b", "3", "Empty", "")},
			want: "GET / HTTP/1.1\r\nHost: h\r\nX-B: 2\r\nAccept: a\r\nX-A: 1\r\nX-B: 3\r\nEmpty: \r\n\r\n",
		},
		{
			desc: "the head writer's own fields, added through Header's methods, left out",
			req: wire.Request{Method: "POST", Target: "/", Host: "real",
				Header: hdr(
					"host", "fake",
					"X-1", "1",
					"CONTENT-LENGTH", "99",
					"transfer-encoding", "chunked",
					"X-2", "2",
					"connection", "keep-alive",
					"TRAILER", "X-T",
				),
				ContentLength: 4, Body: body("abcd")},
			want: "POST / HTTP/1.1\r\nHost: real\r\nX-1: 1\r\nX-2: 2\r\nContent-Length: 4\r\n\r\n",
		},
		{
			desc: "the head writer's own fields, with their names as given, left out",
			req: wire.Request{Method: "GET", Target: "/", Host: "real",
				Header: wire.AppendHTTP(hdr("hOsT", "fake"), http.Header{
					"content-length":    {"9"},
					"TRANSFER-ENCODING": {"chunked"},
					"cOnNeCtIoN":        {"close"},
					"trailer":           {"X-T"},
					"Host":              {"fake2"},
					"X-Kept":            {"k"},
				})},
			want: "GET / HTTP/1.1\r\nHost: real\r\nX-Kept: k\r\n\r\n",
		},
		{
			desc: "names close to the head writer's own fields kept",
			req: wire.Request{Method: "GET", Target: "/", Host: "h",
				Header: hdr(
					"Hosts", "1", "Hos", "2", "X-Host", "3",
					"Content-Lengths", "4", "Content-Type", "5",
					"Transfer-Encodings", "6", "Te", "7",
					"Connections", "8", "Proxy-Connection", "9", "Keep-Alive", "10",
					"Trailers", "11", "Upgrade", "12",
				)},
			want: "GET / HTTP/1.1\r\nHost: h\r\nHosts: 1\r\nHos: 2\r\nX-Host: 3\r\n" +
				"Content-Lengths: 4\r\nContent-Type: 5\r\nTransfer-Encodings: 6\r\nTe: 7\r\n" +
				"Connections: 8\r\nProxy-Connection: 9\r\nKeep-Alive: 10\r\nTrailers: 11\r\nUpgrade: 12\r\n\r\n",
		},
		{
			desc: "CR and LF in a value become spaces",
			req: wire.Request{Method: "GET", Target: "/", Host: "h",
				Header: hdr("X-A", "a\r\nInjected: 1", "X-B", "\r", "X-C", "\nb\n", "X-D", "tab\tok")},
			want: "GET / HTTP/1.1\r\nHost: h\r\nX-A: a  Injected: 1\r\nX-B:  \r\nX-C:  b \r\nX-D: tab\tok\r\n\r\n",
		},
		{
			desc: "method, target and Host written as they are",
			req:  wire.Request{Method: "M-SEARCH", Target: "/%7e?a=b&c", Host: "[::1]:8080"},
			want: "M-SEARCH /%7e?a=b&c HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
		},
		{
			desc: "Scheme, Backend, ClientAddr not written",
			req:  wire.Request{Method: "GET", Target: "/", Host: "h", Scheme: "https", Backend: "pool1"},
			want: "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		},
	} {
		got := string(tt.req.AppendHead(nil))
		if got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.desc, got, tt.want)
		}
		// AppendHead appends: what b holds stays in front.
		const prefix = "previous bytes"
		b := make([]byte, 0, 4)
		b = append(b, prefix...)
		if got := string(tt.req.AppendHead(b)); got != prefix+tt.want {
			t.Errorf("%s: appended to %q:\n got %q\nwant %q", tt.desc, prefix, got, prefix+tt.want)
		}
	}
}

// TestAppendHeadLeavesHeader checks that writing the head (its CR/LF
// replacement included) changes neither the request's fields nor the
// strings they hold.
func TestAppendHeadLeavesHeader(t *testing.T) {
	req := wire.Request{Method: "GET", Target: "/", Host: "h", Header: hdr("X-A", "a\r\nb", "Host", "x")}
	_ = req.AppendHead(nil)
	checkFields(t, "after AppendHead", &req.Header, fields("X-A", "a\r\nb", "Host", "x"))
}

func TestBodyKind(t *testing.T) {
	for _, tt := range []struct {
		desc string
		cl   int64
		body io.ReadCloser
		want wire.BodyKind
	}{
		{"nil body", 0, nil, wire.BodyNone},
		{"nil body with a length", 10, nil, wire.BodyNone},
		{"nil body of unknown length", -1, nil, wire.BodyNone},
		{"http.NoBody", 0, http.NoBody, wire.BodyNone},
		{"http.NoBody with a length", 10, http.NoBody, wire.BodyNone},
		{"http.NoBody of unknown length", -1, http.NoBody, wire.BodyNone},
		{"body of length 0", 0, body("x"), wire.BodyNone},
		{"body with a length", 1, body("x"), wire.BodyLength},
		{"body of unknown length", -1, body("x"), wire.BodyChunked},
	} {
		r := wire.Request{Method: "POST", ContentLength: tt.cl, Body: tt.body}
		if got := r.BodyKind(); got != tt.want {
			t.Errorf("%s: BodyKind() = %d, want %d", tt.desc, got, tt.want)
		}
	}
	if wire.BodyNone != 0 {
		t.Errorf("BodyNone = %d: a zero BodyKind should be none", wire.BodyNone)
	}
}

type ctxKey struct{}

func TestRequestContext(t *testing.T) {
	var r wire.Request
	if got := r.Context(); got != context.Background() {
		t.Errorf("zero Request's Context() = %v, want context.Background()", got)
	}

	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	r.SetContext(ctx)
	if got := r.Context(); got != ctx {
		t.Errorf("Context() after SetContext = %v, want the context set", got)
	}
	if r.Context().Value(ctxKey{}) != "v" {
		t.Error("Context() after SetContext lacks the value set")
	}
	cancel()
	select {
	case <-r.Context().Done():
	default:
		t.Error("Context() not done after the cancel of the context set")
	}

	// A copy of the request keeps the context.
	c := r
	if c.Context() != ctx {
		t.Error("a copied Request lost its context")
	}

	r.SetContext(nil)
	if got := r.Context(); got != context.Background() {
		t.Errorf("Context() after SetContext(nil) = %v, want context.Background()", got)
	}
}

func TestResponseHTTP(t *testing.T) {
	b := body("content")
	trailer := http.Header{"X-T": nil}
	for _, minor := range []int{0, 1} {
		r := wire.Response{
			StatusCode:    404,
			Status:        "404 Not Found",
			ProtoMinor:    minor,
			Header:        hdr("Content-Type", "text/plain", "X-A", "1", "x-a", "2"),
			ContentLength: 7,
			Body:          b,
			Trailer:       trailer,
		}
		hr := r.HTTP()
		proto := "HTTP/1." + string(rune('0'+minor))
		if hr.StatusCode != 404 || hr.Status != "404 Not Found" {
			t.Errorf("status %d %q, want 404 %q", hr.StatusCode, hr.Status, "404 Not Found")
		}
		if hr.Proto != proto || hr.ProtoMajor != 1 || hr.ProtoMinor != minor {
			t.Errorf("Proto %q %d.%d, want %q 1.%d", hr.Proto, hr.ProtoMajor, hr.ProtoMinor, proto, minor)
		}
		wantHeader := http.Header{"Content-Type": {"text/plain"}, "X-A": {"1", "2"}}
		if !reflect.DeepEqual(hr.Header, wantHeader) {
			t.Errorf("Header %v, want %v", hr.Header, wantHeader)
		}
		if hr.ContentLength != 7 {
			t.Errorf("ContentLength %d, want 7", hr.ContentLength)
		}
		if hr.Body != b {
			t.Error("Body is not the response's")
		}
		// The same trailer map: values filled in later are seen.
		hr.Trailer.Set("X-T", "late")
		if r.Trailer.Get("X-T") != "late" {
			t.Error("Trailer is not the response's map")
		}
		delete(trailer, "X-T")
		trailer["X-T"] = nil
		// The header is a new map.
		hr.Header.Set("X-A", "changed")
		if got := r.Header.Values("X-A"); !reflect.DeepEqual(got, []string{"1", "2"}) {
			t.Errorf("editing HTTP()'s header changed the response's: %q", got)
		}
		if hr.Request != nil || hr.TLS != nil || hr.Close || hr.Uncompressed || hr.TransferEncoding != nil {
			t.Errorf("fields not set by HTTP() set: %+v", hr)
		}
	}

	// No trailer stays nil; an unknown length stays -1.
	r := wire.Response{StatusCode: 200, Status: "200 OK", ProtoMinor: 1, ContentLength: -1, Body: http.NoBody}
	hr := r.HTTP()
	if hr.Trailer != nil || hr.ContentLength != -1 || hr.Body != http.NoBody || hr.Header == nil || len(hr.Header) != 0 {
		t.Errorf("HTTP() of a bare 200: %+v", hr)
	}
}
