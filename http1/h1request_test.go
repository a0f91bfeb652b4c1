package http1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/wire"
)

// sharedScratch is the request memory plainHeadAgrees reuses.
var sharedScratch struct {
	sync.Mutex
	sc reqScratch
}

// plainHeadAgrees parses stream with parsePlainHead and, when it takes
// the head, checks that http.ReadRequest reads the same request from the
// same bytes: same request line, fields, framing, body and body error,
// same bytes left; the URL that net/http code is given (Request) is
// ReadRequest's.
func plainHeadAgrees(t *testing.T, stream string) (taken bool) {
	t.Helper()
	br := bufio.NewReaderSize(strings.NewReader(stream), 4096)
	br.Peek(min(len(stream), 4096))
	buffered := br.Buffered()
	// One scratch for every stream: what a request leaves in it must not
	// show in the next.
	sharedScratch.Lock()
	defer sharedScratch.Unlock()
	got, ok := parsePlainHead(br, &sharedScratch.sc)
	if !ok {
		if br.Buffered() != buffered {
			t.Fatalf("declined head consumed %d bytes", buffered-br.Buffered())
		}
		return false
	}
	// The fields in order, in the scratch, are the request's; they are
	// compared with ReadRequest's map below, each name's values in the
	// order of the head.
	if got.Fields() != &sharedScratch.sc.fields || got.HTTP != nil {
		t.Fatalf("taken head without its fields in order: %q", stream)
	}
	wbr := bufio.NewReaderSize(strings.NewReader(stream), 4096)
	want, err := http.ReadRequest(wbr)
	if err != nil {
		t.Fatalf("parsePlainHead took a head http.ReadRequest refuses (%v): %q", err, stream)
	}
	type fields struct {
		Method, Proto, Host, RequestURI string
		ProtoMajor, ProtoMinor          int
		ContentLength                   int64
		Close                           bool
		TransferEncoding                []string
		Header, Trailer                 http.Header
	}
	g := fields{got.Method, got.Proto, got.Host, got.Target, got.Major, got.Minor,
		got.ContentLength, got.Close, nil, got.Fields().HTTP(), nil}
	w := fields{want.Method, want.Proto, want.Host, want.RequestURI, want.ProtoMajor, want.ProtoMinor,
		want.ContentLength, want.Close, want.TransferEncoding, want.Header, want.Trailer}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("stream %q:\nparsePlainHead %+v\nReadRequest    %+v", stream, g, w)
	}
	if u := got.Request().URL; !reflect.DeepEqual(u, want.URL) {
		t.Errorf("stream %q: URL %#v, ReadRequest %#v", stream, u, want.URL)
	}
	gotBody, gotErr := io.ReadAll(got.Body)
	wantBody, wantErr := io.ReadAll(want.Body)
	if string(gotBody) != string(wantBody) || !errors.Is(gotErr, wantErr) && !errors.Is(wantErr, gotErr) {
		t.Errorf("stream %q: body %q (%v), ReadRequest %q (%v)", stream, gotBody, gotErr, wantBody, wantErr)
	}
	gotRest, _ := io.ReadAll(br)
	wantRest, _ := io.ReadAll(wbr)
	if string(gotRest) != string(wantRest) {
		t.Errorf("stream %q: left %q, ReadRequest left %q", stream, gotRest, wantRest)
	}
	return true
}

