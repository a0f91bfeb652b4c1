package http1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"testing"
)

func TestFramingVerdicts(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []error
	}{
		{"plain GETs", "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n", []error{nil, nil}},
		{"CL body skipped", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + "GET /2 HTTP/1.1\r\n\r\n", []error{nil, nil}},
		{"body that looks like a head", "POST / HTTP/1.1\r\nContent-Length: 38\r\n\r\nGET / HTTP/1.1\r\nTransfer-Encoding: x\r\n\r\n" + "GET /2 HTTP/1.1\r\n\r\n", []error{nil, nil}},
		{"chunked with extension and trailer", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", []error{nil, nil}},
		{"CL and TE", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", []error{errCLAndTE}},
		{"TE and CL, mixed case", "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-LENGTH: 3\r\n\r\n", []error{errCLAndTE}},
		{"TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", []error{errTE10}},
		{"folded CL", "POST / HTTP/1.1\r\nContent-Length: 3\r\n 4\r\n\r\n", []error{errFoldedTE}},
		{"bare LF", "GET / HTTP/1.1\nHost: h\n\nGET /2 HTTP/1.1\n\n", []error{nil, nil}},
		{"equal Content-Lengths followed", "POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc" + "POST /2 HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", []error{nil, errCLAndTE}},
		{"differing Content-Lengths stop", "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd" + "GET /2 HTTP/1.1\r\n\r\n", []error{nil}},
		{"leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\n\r\n", []error{nil}},
	}
	for _, tt := range tests {
		f := framing{max: 1 << 16}
		f.feed([]byte(tt.stream))
		if !reflect.DeepEqual(f.verdicts, tt.want) {
			t.Errorf("%s: verdicts %v, want %v", tt.name, f.verdicts, tt.want)
		}
	}
}

// TestFramingUntracked checks that a request with no verdict (the tracker
// stopped following the connection) is refused, not trusted.
func TestFramingUntracked(t *testing.T) {
	f := framing{max: 1 << 16}
	f.feed([]byte("GET / HTTP/1.1\r\n\r\n"))
	if err := f.next(); err != nil {
		t.Errorf("first verdict %v, want nil", err)
	}
	if err := f.next(); !errors.Is(err, errUntracked) {
		t.Errorf("verdict with none recorded: %v, want errUntracked", err)
	}
}

// FuzzFraming checks that the framing tracker never panics and that how
// the stream is cut into reads never changes its verdicts.
func FuzzFraming(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
	} {
		f.Add([]byte(s), uint16(7))
	}
	f.Fuzz(func(t *testing.T, stream []byte, cut uint16) {
		whole := framing{max: 256}
		whole.feed(stream)
		split := framing{max: 256}
		c := int(cut) % (len(stream) + 1)
		split.feed(stream[:c])
		split.feed(stream[c:])
		if len(whole.verdicts) != len(split.verdicts) {
			t.Fatalf("cut at %d: %d verdicts, whole stream %d", c, len(split.verdicts), len(whole.verdicts))
		}
		for i := range whole.verdicts {
			if !errors.Is(split.verdicts[i], whole.verdicts[i]) {
				t.Fatalf("cut at %d: verdict %d = %v, whole stream %v", c, i, split.verdicts[i], whole.verdicts[i])
			}
		}
		if whole.state != fsStopped && len(whole.line) > whole.max {
			t.Fatalf("line buffer %d over its bound %d", len(whole.line), whole.max)
		}
	})
}

// netHTTPRequests returns how many requests net/http's server reads from
// stream before it would close the connection, and whether it read the
// whole stream cleanly (every request and body complete, no close).
func netHTTPRequests(stream []byte) (n int, clean bool) {
	br := bufio.NewReaderSize(bytes.NewReader(stream), 4096)
	last := ""
	for {
		if last == http.MethodPost {
			// net/http's tolerance of a CRLF after a POST body.
			peek, _ := br.Peek(4)
			k := 0
			for k < len(peek) && (peek[k] == '\r' || peek[k] == '\n') {
				k++
			}
			br.Discard(k)
		}
		if _, err := br.Peek(1); err == io.EOF {
			return n, true
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			return n, false
		}
		n++
		if _, err := io.Copy(io.Discard, req.Body); err != nil || req.Close {
			return n, false
		}
		last = req.Method
	}
}

