package adversarial

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The backend is a raw-socket HTTP/1.1 server. It reads what the proxy
// sends with a strict parser (RFC 9112: CRLF line ends, token field names,
// no whitespace before the colon, no obs-fold, no CR, LF or NUL in values,
// one framing), records every request, and answers as the request's path
// says: "/b/MODE..." picks a misbehaviour (see modes), anything else gets
// the echo answer. A stream that does not parse is recorded as a
// violation: the proxy sent the backend something malformed or lost the
// framing of its own connection.

// breq is one request the backend read.
type breq struct {
	Conn, Seq int // connection number, and index on that connection
	Method    string
	Target    string
	Proto     string
	Fields    [][2]string // header fields in order, names as sent
	Body      []byte
	Complete  bool // the whole body arrived
	At        time.Time
}

// get returns the values of the header field name (case-insensitive).
func (r *breq) get(name string) []string {
	var v []string
	for _, f := range r.Fields {
		if strings.EqualFold(f[0], name) {
			v = append(v, f[1])
		}
	}
	return v
}

func (r *breq) first(name string) string {
	if v := r.get(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// token is the X-Token the client put on the request.
func (r *breq) token() string { return r.first("X-Token") }

type backend struct {
	ln    net.Listener
	addr  string
	mu    sync.Mutex
	reqs  []*breq
	viols []string
	conns int
	state map[string]int // per-key counters of stateful modes
	wg    sync.WaitGroup
	live  map[net.Conn]bool
	// forget makes the backend count requests without keeping them (the
	// soak test).
	forget bool
	total  int
}

func newBackend(t testing.TB) *backend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{ln: ln, addr: ln.Addr().String(), state: map[string]int{}, live: map[net.Conn]bool{}}
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.close)
	return b
}

func (b *backend) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.live {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *backend) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns++
		id := b.conns
		b.live[c] = true
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.serve(id, c)
			c.Close()
			b.mu.Lock()
			delete(b.live, c)
			b.mu.Unlock()
		}()
	}
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.reqs)
}

// since returns the requests received from index i on.
func (b *backend) since(i int) []*breq {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*breq(nil), b.reqs[i:]...)
}

func (b *backend) violationsSince(i int) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.viols[i:]...)
}

func (b *backend) nviolations() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.viols)
}

func (b *backend) violation(conn int, format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.viols = append(b.viols, fmt.Sprintf("backend conn %d: ", conn)+fmt.Sprintf(format, args...))
}

// bump increments and returns the counter of key.
func (b *backend) bump(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state[key]++
	return b.state[key]
}

var errParse = errors.New("malformed")

// bconn is one connection of the backend.
type bconn struct {
	b   *backend
	id  int
	c   net.Conn
	br  *bufio.Reader
	seq int
}

func (b *backend) serve(id int, c net.Conn) {
	bc := &bconn{b: b, id: id, c: c, br: bufio.NewReaderSize(c, 64<<10)}
	for {
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		r, err := bc.readRequest()
		if r != nil {
			b.mu.Lock()
			b.total++
			if !b.forget {
				b.reqs = append(b.reqs, r)
			}
			b.mu.Unlock()
		}
		if err != nil {
			if errors.Is(err, errParse) {
				b.violation(id, "%v", err)
				io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}
			return
		}
		if !bc.answer(r) {
			return
		}
	}
}

