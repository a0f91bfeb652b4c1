package pool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

// errInvalidHeader is returned for a request that cannot be written
// safely: a method, target, Host or header field name that would change
// the message's framing.
var errInvalidHeader = errors.New("pool: invalid request")

// checkRequest checks what the head writer writes as it is: a method
// token, a Host and request target without spaces or line breaks, and
// header field names that are tokens. A request failing it is never
// sent.
func checkRequest(req *wire.Request) error {
	if !httpsyntax.IsToken(req.Method) {
		return fmt.Errorf("%w: method %q", errInvalidHeader, req.Method)
	}
	if req.Host == "" || httpsyntax.HasSpaceOrCRLF(req.Host) {
		return fmt.Errorf("%w: Host %q", errInvalidHeader, req.Host)
	}
	if req.Target == "" || httpsyntax.HasSpaceOrCRLF(req.Target) {
		return fmt.Errorf("%w: target %q", errInvalidHeader, req.Target)
	}
	for _, f := range req.Header.Fields() {
		if !httpsyntax.IsToken(f.Name) {
			return fmt.Errorf("%w: header field name %q", errInvalidHeader, f.Name)
		}
	}
	return nil
}

// requestFromHTTP returns hr as the pool sends it, for [Pool.RoundTrip]
// and [Upgrader]: the backend and scheme from its URL, the target from
// the URL's opaque part (as forward sets it) or escaped path and its
// query, Host from hr.Host or the URL, the fields of hr.Header in sorted
// order (a name without values is left out), the client address
// [WithClientAddr] put in its context.
func requestFromHTTP(hr *http.Request) (*wire.Request, error) {
	if hr.URL == nil {
		return nil, errors.New("pool: nil Request.URL")
	}
	u := hr.URL
	target := requestTarget(u)
	if u.ForceQuery || u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	host := hr.Host
	if host == "" {
		host = u.Host
	}
	req := &wire.Request{
		Method: hr.Method, Scheme: u.Scheme, Backend: u.Host, Target: target, Host: host,
		Header: wire.FromHTTP(hr.Header), ContentLength: hr.ContentLength, Body: hr.Body, Close: hr.Close,
	}
	if req.Method == "" {
		req.Method = http.MethodGet
	}
	req.ClientAddr, _ = clientAddr(hr.Context())
	req.SetContext(hr.Context())
	return req, nil
}

// requestTarget returns the path part of the request target: the URL's
// opaque part (as forward sets it) or its escaped path.
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

// writeHead writes the head of req, which [checkRequest] accepted, to bw
// ([wire.Request.AppendHead]), appended into the buffer's free space (a
// head larger than that is appended to a new slice, which Write copies).
// Write errors stick to bw and show at its next Flush.
func writeHead(bw *bufio.Writer, req *wire.Request) {
	bw.Write(req.AppendHead(bw.AvailableBuffer()))
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
func writeBody(bw *bufio.Writer, req *wire.Request, kind wire.BodyKind, started *atomic.Bool) error {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	var dst io.Writer = bw
	var cw io.WriteCloser
	if kind == wire.BodyChunked {
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
			if kind == wire.BodyLength && written+int64(n) > req.ContentLength {
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
	if kind == wire.BodyLength && written != req.ContentLength {
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
