package forward

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/pool"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

// TestCleanResponse checks that CleanResponse removes from a backend's
// answer the fields its Connection names and the fixed hop-by-hop list,
// as RemoveHopByHop does from an http.Header, and keeps the upgrade
// fields of a 101 only when the request asked for that protocol.
func TestCleanResponse(t *testing.T) {
	var h wire.Header
	for _, f := range [][2]string{
		{"Connection", "keep-alive, X-Secret"}, {"X-Secret", "1"}, {"Set-Cookie", "a=1"},
		{"Keep-Alive", "timeout=5"}, {"Proxy-Connection", "keep-alive"},
		{"Proxy-Authorization", "Basic x"}, {"Proxy-Authenticate", "Basic"},
		{"Te", "trailers"}, {"Trailer", "X-T"}, {"Transfer-Encoding", "chunked"},
		{"Upgrade", "h2c"}, {"X-Kept", "yes"}, {"Connection", "close, x-other"},
		{"X-Other", "2"}, {"Set-Cookie", "b=2"},
	} {
		h.Add(f[0], f[1])
	}
	resp := &wire.Response{StatusCode: 200, Header: h, Body: http.NoBody}
	if err := CleanResponse(&wire.Request{}, resp); err != nil {
		t.Fatal(err)
	}
	want := []wire.Field{{Name: "Set-Cookie", Value: "a=1"}, {Name: "X-Kept", Value: "yes"}, {Name: "Set-Cookie", Value: "b=2"}}
	if got := resp.Header.Fields(); !reflect.DeepEqual(got, want) {
		t.Errorf("after CleanResponse: %q, want %q", got, want)
	}

	switched := func(up string) *wire.Response {
		r := &wire.Response{StatusCode: http.StatusSwitchingProtocols, Body: rwc{}}
		r.Header.Add("Connection", "Upgrade, X-Gone")
		r.Header.Add("X-Gone", "1")
		r.Header.Add("Upgrade", up)
		return r
	}
	ws := &wire.Request{}
	ws.Header.Add("Upgrade", "websocket")
	resp = switched("WebSocket")
	if err := CleanResponse(ws, resp); err != nil {
		t.Fatal(err)
	}
	want = []wire.Field{{Name: "Connection", Value: "Upgrade"}, {Name: "Upgrade", Value: "WebSocket"}}
	if got := resp.Header.Fields(); !reflect.DeepEqual(got, want) {
		t.Errorf("101 after CleanResponse: %q, want %q", got, want)
	}
	if err := CleanResponse(ws, switched("h2c")); err == nil {
		t.Error("a 101 to another protocol accepted")
	}
	if err := CleanResponse(&wire.Request{}, switched("websocket")); err == nil {
		t.Error("a 101 to a request that asked for none accepted")
	}
	notTunnel := switched("websocket")
	notTunnel.Body = io.NopCloser(strings.NewReader(""))
	if err := CleanResponse(ws, notTunnel); err == nil {
		t.Error("a 101 whose body is not a connection accepted")
	}
}

// rwc is a connection-like body (an io.ReadWriteCloser).
type rwc struct{}

func (rwc) Read([]byte) (int, error)    { return 0, io.EOF }
func (rwc) Write(p []byte) (int, error) { return len(p), nil }
func (rwc) Close() error                { return nil }

// TestRoundTripTrailers checks that the trailer fields of a chunked
// answer reach its Trailer once the body is read, whether its Trailer
// field announced them or not.
func TestRoundTripTrailers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/announced" {
			w.Header().Set("Trailer", "X-T")
		}
		w.WriteHeader(200)
		io.WriteString(w, "body")
		w.(http.Flusher).Flush() // chunked, or the unannounced trailer is lost
		if r.URL.Path == "/announced" {
			w.Header().Set("X-T", "1")
		} else {
			w.Header().Set(http.TrailerPrefix+"X-T", "1")
		}
	}))
	defer srv.Close()
	tr := pool.New(pool.Config{Defaults: pool.DefaultSettings(10 * time.Second)})
	defer tr.Close()
	backend := strings.TrimPrefix(srv.URL, "http://")
	for _, path := range []string{"/announced", "/not-announced"} {
		out := &wire.Request{Method: "GET", Scheme: "http", Backend: backend, Target: path, Host: backend}
		resp, err := RoundTrip(&stage.State{Env: &stage.Env{Transport: tr}}, out)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Trailer.Get("X-T"); got != "1" {
			t.Errorf("%s: trailer X-T = %q, want 1 (trailer %v)", path, got, resp.Trailer)
		}
	}
}