// readLine reads one CRLF-terminated line of at most 64 kB.
func (bc *bconn) readLine() (string, error) {
	var line []byte
	for {
		frag, err := bc.br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > 64<<10 {
			return "", fmt.Errorf("%w: line over 64 kB", errParse)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		break
	}
	if !bytes.HasSuffix(line, []byte("\r\n")) {
		return "", fmt.Errorf("%w: line not ended by CRLF: %q", errParse, clip(string(line)))
	}
	return string(line[:len(line)-2]), nil
}

func isTchar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

// readRequest reads one request strictly. A nil request and a nil error
// never come together; io.EOF before any byte is a clean end.
func (bc *bconn) readRequest() (*breq, error) {
	line, err := bc.readLine()
	if err != nil {
		if err == io.EOF {
			return nil, err
		}
		if errors.Is(err, errParse) {
			return nil, err
		}
		return nil, io.EOF
	}
	parts := strings.Split(line, " ")
	if len(parts) != 3 || !isToken(parts[0]) || parts[1] == "" || (parts[2] != "HTTP/1.1" && parts[2] != "HTTP/1.0") {
		return nil, fmt.Errorf("%w: request line %q", errParse, clip(line))
	}
	for i := 0; i < len(parts[1]); i++ {
		if c := parts[1][i]; c <= ' ' || c >= 0x7f {
			return nil, fmt.Errorf("%w: byte %#x in target %q", errParse, c, clip(parts[1]))
		}
	}
	bc.seq++
	r := &breq{Conn: bc.id, Seq: bc.seq, Method: parts[0], Target: parts[1], Proto: parts[2], At: time.Now()}
	size := len(line)
	for {
		line, err := bc.readLine()
		if err != nil {
			if errors.Is(err, errParse) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: head cut short", errParse)
		}
		if line == "" {
			break
		}
		size += len(line)
		if size > 256<<10 {
			return nil, fmt.Errorf("%w: head over 256 kB", errParse)
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !isToken(name) {
			return nil, fmt.Errorf("%w: field line %q", errParse, clip(line))
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return nil, fmt.Errorf("%w: CR, LF or NUL in %s", errParse, name)
		}
		r.Fields = append(r.Fields, [2]string{name, strings.Trim(value, " \t")})
	}
	te, cl := r.get("Transfer-Encoding"), r.get("Content-Length")
	switch {
	case len(te) > 0 && len(cl) > 0:
		return nil, fmt.Errorf("%w: %s %s with both Transfer-Encoding and Content-Length", errParse, r.Method, clip(r.Target))
	case len(te) > 0:
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") || r.Proto != "HTTP/1.1" {
			return nil, fmt.Errorf("%w: Transfer-Encoding %q", errParse, te)
		}
		return r, bc.readChunked(r)
	case len(cl) > 0:
		n, err := strconv.ParseInt(cl[0], 10, 64)
		for _, v := range cl {
			if v != cl[0] {
				err = errParse
			}
		}
		if err != nil || n < 0 || strings.HasPrefix(cl[0], "+") {
			return nil, fmt.Errorf("%w: Content-Length %q", errParse, cl)
		}
		body := make([]byte, n)
		k, err := io.ReadFull(bc.br, body)
		r.Body = body[:k]
		r.Complete = err == nil
		if err != nil {
			return r, io.EOF // cut short: recorded as incomplete
		}
		return r, nil
	}
	r.Complete = true
	return r, nil
}

func (bc *bconn) readChunked(r *breq) error {
	for {
		line, err := bc.readLine()
		if err != nil {
			if errors.Is(err, errParse) {
				return err
			}
			return io.EOF
		}
		size := line
		if i := strings.IndexByte(size, ';'); i >= 0 {
			size = size[:i]
		}
		n, err := strconv.ParseUint(size, 16, 63)
		if err != nil {
			return fmt.Errorf("%w: chunk size %q", errParse, clip(line))
		}
		if n == 0 {
			break
		}
		buf := make([]byte, n)
		k, err := io.ReadFull(bc.br, buf)
		r.Body = append(r.Body, buf[:k]...)
		if err != nil {
			return io.EOF
		}
		if line, err := bc.readLine(); err != nil || line != "" {
			if err == nil || errors.Is(err, errParse) {
				return fmt.Errorf("%w: chunk data not followed by CRLF", errParse)
			}
			return io.EOF
		}
	}
	for {
		line, err := bc.readLine()
		if err != nil {
			if errors.Is(err, errParse) {
				return err
			}
			return io.EOF
		}
		if line == "" {
			r.Complete = true
			return nil
		}
		if name, _, ok := strings.Cut(line, ":"); !ok || !isToken(name) {
			return fmt.Errorf("%w: trailer line %q", errParse, clip(line))
		}
		r.Fields = append(r.Fields, [2]string{"Trailer-Seen", line})
	}
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// echo is the normal answer: the token back, and what was received.
func echo(r *breq, extra string) string {
	body := fmt.Sprintf("token=%s method=%s target=%s body=%d", r.token(), r.Method, r.Target, len(r.Body))
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Echo-Token: " + r.token() + "\r\n" + extra +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if r.Method == "HEAD" {
		return head
	}
	return head + body
}

// answer writes the answer r's path asks for and reports whether the
// connection goes on.
func (bc *bconn) answer(r *breq) bool {
	path, query, _ := strings.Cut(r.Target, "?")
	mode := ""
	if rest, ok := strings.CutPrefix(path, "/b/"); ok {
		mode, _, _ = strings.Cut(rest, "/")
	}
	if up := r.first("Upgrade"); up != "" && mode == "" {
		mode = "upgrade"
	}
	f, ok := modes[mode]
	if !ok {
		f = modes[""]
	}
	bc.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return f(bc, r, query)
}

func (bc *bconn) write(s string) bool {
	_, err := io.WriteString(bc.c, s)
	return err == nil
}

// A mode answers r and reports whether the connection goes on.
type mode func(bc *bconn, r *breq, query string) bool

// tok is the answer header carrying r's token.
func tok(r *breq) string { return "X-Echo-Token: " + r.token() + "\r\n" }

func status(code int, r *breq, extra, body string) string {
	return fmt.Sprintf("HTTP/1.1 %d X\r\n%sContent-Length: %d\r\n%s\r\n%s", code, tok(r), len(body), extra, body)
}

// smuggledResponse is what a desynchronised proxy would hand to the next
// request: a complete response that no request asked for.
const smuggledResponse = "HTTP/1.1 200 OK\r\nX-Echo-Token: stolen\r\nContent-Length: 8\r\n\r\nSMUGGLED"

var modes map[string]mode

func init() {
	modes = map[string]mode{
		"": func(bc *bconn, r *breq, _ string) bool { return bc.write(echo(r, "")) },
		// Sleeps ms= milliseconds before the answer.
		"slow": func(bc *bconn, r *breq, q string) bool {
			time.Sleep(time.Duration(qint(q, "ms", 300)) * time.Millisecond)
			return bc.write(echo(r, ""))
		},
		// Never answers (the proxy must time out), then closes.
		"hang": func(bc *bconn, r *breq, _ string) bool {
			time.Sleep(4 * time.Second)
			return false
		},
		// Announces 100 bytes, sends 10, closes.
		"truncate-length": func(bc *bconn, r *breq, _ string) bool {
			bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Content-Length: 100\r\n\r\n0123456789")
			return false
		},
		// A long body (1 MiB announced) cut after 300 kB.
		"truncate-long": func(bc *bconn, r *breq, _ string) bool {
			bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Content-Length: 1048576\r\n\r\n" + strings.Repeat("x", 300<<10))
			return false
		},
		// One chunk, then the connection closes without the last chunk.
		"truncate-chunked": func(bc *bconn, r *breq, _ string) bool {
			bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Transfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n")
			return false
		},
		// Extra bytes after a complete response: a second response no
		// request asked for.
		"extra": func(bc *bconn, r *breq, _ string) bool {
			return bc.write(status(200, r, "", "hello") + smuggledResponse)
		},
		"extra-chunked": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + smuggledResponse)
		},
		// Both Content-Length and Transfer-Encoding: by the length the
		// body holds a second response, by the chunks it follows it.
		"cl-te": func(bc *bconn, r *breq, _ string) bool {
			chunked := "5\r\nhello\r\n0\r\n\r\n"
			return bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Content-Length: " + strconv.Itoa(len(chunked)+len(smuggledResponse)) +
				"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked + smuggledResponse)
		},
		"te-cl": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
		},
		"two-lengths": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Content-Length: 5\r\nContent-Length: 13\r\n\r\nhello" + "SMUGGLED" + smuggledResponse)
		},
		"length-list": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Content-Length: 5, 13\r\n\r\nhelloSMUGGLED")
		},
		"length-plus": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Content-Length: +5\r\n\r\nhello")
		},
		"length-negative": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Content-Length: -1\r\n\r\nhello")
		},
		"length-zeros": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Content-Length: 0005\r\n\r\nhello")
		},
		"te-gzip": func(bc *bconn, r *breq, _ string) bool {
			bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Transfer-Encoding: gzip\r\n\r\nnot really gzip")
			return false
		},
		"te-chunked-twice": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Transfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n0\r\n\r\n")
		},
		"te-space-colon": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello")
		},
		"chunk-overflow": func(bc *bconn, r *breq, _ string) bool {
			bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n")
			return false
		},
		"chunk-bad-size": func(bc *bconn, r *breq, _ string) bool {
			bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Transfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n")
			return false
		},
		"chunk-lf": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n")
		},
		"chunk-trailer": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Sum: 5\r\nContent-Length: 99\r\n\r\n")
		},
		// Status lines that are not HTTP/1.x status lines.
		"status-letters": func(bc *bconn, r *breq, _ string) bool {
			bc.write("HTTP/1.1 2OO OK\r\n" + tok(r) + "Content-Length: 5\r\n\r\nhello")
			return false
		},
		"status-short": func(bc *bconn, r *breq, _ string) bool {
			bc.write("HTTP/1.1 20 OK\r\n" + tok(r) + "Content-Length: 5\r\n\r\nhello")
			return false
		},
		"status-long": func(bc *bconn, r *breq, _ string) bool {
			bc.write("HTTP/1.1 2000 OK\r\n" + tok(r) + "Content-Length: 5\r\n\r\nhello")
			return false
		},
		"status-version": func(bc *bconn, r *breq, _ string) bool {
			bc.write("HTTP/2.0 200 OK\r\n" + tok(r) + "Content-Length: 5\r\n\r\nhello")
			return false
		},
		"status-icy": func(bc *bconn, r *breq, _ string) bool {
			bc.write("ICY 200 OK\r\n" + tok(r) + "Content-Length: 5\r\n\r\nhello")
			return false
		},
		"status-lf": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 200 OK\n" + "X-Echo-Token: " + r.token() + "\nContent-Length: 5\n\nhello")
		},
		"http09": func(bc *bconn, r *breq, _ string) bool {
			bc.write("hello, no status line\r\n")
			return false
		},
		"garbage": func(bc *bconn, r *breq, _ string) bool {
			bc.write("\x00\x01\x02\xff\xfe garbage\r\n\r\n")
			return false
		},
		"close": func(bc *bconn, r *breq, _ string) bool { return false },
		"reset": func(bc *bconn, r *breq, _ string) bool {
			if tc, ok := bc.c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			return false
		},
		// Closes the first time a key is seen, answers after: an
		// idempotent request may be retried, a POST may not.
		"close-once": func(bc *bconn, r *breq, q string) bool {
			if bc.b.bump("close-once "+qstr(q, "k")) == 1 {
				return false
			}
			return bc.write(echo(r, ""))
		},
		// Answers the first request of a connection, then closes on the
		// second without answering (early close in a keep-alive or
		// pipelined exchange).
		"close-second": func(bc *bconn, r *breq, _ string) bool {
			if bc.seq >= 2 {
				return false
			}
			return bc.write(echo(r, ""))
		},
		// Interim responses before the final one.
		"continue": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 100 Continue\r\n\r\n" + echo(r, ""))
		},
		"early-hints": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" + echo(r, ""))
		},
		"many-interim": func(bc *bconn, r *breq, _ string) bool {
			return bc.write(strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 5) + echo(r, ""))
		},
		"interim-flood": func(bc *bconn, r *breq, _ string) bool {
			for i := 0; i < 1000; i++ {
				if !bc.write("HTTP/1.1 100 Continue\r\n\r\n") {
					return false
				}
			}
			return bc.write(echo(r, ""))
		},
		"interim-body": func(bc *bconn, r *breq, _ string) bool {
			bc.write("HTTP/1.1 100 Continue\r\nContent-Length: 8\r\n\r\nSMUGGLED" + echo(r, ""))
			return false
		},
		"switching": func(bc *bconn, r *breq, _ string) bool {
			bc.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + smuggledResponse)
			return false
		},
		// Bodies where none may be: after HEAD, 204 and 304.
		"head-body": func(bc *bconn, r *breq, _ string) bool {
			return bc.write(status(200, r, "", "hello") + "")
		},
		"204-body": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 204 No Content\r\n" + tok(r) + "Content-Length: 8\r\n\r\nSMUGGLED")
		},
		"304-body": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 304 Not Modified\r\n" + tok(r) + "Content-Length: 8\r\n\r\nSMUGGLED")
		},
		"204-chunked": func(bc *bconn, r *breq, _ string) bool {
			return bc.write("HTTP/1.1 204 No Content\r\n" + tok(r) + "Transfer-Encoding: chunked\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n")
		},
		// Field values the client must never see as they are.
		"nul-value": func(bc *bconn, r *breq, _ string) bool {
			return bc.write(status(200, r, "X-Bad: a\x00b\r\n", "hello"))
		},
		"cr-value": func(bc *bconn, r *breq, _ string) bool {
			return bc.write(status(200, r, "X-Bad: a\rInjected: yes\r\n", "hello"))
		},
		"lf-value": func(bc *bconn, r *breq, _ string) bool {
			return bc.write(status(200, r, "X-Bad: a\nInjected: yes\r\n", "hello"))
		},
		"obs-fold": func(bc *bconn, r *breq, _ string) bool {
			return bc.write(status(200, r, "X-Folded: a\r\n b\r\n", "hello"))
		},
		"space-name": func(bc *bconn, r *breq, _ string) bool {
			return bc.write(status(200, r, "X Bad: 1\r\n", "hello"))
		},
		"colon-less": func(bc *bconn, r *breq, _ string) bool {
			return bc.write(status(200, r, "X-No-Colon\r\n", "hello"))
		},
		"big-header": func(bc *bconn, r *breq, _ string) bool {
			return bc.write(status(200, r, "X-Big: "+strings.Repeat("b", 128<<10)+"\r\n", "hello"))
		},
		"many-headers": func(bc *bconn, r *breq, _ string) bool {
			var h strings.Builder
			for i := 0; i < 5000; i++ {
				fmt.Fprintf(&h, "X-H%d: v\r\n", i)
			}
			return bc.write(status(200, r, h.String(), "hello"))
		},
		// Hop-by-hop fields, and a field the backend names hop-by-hop.
		"hop": func(bc *bconn, r *breq, _ string) bool {
			return bc.write(status(200, r, "Connection: X-Private\r\nX-Private: secret\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nUpgrade: h2c\r\n", "hello"))
		},
		"set-cookie": func(bc *bconn, r *breq, _ string) bool {
			return bc.write(status(200, r, "Set-Cookie: a=1, b=2\r\nSet-Cookie: c=3\r\nSet-Cookie: d=4; Path=/\r\n", "hello"))
		},
		// An HTTP/1.0 body delimited by the close.
		"close-delimited": func(bc *bconn, r *breq, _ string) bool {
			bc.write("HTTP/1.0 200 OK\r\n" + tok(r) + "\r\n" + strings.Repeat("0123456789", 1000))
			return false
		},
		// A body sent in pieces 100 ms apart.
		"drip": func(bc *bconn, r *breq, _ string) bool {
			bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Content-Length: 50\r\n\r\n")
			for i := 0; i < 5; i++ {
				time.Sleep(100 * time.Millisecond)
				if !bc.write("0123456789") {
					return false
				}
			}
			return true
		},
		// size= bytes of a known pattern.
		"big": func(bc *bconn, r *breq, q string) bool {
			n := qint(q, "size", 8<<20)
			if !bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Content-Length: " + strconv.Itoa(n) + "\r\n\r\n") {
				return false
			}
			return writePattern(bc.c, n) == nil
		},
		// Answers before reading the body it was sent (an early 413).
		"early": func(bc *bconn, r *breq, _ string) bool {
			bc.write(status(413, r, "Connection: close\r\n", "too big"))
			return false
		},
		// A WebSocket handshake answered with 101, then an echo of the
		// bytes received, in upper case, until the peer closes.
		"upgrade": func(bc *bconn, r *breq, _ string) bool {
			if !strings.EqualFold(r.first("Upgrade"), "websocket") {
				// Any other protocol (h2c): a server that takes it.
				bc.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + r.first("Upgrade") + "\r\nConnection: Upgrade\r\n\r\n")
				return false
			}
			sum := sha1.Sum([]byte(r.first("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
			accept := base64.StdEncoding.EncodeToString(sum[:])
			if !bc.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n" + tok(r) + "\r\n") {
				return false
			}
			buf := make([]byte, 4096)
			for {
				n, err := bc.br.Read(buf)
				if n > 0 {
					bc.write(strings.ToUpper(string(buf[:n])))
				}
				if err != nil {
					return false
				}
			}
		},
		// Refuses the upgrade with a plain 200 and keeps the connection:
		// the proxy must go on parsing the client's requests.
		"no-upgrade": func(bc *bconn, r *breq, _ string) bool { return bc.write(echo(r, "")) },
		// Server-sent events: three events 50 ms apart, no length.
		"sse": func(bc *bconn, r *breq, _ string) bool {
			bc.write("HTTP/1.1 200 OK\r\n" + tok(r) + "Content-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
			for i := 0; i < 3; i++ {
				ev := fmt.Sprintf("data: %d\n\n", i)
				if !bc.write(fmt.Sprintf("%x\r\n%s\r\n", len(ev), ev)) {
					return false
				}
				time.Sleep(50 * time.Millisecond)
			}
			return bc.write("0\r\n\r\n")
		},
	}
}

func qstr(q, key string) string {
	for _, kv := range strings.Split(q, "&") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func qint(q, key string, def int) int {
	if n, err := strconv.Atoi(qstr(q, key)); err == nil {
		return n
	}
	return def
}

// pattern byte i of a big body.
func patternByte(i int) byte { return byte('a' + i%23) }

func writePattern(w io.Writer, n int) error {
	buf := make([]byte, 32<<10)
	for off := 0; off < n; {
		k := min(len(buf), n-off)
		for i := 0; i < k; i++ {
			buf[i] = patternByte(off + i)
		}
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		off += k
	}
	return nil
}

func checkPattern(b []byte) bool {
	for i, c := range b {
		if c != patternByte(i) {
			return false
		}
	}
	return true
}
