package pool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
)

// reqExcluded reports whether k is a request header field the writer
// produces itself (Host, framing, Connection) and so never copies from
// Request.Header.
func reqExcluded(k string) bool {
	switch k {
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Trailer":
		return true
	}
	return false
}

var keysPool = sync.Pool{New: func() any { s := make([]string, 0, 32); return &s }}

// bodyKind is how a request body is framed on the wire.
type bodyKind uint8

const (
	bodyNone bodyKind = iota
	bodyLength
	bodyChunked
)

// requestBody says how req's body is sent: none (no Body, http.NoBody,
// or a known length of 0), with its Content-Length, or chunked (unknown
// length).
func requestBody(req *http.Request) bodyKind {
	if req.Body == nil || req.Body == http.NoBody {
		return bodyNone
	}
	switch {
	case req.ContentLength > 0:
		return bodyLength
	case req.ContentLength == 0:
		return bodyNone
	default:
		return bodyChunked
	}
}

// errInvalidHeader is returned for a request that cannot be written
// safely: a method, target, Host or header field name that would change
// the message's framing.
var errInvalidHeader = errors.New("pool: invalid request")

// validateRequest checks what writeHead would write: a method token, a
// Host and request target without spaces or line breaks, and header
// field names that are tokens. A request failing it is never sent.
func validateRequest(req *http.Request) error {
	_, err := checkRequest(req)
	return err
}

// checkRequest is validateRequest, returning the request target's path
// for writeHeadTarget.
func checkRequest(req *http.Request) (string, error) {
	if !httpsyntax.IsToken(req.Method) {
		return "", fmt.Errorf("%w: method %q", errInvalidHeader, req.Method)
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if host == "" || hasSpaceOrCRLF(host) {
		return "", fmt.Errorf("%w: Host %q", errInvalidHeader, host)
	}
	target := requestTarget(req.URL)
	if target == "" || hasSpaceOrCRLF(target) || hasSpaceOrCRLF(req.URL.RawQuery) {
		return "", fmt.Errorf("%w: target %q", errInvalidHeader, target)
	}
	for k := range req.Header {
		if !httpsyntax.IsToken(k) {
			return "", fmt.Errorf("%w: header field name %q", errInvalidHeader, k)
		}
	}
	return target, nil
}

// hasSpaceOrCRLF reports whether s holds a space, tab, CR or LF (a loop:
// strings.ContainsAny builds a set on every call).
func hasSpaceOrCRLF(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
			return true
		}
	}
	return false
}

// requestTarget returns the path part of the request target: the URL's
// opaque part (as forward.NewRequest sets it) or its escaped path.
func requestTarget(u *url.URL) string {
	switch {
	case u.Opaque == "":
		if p := u.EscapedPath(); p != "" {
			return p
		}
		return "/"
	case strings.HasPrefix(u.Opaque, "/"):
		return u.Opaque
	default:
		t := u.RequestURI()
		if i := strings.IndexByte(t, '?'); i >= 0 {
			t = t[:i]
		}
		return t
	}
}

// writeHead writes the request line and header block of req, which
// [validateRequest] accepted, to bw: the fields of req.Header in sorted
// order (values with CR or LF have them replaced by spaces, as net/http
// does), Host from req.Host or the URL, the framing of the body, and
// "Connection: close" when req.Close is set. No User-Agent is added. POST,
// PUT and PATCH without a body carry "Content-Length: 0". Write errors
// stick to bw and show at its next Flush.
func writeHead(bw *bufio.Writer, req *http.Request, kind bodyKind) {
	writeHeadTarget(bw, req, kind, requestTarget(req.URL))
}

// writeHeadTarget is writeHead with the request target's path already
// worked out by checkRequest.
func writeHeadTarget(bw *bufio.Writer, req *http.Request, kind bodyKind, target string) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	// The head is appended into the buffer's free space (a head larger
	// than that is appended to a new slice, which Write copies): one
	// call per head instead of four per field.
	b := bw.AvailableBuffer()
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, target...)
	if req.URL.ForceQuery || req.URL.RawQuery != "" {
		b = append(b, '?')
		b = append(b, req.URL.RawQuery...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)

	kp := keysPool.Get().(*[]string)
	keys := (*kp)[:0]
	for k := range req.Header {
		if !reqExcluded(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range req.Header[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = httpsyntax.AppendFieldValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	clear(keys)
	*kp = keys[:0]
	keysPool.Put(kp)
	switch kind {
	case bodyLength:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, req.ContentLength, 10)
		b = append(b, "\r\n"...)
	case bodyChunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	default:
		switch req.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			b = append(b, "Content-Length: 0\r\n"...)
		}
	}
	if req.Close {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	bw.Write(b)
}

// BodyError is a failure to read the request body from the client (for
// example [*http.MaxBytesError] when it is over the limit); it is not the
// backend's fault and is never retried. Unwrap gives the cause.
type BodyError struct{ Err error }

func (e *BodyError) Error() string { return "pool: reading request body: " + e.Err.Error() }
func (e *BodyError) Unwrap() error { return e.Err }

// errBodyLength is a body that ends before or after its ContentLength.
var errBodyLength = errors.New("request body length differs from its ContentLength")

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// writeBody copies req's body to bw with the given framing, setting
// started before it first reads from the body. A failure to read the body
// is a [*BodyError]; any other error is the connection's.
func writeBody(bw *bufio.Writer, req *http.Request, kind bodyKind, started *atomic.Bool) error {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	var dst io.Writer = bw
	var cw io.WriteCloser
	if kind == bodyChunked {
		cw = httputil.NewChunkedWriter(bw)
		dst = cw
	}
	// The head goes first: the backend may answer early (401, 413)
	// without waiting for the body.
	if err := bw.Flush(); err != nil {
		return err
	}
	var written int64
	started.Store(true)
	for {
		n, rerr := req.Body.Read(buf)
		if n > 0 {
			if kind == bodyLength && written+int64(n) > req.ContentLength {
				return &BodyError{Err: errBodyLength}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
			written += int64(n)
			// Each piece is sent as it arrives: a streaming upload is
			// not held back by the buffer.
			if werr := bw.Flush(); werr != nil {
				return werr
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return &BodyError{Err: rerr}
		}
	}
	if kind == bodyLength && written != req.ContentLength {
		return &BodyError{Err: errBodyLength}
	}
	if cw != nil {
		if err := cw.Close(); err != nil {
			return err
		}
		if _, err := bw.WriteString("\r\n"); err != nil {
			return err
		}
	}
	return bw.Flush()
}
