package pool

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/ocsiproxy/ocsiproxy/wire"
)

func TestWriteHead(t *testing.T) {
	req := &http.Request{
		Method: "GET",
		URL:    &url.URL{Scheme: "http", Host: "b:8080", Opaque: "/a%20b/c", RawQuery: "x=1&y"},
		Host:   "front.example",
		Header: http.Header{
			"X-Forwarded-For": {"198.51.100.1, 127.0.0.1"},
			"Cookie":          {"a=1", "b=2"},
			"User-Agent":      nil, // forward's way to say "none"
			"Connection":      {"keep-alive"},
			"Content-Length":  {"99"},
			"X-Injected":      {"a\r\nEvil: yes"},
		},
		Close: true,
	}
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	writeHead(bw, wireRequest(t, req))
	bw.Flush()
	want := "GET /a%20b/c?x=1&y HTTP/1.1\r\nHost: front.example\r\nCookie: a=1\r\nCookie: b=2\r\n" +
		"X-Forwarded-For: 198.51.100.1, 127.0.0.1\r\nX-Injected: a  Evil: yes\r\nConnection: close\r\n\r\n"
	if buf.String() != want {
		t.Errorf("got\n%q\nwant\n%q", buf.String(), want)
	}
	got, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	if got.RequestURI != "/a%20b/c?x=1&y" || got.Host != "front.example" || got.UserAgent() != "" || !got.Close {
		t.Errorf("parsed back: %q %q %q %v", got.RequestURI, got.Host, got.UserAgent(), got.Close)
	}
}

func TestWriteHeadFraming(t *testing.T) {
	tests := []struct {
		method string
		body   io.Reader
		cl     int64
		want   string // the framing line, or ""
	}{
		{"GET", nil, 0, ""},
		{"POST", nil, 0, "Content-Length: 0\r\n"},
		{"PUT", http.NoBody, 0, "Content-Length: 0\r\n"},
		{"POST", strings.NewReader("abc"), 3, "Content-Length: 3\r\n"},
		{"POST", strings.NewReader("abc"), -1, "Transfer-Encoding: chunked\r\n"},
		{"DELETE", nil, 0, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, "http://b/x", nil)
		if tt.body != nil {
			req.Body = io.NopCloser(tt.body)
			if tt.body == http.NoBody {
				req.Body = http.NoBody
			}
		}
		req.ContentLength = tt.cl
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		writeHead(bw, wireRequest(t, req))
		bw.Flush()
		head := buf.String()
		if tt.want != "" && !strings.Contains(head, tt.want) || tt.want == "" && (strings.Contains(head, "Content-Length") || strings.Contains(head, "Transfer-Encoding")) {
			t.Errorf("%s with %d: %q, want %q", tt.method, tt.cl, head, tt.want)
		}
	}
}

func TestValidateRequest(t *testing.T) {
	bad := []*http.Request{
		{Method: "GET /x", URL: &url.URL{Host: "b", Path: "/"}},
		{Method: "GET", URL: &url.URL{Host: "b c", Path: "/"}},
		{Method: "GET", URL: &url.URL{Host: "b", Opaque: "/a b"}},
		{Method: "GET", URL: &url.URL{Host: "b", Path: "/"}, Header: http.Header{"Bad Name": {"x"}}},
		{Method: "GET", URL: &url.URL{Host: "", Path: "/"}},
	}
	for _, r := range bad {
		req, err := requestFromHTTP(r)
		if err == nil {
			err = checkRequest(req)
		}
		if !errors.Is(err, errInvalidHeader) {
			t.Errorf("%s %v %v: %v, want errInvalidHeader", r.Method, r.URL, r.Header, err)
		}
	}
}

