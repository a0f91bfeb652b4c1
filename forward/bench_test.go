package forward

import (
	"context"
	"net/http"
	"net/netip"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

// BenchmarkNewRequest builds the backend request of a browser's GET.
func BenchmarkNewRequest(b *testing.B) {
	in := &http.Request{Method: "GET", RequestURI: "/index.html?x=1", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		RemoteAddr: "192.0.2.7:40000", Host: "www.example.com", Body: http.NoBody,
		Header: http.Header{
			"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"},
			"Accept":          {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
			"Accept-Language": {"en-US,en;q=0.5"},
			"Accept-Encoding": {"gzip, deflate, br, zstd"},
			"Connection":      {"keep-alive"},
			"Cookie":          {"session=abc"},
		}}
	st := &stage.State{In: wire.FromHTTPRequest(in), Method: "GET", Peer: netip.MustParseAddr("192.0.2.7")}
	t := &Target{Scheme: "http", Host: "10.1.0.7:8080", Path: "/index.html", RawQuery: "x=1", HasQuery: true}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		NewRequest(ctx, st, t, t.Host, Options{})
	}
}

// BenchmarkCleanResponse cleans the head of a typical backend response.
func BenchmarkCleanResponse(b *testing.B) {
	req := &wire.Request{}
	req.Header.Add("User-Agent", "x")
	resp := &wire.Response{StatusCode: 200}
	var buf [8]wire.Field
	b.ReportAllocs()
	for b.Loop() {
		h := wire.MakeHeader(buf[:])
		h.Add("Content-Type", "text/html")
		h.Add("Content-Length", "64")
		h.Add("Connection", "keep-alive")
		h.Add("Keep-Alive", "timeout=5")
		h.Add("Date", "Sun, 22 Nov 2026 10:00:00 GMT")
		resp.Header = h
		if err := CleanResponse(req, resp); err != nil {
			b.Fatal(err)
		}
	}
}