// plainHeadSeeds are the table of TestPlainHead and the seeds of
// FuzzPlainHead.
var plainHeadSeeds = []struct {
	stream string
	taken  bool
}{
	{"GET /index.html?x=1 HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n", true},
	{"GET / HTTP/1.0\r\n\r\n", true},
	// Targets url.ParseRequestURI is skipped for, and their neighbours.
	{"GET /a? HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"GET /a?? HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"GET /a?b=c?d HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"GET //x/~u/./../a-b_c.d HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"GET /a+b!$&'()*,;=:@ HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"GET /%41%2f?%zz HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"GET /? HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
	{"GET / HTTP/1.1\r\nHost: h\r\nConnection: te, CLOSE\r\n\r\n", true},
	{"GET /a%20b/%2F?q=%zz HTTP/1.1\r\nhost: h\r\nx-lower-case: v\r\nX-UPPER: v\r\n\r\n", true},
	{"GET /p HTTP/1.1\r\nHost: h\r\nAccept: a\r\nAccept: b\r\nX:  \t spaced \t \r\nEmpty:\r\n\r\nGET /next HTTP/1.1\r\n\r\n", true},
	{"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n", true},
	{"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\nhel", true}, // short body: ErrUnexpectedEOF
	{"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", true},
	{"OPTIONS //x/../y HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", false}, // absolute form
	{"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", false},
	{"GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", false},
	{"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
	{"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", false},
	{"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx", false},
	{"GET / HTTP/1.1\r\nPragma: no-cache\r\n\r\n", false},
	{"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", false},
	{"GET / HTTP/1.1\nHost: h\n\n", false},
	{"GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n", false},
	{"GET / HTTP/1.1\r\nX Y: v\r\n\r\n", false},
	{"GET / HTTP/1.1\r\nNoColon\r\n\r\n", false},
	{"GET / HTTP/2.0\r\n\r\n", false},
	{"GET  / HTTP/1.1\r\n\r\n", false},
	{"G(T / HTTP/1.1\r\n\r\n", false},
	{"GET / HTTP/1.1\r\nHost: h\r\n", false}, // not whole
	{"\r\n\r\n", false},
}

func TestPlainHead(t *testing.T) {
	for _, tt := range plainHeadSeeds {
		if taken := plainHeadAgrees(t, tt.stream); taken != tt.taken {
			t.Errorf("parsePlainHead(%q) taken = %v, want %v", tt.stream, taken, tt.taken)
		}
	}
}

// FuzzPlainHead: wherever parsePlainHead takes a head, http.ReadRequest
// reads the same request from the same bytes.
func FuzzPlainHead(f *testing.F) {
	for _, tt := range plainHeadSeeds {
		f.Add(tt.stream)
	}
	f.Fuzz(func(t *testing.T, stream string) {
		plainHeadAgrees(t, stream)
	})
}

// inboundFunc is an InboundHandler made of a function.
type inboundFunc func(w http.ResponseWriter, r *wire.Inbound)

func (f inboundFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f(w, wire.FromHTTPRequest(r))
}

func (f inboundFunc) ServeInbound(w http.ResponseWriter, r *wire.Inbound) { f(w, r) }

// TestServeInbound: an InboundHandler is given the request as a
// wire.Inbound with the connection's addresses, port and context: with no
// http.Request behind it when the head was plain, with the one
// http.ReadRequest made (and the same body) otherwise. Both read the
// fields and the body.
func TestServeInbound(t *testing.T) {
	type seen struct {
		plain                bool
		method, target, host string
		fields, body         string
		peerOK, ctxLive      bool
		port                 int
	}
	got := make(chan seen, 1)
	_, addr := startH1(t, inboundFunc(func(w http.ResponseWriter, r *wire.Inbound) {
		b, _ := io.ReadAll(r.Body)
		var f []string
		for _, fl := range r.Fields().Fields() {
			f = append(f, fl.Name+"="+fl.Value)
		}
		sameBody := r.HTTP == nil || r.HTTP.Body == r.Body
		got <- seen{r.HTTP == nil, r.Method, r.Target, r.Host, strings.Join(f, ","), string(b),
			r.Peer.IsValid() && r.Peer.String() == r.RemoteAddr && sameBody,
			r.Context().Err() == nil, r.LocalPort}
		io.WriteString(w, "ok")
	}))
	port := portOf(t, addr)
	for _, tt := range []struct {
		req  string
		want seen
	}{
		{"POST /a?b HTTP/1.1\r\nHost: h\r\nX-B: 2\r\nX-A: 1\r\nContent-Length: 3\r\n\r\nabc",
			seen{true, "POST", "/a?b", "h", "X-B=2,X-A=1,Content-Length=3", "abc", true, true, port}},
		{"POST /a?b HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\nContent-Length: 3\r\n\r\nabc",
			// net/http adds Cache-Control for Pragma: no-cache.
			seen{false, "POST", "/a?b", "h", "Cache-Control=no-cache,Content-Length=3,Pragma=no-cache", "abc", true, true, port}},
	} {
		resps, bodies, _ := exchange(t, addr, tt.req, 1)
		if len(resps) != 1 || bodies[0] != "ok" {
			t.Fatalf("%q: %d answers %q", tt.req, len(resps), bodies)
		}
		if g := <-got; g != tt.want {
			t.Errorf("%q:\n got %+v\nwant %+v", tt.req, g, tt.want)
		}
	}
}

// portOf returns the port of addr, "host:port".
func portOf(t *testing.T, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