func TestWriteBody(t *testing.T) {
	for _, cl := range []int64{5, -1} {
		req, _ := http.NewRequest("POST", "http://b/x", nil)
		req.Body = io.NopCloser(iotest.OneByteReader(strings.NewReader("hello")))
		req.ContentLength = cl
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		wr := wireRequest(t, req)
		writeHead(bw, wr)
		var started atomic.Bool
		if err := writeBody(bw, wr, wr.BodyKind(), &started); err != nil || !started.Load() {
			t.Fatalf("cl %d: %v", cl, err)
		}
		got, err := http.ReadRequest(bufio.NewReader(&buf))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(got.Body)
		if string(b) != "hello" {
			t.Errorf("cl %d: body %q", cl, b)
		}
	}
	// A body shorter than its ContentLength, and a client body error.
	req, _ := http.NewRequest("POST", "http://b/x", strings.NewReader("abc"))
	req.ContentLength = 10
	var started atomic.Bool
	var be *BodyError
	if err := writeBody(bufio.NewWriter(io.Discard), wireRequest(t, req), wire.BodyLength, &started); !errors.As(err, &be) {
		t.Errorf("short body: %v", err)
	}
	req.Body = io.NopCloser(iotest.ErrReader(&http.MaxBytesError{Limit: 1}))
	req.ContentLength = -1
	var mbe *http.MaxBytesError
	if err := writeBody(bufio.NewWriter(io.Discard), wireRequest(t, req), wire.BodyChunked, &started); !errors.As(err, &mbe) {
		t.Errorf("body over the limit: %v, want a MaxBytesError", err)
	}
}

// TestBodies: request bodies (with a length, chunked) arrive whole; a
// client body error is the call's error (413 for MaxBytesError), not a
// retry; an early answer to an upload is delivered.
func TestBodies(t *testing.T) {
	var mu sync.Mutex
	bodies := map[string]string{}
	b := newRawBackend(t, func(c *rawConn) {
		for {
			req, err := http.ReadRequest(c.br)
			if err != nil {
				return
			}
			if req.URL.Path == "/early" {
				c.write("HTTP/1.1 413 Too Large\r\nConnection: close\r\nContent-Length: 4\r\n\r\nnope")
				return
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return
			}
			mu.Lock()
			bodies[req.URL.Path] = string(body) + " " + strings.Join(req.TransferEncoding, ",")
			mu.Unlock()
			c.write(ok(req.URL.Path))
		}
	})
	p := testPool(t, nil)
	r := roundTrip(p, "POST", b.url("/length"), strings.NewReader("with a length"))
	req, _ := http.NewRequest("POST", b.url("/chunked"), io.NopCloser(strings.NewReader("chunked body")))
	req.ContentLength = -1
	resp, err := p.RoundTrip(req)
	if r.err != nil || err != nil {
		t.Fatal(r.err, err)
	}
	resp.Body.Close()
	mu.Lock()
	if bodies["/length"] != "with a length " || bodies["/chunked"] != "chunked body chunked" {
		t.Errorf("bodies %q", bodies)
	}
	mu.Unlock()

	req, _ = http.NewRequest("POST", b.url("/limit"), io.NopCloser(io.MultiReader(strings.NewReader("some"), iotest.ErrReader(&http.MaxBytesError{Limit: 4}))))
	req.ContentLength = -1
	_, err = p.RoundTrip(req)
	var mbe *http.MaxBytesError
	if !errors.As(err, &mbe) {
		t.Errorf("body over the limit: %v", err)
	}

	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("start of a long upload"))
	req, _ = http.NewRequest("PUT", b.url("/early"), pr)
	req.ContentLength = -1
	resp, err = p.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || string(got) != "nope" {
		t.Errorf("early answer: %d %q", resp.StatusCode, got)
	}
}