// FuzzFramingNetHTTP checks that the tracker keeps pace with net/http: for
// every request net/http would read off the stream, the tracker has a
// verdict, unless an earlier verdict already closes the connection or the
// tracker stopped (then missing verdicts are errUntracked); and when both
// read the whole stream, they count the same requests.
func FuzzFramingNetHTTP(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nokGET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\nHost: h\nContent-Length: 1\n\nxGET / HTTP/1.1\nHost: h\n\n",
		// After a POST, net/http discards up to four CR or LF before the
		// next request line; a tracker reading "\r\r\n\n" as a head of
		// its own gave the next request that head's verdict.
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\r\r\n\nGET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		tr := framing{max: 1 << 16}
		tr.feed(stream)
		n, clean := netHTTPRequests(stream)
		for i := 0; i < n; i++ {
			if i >= len(tr.verdicts) {
				if tr.state != fsStopped {
					t.Fatalf("net/http reads %d requests, tracker (state %d) has verdicts %v", n, tr.state, tr.verdicts)
				}
				return
			}
			if tr.verdicts[i] != nil {
				return
			}
		}
		if clean && tr.state != fsStopped && len(tr.verdicts) != n {
			t.Fatalf("net/http reads %d requests, tracker %d (%v)", n, len(tr.verdicts), tr.verdicts)
		}
		// A head the tracker follows that net/http does not read, when
		// net/http reads the whole stream, shifts the verdicts: a request
		// would get another's.
		if clean && len(tr.verdicts) > n {
			t.Fatalf("net/http reads %d requests, tracker has verdicts for %d (%v)", n, len(tr.verdicts), tr.verdicts)
		}
	})
}

// framingView is what of a tracker decides what it does with the bytes
// to come: the fields of the head being read count only while one is,
// and the noted Content-Length and Transfer-Encoding only once seen in it.
type framingView struct {
	state           framingState
	remaining       int64
	inHead          bool
	http10          bool
	cl, te, hosts   int
	clValue         string
	clSame, teChunk bool
	lastKey         headerKey
	folded, post    bool
	crlf            int
	line, verdicts  string
}

func viewOf(f *framing) framingView {
	v := framingView{state: f.state, remaining: f.remaining, inHead: f.inHead, crlf: f.crlf,
		line: string(f.line), verdicts: fmt.Sprint(f.verdicts[f.head:])}
	if f.inHead {
		v.http10, v.cl, v.te, v.hosts = f.http10, f.cl, f.te, f.hosts
		v.lastKey, v.folded, v.post = f.lastKey, f.folded, f.post
		if f.cl > 0 { // else left from an earlier head
			v.clValue, v.clSame = string(f.clValue), f.clSame
		}
		if f.te > 0 {
			v.teChunk = f.teChunk
		}
	}
	return v
}

// FuzzSkipHead checks serveOne's shortcut against the tracker reading
// everything: the bytes of a raw read (stream, after a POST or not), with
// the head parsePlainHead takes skipped (skipHead) and the rest fed,
// leave the tracker as feeding them all does.
func FuzzSkipHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"\r\r\n\nGET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"\r\nPOST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nok\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HTTP/1.1\r\nContent-Le",
		"GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, stream []byte, afterPOST bool) {
		unfed := min(len(stream), 4096)
		if unfed == 0 || afterPOST && unfed < 4 {
			return // serveOne feeds these whole
		}
		var whole, skipped framing
		for _, tr := range []*framing{&whole, &skipped} {
			tr.max = 4096 + 4096
			if afterPOST {
				tr.feed([]byte("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"))
			}
			tr.head = len(tr.verdicts)
		}
		whole.feed(stream[:unfed])

		br := bufio.NewReaderSize(bytes.NewReader(stream), 4096)
		br.Peek(unfed)
		if afterPOST {
			peek, _ := br.Peek(4)
			n := leadingCRLF(peek)
			skipped.feed(peek[:n])
			br.Discard(n)
		}
		req, plain := parsePlainHead(br, new(reqScratch))
		if plain {
			skipped.skipHead(req.ContentLength, req.Method == http.MethodPost)
		}
		rest, _ := br.Peek(br.Buffered())
		skipped.feed(rest)
		if w, s := viewOf(&whole), viewOf(&skipped); w != s {
			t.Fatalf("plain head %v: fed whole %+v, skipped %+v", plain, w, s)
		}
	})
}
