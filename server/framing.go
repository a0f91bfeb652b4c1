package server

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Request framing that net/http accepts but a reverse proxy must refuse.
//
// net/http resolves a request carrying both Content-Length and
// Transfer-Encoding by dropping the Content-Length (RFC 9112 section 6.3
// lets an intermediary do that) and keeps the connection open. A front
// proxy that trusted the Content-Length instead would disagree with us
// about where the next request starts: request smuggling. The header is
// gone before any handler runs, so a framingConn watches the bytes
// net/http reads from a plain-HTTP connection, follows the framing of
// each request exactly as a strict HTTP/1.1 parser does, and records one
// verdict per request head; the handler refuses a flagged request with
// 400 and closes the connection.
var (
	errCLAndTE  = errors.New("both Content-Length and Transfer-Encoding")
	errTE10     = errors.New("Transfer-Encoding in an HTTP/1.0 request")
	errFoldedTE = errors.New("Content-Length or Transfer-Encoding folded over lines")
	// errUntracked is the verdict on a request whose head the tracker did
	// not see as one: it had stopped following the connection, or lost
	// its place. Such a request is refused rather than trusted.
	errUntracked = errors.New("framing of the connection not followed")
)

// framing is the parser state of one connection.
type framing struct {
	state     framingState
	line      []byte
	remaining int64
	max       int // longest line followed; longer ones stop the tracking

	// The head being read.
	inHead           bool
	version          string
	cl, te           int
	clValue, teValue string
	clSame           bool // every Content-Length line has the same value
	lastKey          string
	folded           bool

	verdicts []error
}

type framingState int

const (
	fsHead framingState = iota
	fsBody
	fsChunkSize
	fsChunkData
	fsChunkEnd
	fsTrailer
	fsStopped // net/http will refuse or close: nothing more to follow
)

// feed follows the bytes p, read from the connection in order.
func (f *framing) feed(p []byte) {
	for len(p) > 0 && f.state != fsStopped {
		switch f.state {
		case fsBody, fsChunkData:
			n := int64(len(p))
			if n > f.remaining {
				n = f.remaining
			}
			f.remaining -= n
			p = p[n:]
			if f.remaining == 0 {
				if f.state == fsBody {
					f.state = fsHead
				} else {
					f.state = fsChunkEnd
				}
			}
		default:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				f.line = append(f.line, p...)
				if len(f.line) > f.max {
					f.state = fsStopped
				}
				return
			}
			f.line = append(f.line, p[:i]...)
			p = p[i+1:]
			line := strings.TrimSuffix(string(f.line), "\r")
			f.line = f.line[:0]
			f.onLine(line)
		}
	}
}

func (f *framing) onLine(line string) {
	switch f.state {
	case fsHead:
		f.headLine(line)
	case fsChunkSize:
		size := line
		if i := strings.IndexByte(size, ';'); i >= 0 {
			size = size[:i]
		}
		n, err := strconv.ParseInt(strings.TrimSpace(size), 16, 64)
		switch {
		case err != nil || n < 0:
			f.state = fsStopped
		case n == 0:
			f.state = fsTrailer
		default:
			f.state, f.remaining = fsChunkData, n
		}
	case fsChunkEnd:
		if line != "" {
			f.state = fsStopped
			return
		}
		f.state = fsChunkSize
	case fsTrailer:
		if line == "" {
			f.state = fsHead
		}
	}
}

func (f *framing) headLine(line string) {
	if !f.inHead {
		if line == "" {
			return // empty lines before a request line are ignored
		}
		f.inHead = true
		f.version = line[strings.LastIndexByte(line, ' ')+1:]
		f.cl, f.te, f.lastKey, f.folded = 0, 0, "", false
		return
	}
	if line != "" {
		if line[0] == ' ' || line[0] == '\t' {
			if f.lastKey == "content-length" || f.lastKey == "transfer-encoding" {
				f.folded = true
			}
			return
		}
		name, value, _ := strings.Cut(line, ":")
		f.lastKey = strings.ToLower(name)
		switch f.lastKey {
		case "content-length":
			f.cl++
			v := strings.TrimSpace(value)
			f.clSame = f.cl == 1 || f.clSame && v == f.clValue
			f.clValue = v
		case "transfer-encoding":
			f.te++
			f.teValue = strings.ToLower(strings.TrimSpace(value))
		}
		return
	}
	// End of the head: decide, then follow the body.
	f.inHead = false
	var verdict error
	switch {
	case f.folded:
		verdict = errFoldedTE
	case f.cl > 0 && f.te > 0:
		verdict = errCLAndTE
	case f.te > 0 && f.version == "HTTP/1.0":
		verdict = errTE10
	}
	f.verdicts = append(f.verdicts, verdict)
	switch {
	case verdict != nil:
		f.state = fsStopped // the handler closes the connection
	case f.te > 0:
		if f.te == 1 && f.teValue == "chunked" {
			f.state = fsChunkSize
		} else {
			f.state = fsStopped // net/http answers 501 and closes
		}
	case f.cl == 1:
		n, err := strconv.ParseInt(f.clValue, 10, 64)
		if err != nil || n < 0 || strings.ContainsAny(f.clValue, "+-") {
			f.state = fsStopped // net/http answers 400 and closes
		} else if n > 0 {
			f.state, f.remaining = fsBody, n
		}
	case f.cl > 1:
		// net/http answers 400 unless the values agree, and takes one of
		// them when they do (RFC 9112 section 6.3 item 5): so must we,
		// or the requests that follow on the connection go untracked.
		n, err := strconv.ParseInt(f.clValue, 10, 64)
		if !f.clSame || err != nil || n < 0 || strings.ContainsAny(f.clValue, "+-") {
			f.state = fsStopped
		} else if n > 0 {
			f.state, f.remaining = fsBody, n
		}
	}
}

// framingConn is a plain-HTTP client connection whose reads feed a
// framing tracker.
type framingConn struct {
	net.Conn
	mu sync.Mutex
	f  framing
}

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.f.feed(p[:n])
		c.mu.Unlock()
	}
	return n, err
}

// next returns the verdict on the oldest request head not yet asked for.
// Every request net/http hands to the handler was read through the
// tracker, so a missing verdict means the tracker stopped or lost its
// place: that request is refused (errUntracked), never waved through.
func (c *framingConn) next() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.f.verdicts) == 0 {
		return errUntracked
	}
	v := c.f.verdicts[0]
	c.f.verdicts = c.f.verdicts[1:]
	return v
}

// framingListener wraps the accepted connections of a plain-HTTP port.
type framingListener struct {
	net.Listener
	maxLine int
}

func (l *framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c, f: framing{max: l.maxLine}}, nil
}

type framingKey struct{}

// withFraming is the http.Server ConnContext that makes a connection's
// framing tracker reachable from its requests.
func withFraming(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, framingKey{}, fc)
	}
	return ctx
}

// framingVerdict returns the framing error of r's head, nil when its
// framing is sound or untracked (HTTPS connections).
func framingVerdict(r *http.Request) error {
	if fc, ok := r.Context().Value(framingKey{}).(*framingConn); ok {
		return fc.next()
	}
	return nil
}