// TestNoBodyResponses: HEAD, 204 and 304 have no body whatever their
// headers say; interim 1xx responses are skipped; the next pipelined
// response is read from the right place.
func TestNoBodyResponses(t *testing.T) {
	b := newRawBackend(t, func(c *rawConn) {
		c.each(func(req *http.Request) bool {
			switch req.URL.Path {
			case "/head":
				c.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
			case "/204":
				c.write("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n")
			case "/304":
				c.write("HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n")
			case "/continue":
				c.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n" + ok("/continue"))
			default:
				c.write(ok(req.URL.Path))
			}
			return true
		})
	})
	p := testPool(t, func(s *Settings) { s.Workers = 1 })
	for _, tt := range []struct{ method, path, want string }{
		{"HEAD", "/head", ""}, {"GET", "/after-head", "/after-head"},
		{"GET", "/204", ""}, {"GET", "/304", ""}, {"GET", "/continue", "/continue"}, {"GET", "/last", "/last"},
	} {
		req, _ := http.NewRequest(tt.method, b.url(tt.path), nil)
		resp, err := p.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != tt.want {
			t.Errorf("%s %s: %q, want %q", tt.method, tt.path, body, tt.want)
		}
		if tt.path == "/head" && resp.ContentLength != 1000 {
			t.Errorf("HEAD: ContentLength %d, want 1000", resp.ContentLength)
		}
	}
	if b.accepted.Load() != 1 {
		t.Errorf("%d connections, want 1", b.accepted.Load())
	}
}

// TestChunkedResponses: a chunked body already received is read whole
// (its length becomes known); one still arriving is streamed.
func TestChunkedResponses(t *testing.T) {
	release := newSignal()
	b := newRawBackend(t, func(c *rawConn) {
		c.each(func(req *http.Request) bool {
			switch req.URL.Path {
			case "/whole":
				c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
			case "/trailer":
				c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 1\r\n\r\n")
			case "/stream":
				c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
				release.wait(t)
				c.write("6\r\nsecond\r\n0\r\n\r\n")
			}
			return true
		})
	})
	p := testPool(t, func(s *Settings) { s.Workers = 1 })
	for _, tt := range []struct{ path, want string }{{"/whole", "abcde"}, {"/trailer", "ok"}} {
		req, _ := http.NewRequest("GET", b.url(tt.path), nil)
		resp, err := p.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != tt.want {
			t.Errorf("%s: %q", tt.path, body)
		}
		if tt.path == "/whole" && resp.ContentLength != 5 {
			t.Errorf("%s: ContentLength %d, want 5", tt.path, resp.ContentLength)
		}
	}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", b.url("/stream"), nil)
	resp, err := p.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first" {
		t.Fatalf("first chunk before the rest was sent: %q %v", first, err)
	}
	release.fire()
	rest, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(rest) != "second" || err != nil || resp.ContentLength != -1 {
		t.Errorf("rest %q %v, ContentLength %d", rest, err, resp.ContentLength)
	}
}

// TestWriteHeadBufferSpace checks the head written when it fits the
// buffer's free space, when it does not (appended to a new slice), and
// after bytes already buffered (a pipelined request before it).
func TestWriteHeadBufferSpace(t *testing.T) {
	long := strings.Repeat("v", 6000)
	for _, tt := range []struct {
		name     string
		size     int
		buffered string
		value    string
	}{
		{"fits", 4096, "", "short"},
		{"larger than the buffer", 4096, "", long},
		{"after buffered bytes", 256, strings.Repeat("p", 200), "a value longer than the space left in the buffer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := &http.Request{Method: "GET", URL: &url.URL{Host: "b", Path: "/x"}, Host: "b", Header: http.Header{"X-V": {tt.value}}}
			var buf bytes.Buffer
			bw := bufio.NewWriterSize(&buf, tt.size)
			bw.WriteString(tt.buffered)
			writeHead(bw, wireRequest(t, req))
			bw.Flush()
			want := tt.buffered + "GET /x HTTP/1.1\r\nHost: b\r\nX-V: " + tt.value + "\r\n\r\n"
			if got := buf.String(); got != want {
				t.Errorf("got %d bytes %.80q..., want %d bytes %.80q...", len(got), got, len(want), want)
			}
		})
	}
}
