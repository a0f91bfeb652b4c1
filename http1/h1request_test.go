package http1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
)

type ctxKey struct{}

// sharedScratch is the request memory plainHeadAgrees reuses.
var sharedScratch struct {
	sync.Mutex
	sc reqScratch
}

// plainHeadAgrees parses stream with parsePlainHead and, when it takes
// the head, checks that http.ReadRequest reads the same request from the
// same bytes: same fields, same body and body error, same bytes left.
func plainHeadAgrees(t *testing.T, stream string) (taken bool) {
	t.Helper()
	br := bufio.NewReaderSize(strings.NewReader(stream), 4096)
	br.Peek(min(len(stream), 4096))
	buffered := br.Buffered()
	ctx := context.WithValue(context.Background(), ctxKey{}, "conn")
	base := (&http.Request{}).WithContext(ctx)
	// One scratch for every stream: what a request leaves in it must not
	// show in the next.
	sharedScratch.Lock()
	defer sharedScratch.Unlock()
	got, ok := parsePlainHead(br, base, &sharedScratch.sc)
	if !ok {
		if br.Buffered() != buffered {
			t.Fatalf("declined head consumed %d bytes", buffered-br.Buffered())
		}
		if sharedScratch.sc.ordered {
			t.Fatalf("declined head left its fields as the request's: %q", stream)
		}
		return false
	}
	// The fields in order are the request's: its map stays empty. They
	// are compared with ReadRequest's map below, each name's values in
	// the order of the head.
	if !sharedScratch.sc.ordered {
		t.Fatalf("taken head without its fields in order: %q", stream)
	}
	if len(got.Header) != 0 {
		t.Errorf("stream %q: header map filled: %q", stream, got.Header)
	}
	got.Header = sharedScratch.sc.fields.HTTP()
	wbr := bufio.NewReaderSize(strings.NewReader(stream), 4096)
	want, err := http.ReadRequest(wbr)
	if err != nil {
		t.Fatalf("parsePlainHead took a head http.ReadRequest refuses (%v): %q", err, stream)
	}
	if got.Context() != ctx {
		t.Errorf("request without the connection's context")
	}
	type fields struct {
		Method, Proto, Host, RequestURI string
		ProtoMajor, ProtoMinor          int
		ContentLength                   int64
		Close                           bool
		TransferEncoding                []string
		Header, Trailer                 http.Header
	}
	pick := func(r *http.Request) fields {
		return fields{r.Method, r.Proto, r.Host, r.RequestURI, r.ProtoMajor, r.ProtoMinor,
			r.ContentLength, r.Close, r.TransferEncoding, r.Header, r.Trailer}
	}
	if g, w := pick(got), pick(want); !reflect.DeepEqual(g, w) {
		t.Errorf("stream %q:\nparsePlainHead %+v\nReadRequest    %+v", stream, g, w)
	}
	if !reflect.DeepEqual(got.URL, want.URL) {
		t.Errorf("stream %q: URL %#v, ReadRequest %#v", stream, got.URL, want.URL)
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
