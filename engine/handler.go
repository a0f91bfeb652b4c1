package engine

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocsiproxy/ocsiproxy/forward"
	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
	"github.com/ocsiproxy/ocsiproxy/rules"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/urlpath"
	"github.com/ocsiproxy/ocsiproxy/wire"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// ServerName is the Server header added to answers that have none.
const ServerName = "ocsiproxy"

// Handler serves requests with the current compiled tree. The tree can be
// swapped atomically (a reload): requests in flight finish on the tree
// they started with.
type Handler struct {
	tree atomic.Pointer[Tree]
	// maxBody is the largest request body accepted (<maxrequestbodysize>);
	// negative (xmlconf.Infinite, the default) means no limit.
	maxBody atomic.Int64
	// bodyTimeout bounds the wait for each piece of a request body
	// (<timeout>); 0: no bound.
	bodyTimeout atomic.Int64
	// observers are told about each request, in order.
	observers []Observer
}

// Observer is told about each request a [Handler] serves: the logs, the
// metrics and --dry-run are observers.
type Observer interface {
	// Begin is called with the state of a request before its stages run
	// (it may set st.Trace). It returns the function told the request's
	// outcome once it is decided, before the answer is written (err is
	// the error behind an error answer), or nil.
	Begin(st *stage.State) (decided func(err error))
	// Done is called once the request is over, after its answer was
	// handed to the client when the writer can say so (answerEnder: the
	// plain-HTTP server's): the status as logged
	// (forward.StatusClientClosed when the client went away,
	// forward.StatusServerClosed when the server cut it), the body
	// bytes sent, the time taken and the error behind an error status.
	// The request as received is st.In.
	Done(st *stage.State, status int, n int64, d time.Duration, err error)
}

// NewHandler returns a handler serving t with the limits of cfg, telling
// the observers (nil interfaces are skipped) about each request.
func NewHandler(t *Tree, cfg *xmlconf.Config, observers ...Observer) *Handler {
	h := &Handler{}
	for _, o := range observers {
		if o != nil {
			h.observers = append(h.observers, o)
		}
	}
	h.tree.Store(t)
	h.SetLimits(cfg)
	return h
}

// SetLimits installs the request limits of cfg.
func (h *Handler) SetLimits(cfg *xmlconf.Config) {
	h.maxBody.Store(int64(cfg.MaxRequestBodySize))
	h.bodyTimeout.Store(int64(cfg.Timeout))
}

// Swap installs a new tree for the requests that start from now on.
func (h *Handler) Swap(t *Tree) { h.tree.Store(t) }

// Tree returns the tree new requests use.
func (h *Handler) Tree() *Tree { return h.tree.Load() }

// ServeHTTP runs the configuration on r, a request net/http parsed
// (HTTP/2, tests), converted once into a wire.Inbound, and writes the
// answer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.ServeInbound(w, wire.FromHTTPRequest(r))
}

// ServeInbound runs the configuration on r and writes the answer. The
// HTTP/1 server calls it with the requests it parsed itself (no
// http.Request is made for them); r's Body is wrapped while the stages
// run and restored before it returns.
func (h *Handler) ServeInbound(w http.ResponseWriter, r *wire.Inbound) {
	start := time.Now()
	t := h.tree.Load()
	st := states.Get().(*stage.State)
	defer putState(st)
	err := initState(st, r, t.env)
	st.Start = start
	// observed is told the outcome once the request is decided.
	var observed func(error)
	for _, o := range h.observers {
		if f := o.Begin(st); f != nil {
			if prev := observed; prev != nil {
				observed = func(err error) { prev(err); f(err) }
			} else {
				observed = f
			}
		}
	}
	maxBody := h.maxBody.Load()
	var status int
	var n int64
	released := false // the answer's memory may be reused
	if ferr := framingError(w); ferr != nil && err == nil {
		// RFC 9112 section 6.3: ambiguous framing is an error; the
		// connection cannot be trusted for another request.
		err = &stage.Error{Status: http.StatusBadRequest, Err: fmt.Errorf("request framing: %w", ferr)}
		w.Header().Set("Connection", "close")
	}
	switch {
	case err != nil:
		// A request that cannot be served at all (a malformed target or
		// Host, CONNECT): whatever follows it on the connection, tunnel
		// bytes or a smuggled head, is not read as a request.
		w.Header().Set("Connection", "close")
		if observed != nil {
			observed(err)
		}
		status, n = writeError(w, r, err, t.debug)
	case maxBody >= 0 && r.ContentLength > maxBody:
		err = stage.Errorf(http.StatusRequestEntityTooLarge, "request body of %d bytes is over <maxrequestbodysize> %d", r.ContentLength, maxBody)
		if observed != nil {
			observed(err)
		}
		status, n = writeError(w, r, err, t.debug)
	default:
		// net/http decides from its own body whether the connection can
		// carry another request (a body not read to its end cannot): it
		// gets it back before the answer is written.
		orig := r.Body
		if maxBody >= 0 && r.ContentLength != 0 {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		var body *clientBody
		var idle *idleBody
		if r.ContentLength != 0 {
			if d := time.Duration(h.bodyTimeout.Load()); d > 0 {
				// A body that stops coming is cut after <timeout> (nginx's
				// client_body_timeout), not held open for ever.
				idle = &idleBody{ReadCloser: r.Body, rc: http.NewResponseController(w), d: d}
				r.Body = idle
			}
			body = &clientBody{ReadCloser: r.Body}
			r.Body = body
		}
		err = t.Process(r.Context(), st)
		var berr error
		if body != nil {
			berr = body.readErr()
		}
		if err != nil && berr != nil {
			// The backend call failed because the client's body did: a
			// malformed chunk, a body over the limit, a client gone.
			err = bodyError(berr)
		}
		if berr != nil {
			// RFC 9112 section 8: after an incomplete or malformed body,
			// the rest of the stream cannot be read as requests.
			w.Header().Set("Connection", "close")
		}
		r.Body = orig
		if observed != nil {
			observed(err)
		}
		status, n, err, released = respond(w, r, st, err, t.debug, time.Duration(h.bodyTimeout.Load()))
		if idle != nil {
			idle.finish()
		}
		if e, ok := w.(answerEnder); ok {
			e.EndAnswer()
		}
	}
	d := time.Since(start)
	for _, o := range h.observers {
		o.Done(st, status, n, d, err)
	}
	releaseExchange(st, released)
}

// releaseExchange gives the memory of the backend request and of its
// answer back to their makers (forward, the pool) once the request is
// over: nothing refers to them any more, neither a stage, an observer
// nor the writer (released: respond wrote the answer whole and the writer
// let go of its fields). The request is reused only when the pool has
// settled it (wire.Request.Release). Not called when a handler panics.
func releaseExchange(st *stage.State, released bool) {
	if out := st.AnswerRequest; out != nil {
		out.Release()
	}
	if resp := st.Answer; resp != nil && released {
		resp.Release()
	}
}

// states holds the stage states of requests that are over: ServeInbound
// takes one per request and gives it back, cleared, once the observers
// have been told the request is done (nothing keeps a state longer).
var states = sync.Pool{New: func() any { return new(stage.State) }}

// putState clears st and gives it back to states.
func putState(st *stage.State) {
	*st = stage.State{}
	states.Put(st)
}

// NewState returns the stage state of r: the normalised path, the host,
// the ports and addresses. The error, with status 400, says why a request
// cannot be served at all.
func NewState(r *http.Request, env *stage.Env) (*stage.State, error) {
	st := new(stage.State)
	err := initState(st, wire.FromHTTPRequest(r), env)
	return st, err
}

// initState sets the zero state st to the state of r, as NewState. The
// client's address is r.Peer when valid, else r.RemoteAddr parsed.
func initState(st *stage.State, r *wire.Inbound, env *stage.Env) error {
	*st = stage.State{
		In:        r,
		Env:       env,
		Method:    r.Method,
		Proto:     r.Proto,
		Host:      r.Host,
		LocalPort: r.LocalPort,
		Status:    http.StatusNotFound,
		Secure:    r.TLS != nil,
	}
	st.HostName = hostName(r.Host)
	ap, err := r.Peer, error(nil)
	if !ap.IsValid() {
		ap, err = netip.ParseAddrPort(r.RemoteAddr)
	}
	if err == nil {
		st.Peer = ap.Addr().Unmap()
		if st.Peer.Is4() && !strings.HasPrefix(r.RemoteAddr, "[") {
			// Dotted IPv4 text that parses is canonical (no leading
			// zeros): the address part is the address's text.
			st.PeerText = r.RemoteAddr[:strings.LastIndexByte(r.RemoteAddr, ':')]
		}
	}
	st.Client = st.Peer
	if r.Major == 1 && r.Minor >= 1 && r.Host == "" {
		return stage.Errorf(http.StatusBadRequest, "HTTP/1.1 request without Host")
	}
	if r.Host != "" && !validHost(r.Host) {
		// RFC 9112 section 3.2: an invalid Host is 400.
		return stage.Errorf(http.StatusBadRequest, "invalid Host %q", r.Host)
	}
	if strings.IndexByte(r.Target, '#') >= 0 {
		// RFC 9112 section 3.2: a request target has no fragment.
		return stage.Errorf(http.StatusBadRequest, "fragment in request target")
	}
	var rawPath string
	if strings.HasPrefix(r.Target, "/") {
		rawPath = r.Target
		if i := strings.IndexByte(rawPath, '?'); i >= 0 {
			rawPath, st.RawQuery, st.HasQuery = rawPath[:i], rawPath[i+1:], true
		}
	} else if u := absoluteTarget(r); u != nil {
		// The absolute form (RFC 9112 section 3.2.2).
		rawPath = u.EscapedPath()
		if rawPath == "" {
			rawPath = "/"
		}
		st.RawQuery, st.HasQuery = u.RawQuery, u.RawQuery != "" || u.ForceQuery
	} else {
		return stage.Errorf(http.StatusBadRequest, "unsupported request target %q", r.Target)
	}
	p, err := urlpath.Normalize(rawPath)
	if err == nil && urlpath.Ambiguous(p) {
		// The rules would see one path and a lax backend another.
		err = urlpath.ErrAmbiguous
	}
	if err != nil {
		return &stage.Error{Status: http.StatusBadRequest, Err: err}
	}
	st.Path = p
	st.RawQuery = rules.EscapeTarget(st.RawQuery)
	st.SubPath = strings.TrimPrefix(p, "/")
	return nil
}

// absoluteTarget returns r's target parsed when it is in the absolute
// form of an http or https URI with a host (RFC 9112 section 3.2.2:
// "h:80", the authority form of CONNECT, is not one), else nil.
func absoluteTarget(r *wire.Inbound) *url.URL {
	if r.Method == http.MethodConnect {
		return nil
	}
	u, err := url.ParseRequestURI(r.Target)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" ||
		!strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https") {
		return nil
	}
	return u
}

// validHost reports whether h is uri-host [":" port] (RFC 3986 section
// 3.2.2): a bracketed IPv6 address, or a reg-name (IPv4 addresses
// included) of unreserved characters, sub-delims and escapes; the port
// digits only.
func validHost(h string) bool {
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return false
		}
		a, err := netip.ParseAddr(h[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return false
		}
		host, port = "", h[end+1:]
		if port != "" && port[0] != ':' {
			return false
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i:]
	}
	if port != "" {
		port = port[1:]
		if len(port) > 5 {
			return false
		}
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return false
			}
		}
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-._~!$&'()*+,;=", c) >= 0:
		case c == '%' && i+2 < len(host) && isHexDigit(host[i+1]) && isHexDigit(host[i+2]):
			i += 2
		default:
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// respond writes the outcome of processing: the error, the answer, or the
// not-found status. It returns the status written and the body bytes, and
// whether the writer is done with the answer's memory (an answer written
// whole: see releaseExchange).
// sendTimeout bounds each write of an HTTP/2 answer's body (see
// copyBody); 0: no bound.
func respond(w http.ResponseWriter, r *wire.Inbound, st *stage.State, err error, debug bool, sendTimeout time.Duration) (int, int64, error, bool) {
	if err != nil {
		st.DropAnswer()
		status, n := writeError(w, r, err, debug)
		return status, n, err, false
	}
	if st.Answer == nil {
		status, n := writeStatus(w, st.Status, "")
		return status, n, nil, false
	}
	resp := st.Answer
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		status, n, err := tunnel(w, resp)
		return status, n, err, false
	}
	h := &resp.Header
	if !h.Has("Server") {
		h.AddCanonical("Server", ServerName)
	}
	if aw, ok := resp.Body.(stage.AnswerWriter); ok {
		// A static file: it writes its own status and body (conditional
		// and range requests), on the writer's map.
		h.Del("Content-Length")
		h.CopyTo(w.Header())
		delete(w.Header(), "Content-Length")
		cw := &countingWriter{ResponseWriter: w}
		aw.WriteAnswer(cw, st.Request(), resp) // net/http code may read its Header
		status := cw.result(r.Context())
		if status == forward.StatusServerClosed {
			return status, cw.n, errCut, false
		}
		return status, cw.n, nil, false
	}
	// Trailers reach a client that accepts them (httpsyntax.AcceptsTrailers);
	// the others never see them, nor their announcement.
	var announced []string
	if len(resp.Trailer) > 0 && bodyAllowed(resp.StatusCode) && r.Method != http.MethodHead && acceptsTrailers(r, st) {
		announced = announceTrailers(h, resp.Trailer)
	}
	// An HTTP/1.1 body with a length cannot carry trailers: with trailers
	// announced, it is sent chunked.
	if resp.ContentLength >= 0 && bodyAllowed(resp.StatusCode) && (len(announced) == 0 || r.Major != 1) {
		setContentLength(h, resp.ContentLength)
	} else {
		h.Del("Content-Length")
	}
	fs, listed := w.(fieldsSetter)
	if listed {
		fs.SetFields(h)
	} else {
		h.CopyTo(w.Header())
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead || !bodyAllowed(resp.StatusCode) {
		return resp.StatusCode, 0, nil, !listed || fs.EndFields()
	}
	if r.Major != 2 {
		sendTimeout = 0 // HTTP/1.x: the connection bounds its writes
	}
	n, copyErr := copyBody(w, resp.Body, resp.ContentLength < 0, sendTimeout)
	if copyErr == nil && len(resp.Trailer) > 0 && acceptsTrailers(r, st) {
		// The body has ended: resp.Trailer holds the values, announced
		// or not.
		setTrailers(w, announced, resp.Trailer)
	}
	if copyErr != nil {
		var re readError
		if errors.As(copyErr, &re) {
			if rs, ok := w.(responseResetter); ok && n == 0 && rs.ResetResponse() {
				// Nothing was sent yet: the client gets a 502.
				err := &stage.Error{Status: http.StatusBadGateway, Err: re}
				status, n := writeError(w, r, err, debug)
				return status, n, err, false
			}
			// The backend's body broke after the head was sent: abort the
			// client's connection so it cannot take a truncated body for
			// a whole one.
			panic(http.ErrAbortHandler)
		}
		// The client went away, or the server cut the connection;
		// nothing more can be sent.
		if status := forward.CanceledStatus(r.Context()); status != forward.StatusClientClosed {
			return status, n, errCut, false
		}
		return forward.StatusClientClosed, n, nil, false
	}
	return resp.StatusCode, n, nil, !listed || fs.EndFields()
}

// announceTrailers declares, in h's Trailer field, the trailer names
// resp.Trailer holds before the body is read (what the backend's own
// Trailer header announced), as net/http's servers expect them before
// WriteHeader. Fields that may not be trailers are left out. It returns
// the names announced.
func announceTrailers(h *wire.Header, trailer http.Header) []string {
	names := make([]string, 0, len(trailer))
	for k := range trailer {
		if httpsyntax.TrailerAllowed(k) {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	h.Set("Trailer", strings.Join(names, ", "))
	return names
}

// acceptsTrailers reports whether the client of r, whose state is st, can
// receive an answer's trailer fields (httpsyntax.AcceptsTrailers).
func acceptsTrailers(r *wire.Inbound, st *stage.State) bool {
	var te [2]string
	return httpsyntax.AcceptsTrailers(r.Major, r.Minor, st.Fields().AppendValues(te[:0], "Te"))
}

// answerEnder is implemented by the plain-HTTP server's ResponseWriter
// (h1Response): EndAnswer ends the answer and sends it, so that the
// observers (the access log, the metrics) run after the client has it,
// as nginx logs a request after its response.
type answerEnder interface {
	EndAnswer()
}

// fieldsSetter is implemented by the plain-HTTP server's ResponseWriter
// (h1Response): it writes the answer's fields from their list, in order,
// rather than from its map, and refers to the list until EndFields
// reports true.
type fieldsSetter interface {
	SetFields(h *wire.Header)
	EndFields() bool
}

// setTrailers hands the trailer fields to w once the body is written: an
// announced name by its own key, any other with [http.TrailerPrefix]
// (net/http's two ways). The head is flushed first, so that an answer
// with no body bytes is still sent chunked rather than given a length
// by net/http's HTTP/1.1 server. Fields that may not be trailers are
// left out.
func setTrailers(w http.ResponseWriter, announced []string, trailer http.Header) {
	http.NewResponseController(w).Flush()
	hdr := w.Header()
	for k, vv := range trailer {
		if vv == nil || !httpsyntax.TrailerAllowed(k) {
			continue
		}
		if slices.Contains(announced, k) {
			hdr[k] = vv
		} else {
			hdr[http.TrailerPrefix+k] = vv
		}
	}
}

// responseResetter is implemented by the plain-HTTP server's
// ResponseWriter (h1Response): an answer none of which was sent can be
// replaced.
type responseResetter interface{ ResetResponse() bool }

// setContentLength gives h the Content-Length n: the backend's own field
// when it is n in canonical spelling (the common case: nothing to
// allocate), else a new one.
func setContentLength(h *wire.Header, n int64) {
	var clBuf [2]string
	if cl := h.AppendValues(clBuf[:0], "Content-Length"); len(cl) == 1 && isDecimal(cl[0], n) {
		return
	}
	h.Set("Content-Length", strconv.FormatInt(n, 10))
}

// isDecimal reports whether s is n written in decimal without sign or
// leading zeros (and, as every Content-Length read, in 18 digits at most).
func isDecimal(s string, n int64) bool {
	v, ok := httpsyntax.ParseContentLength(s)
	return ok && v == n && (len(s) == 1 || s[0] != '0')
}

// countingWriter records the status and the body bytes written through
// it, for the access log.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
	failed bool
}

func (c *countingWriter) WriteHeader(status int) {
	if c.status == 0 && status >= 200 {
		c.status = status
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	if err != nil {
		c.failed = true
	}
	return n, err
}

// Unwrap gives http.ResponseController the underlying writer.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// result returns the status to log; ctx is the request's context.
func (c *countingWriter) result(ctx context.Context) int {
	switch {
	case c.failed:
		return forward.CanceledStatus(ctx)
	case c.status == 0:
		return http.StatusOK
	}
	return c.status
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// readError marks a failure to read the backend's body, as opposed to a
// failure to write to the client.
type readError struct{ err error }

func (e readError) Error() string { return "reading backend body: " + e.err.Error() }
func (e readError) Unwrap() error { return e.err }

// wholeBody is a body read whole before the answer is written (the
// backend pool's, for answers up to its max_buffered): Bytes returns
// what is left of it.
type wholeBody interface {
	io.Reader
	Bytes() []byte
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyBody streams body to w. When flush is set (a body of unknown length:
// server-sent events, long polling) every piece is sent as it arrives.
// sendTimeout, when not 0, bounds each write (and its flush).
func copyBody(w http.ResponseWriter, body io.Reader, flush bool, sendTimeout time.Duration) (int64, error) {
	if wb, ok := body.(wholeBody); ok && sendTimeout == 0 {
		// Already in memory: written as it is, in one piece (a 64 KiB
		// answer is not copied through the buffer first).
		n, err := w.Write(wb.Bytes())
		if err == nil && flush {
			err = http.NewResponseController(w).Flush()
		}
		return int64(n), err
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	rc := http.NewResponseController(w)
	var n int64
	for {
		nr, rerr := body.Read(buf)
		if nr > 0 {
			if sendTimeout > 0 {
				// An HTTP/2 stream the client grants no window to blocks
				// here, on flow control, with the socket idle: the
				// connection's own bound (SendTimeoutConn) cannot see it.
				// The deadline is lifted after the write, as HTTP/2
				// resets a stream at its deadline even between writes (a
				// stream may pause longer than that: events, long polls).
				rc.SetWriteDeadline(time.Now().Add(sendTimeout))
			}
			nw, werr := w.Write(buf[:nr])
			n += int64(nw)
			if werr == nil && flush {
				werr = rc.Flush()
			}
			if sendTimeout > 0 && werr == nil {
				rc.SetWriteDeadline(time.Time{})
			}
			if werr != nil {
				return n, werr
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, readError{rerr}
		}
	}
}

// errCut is the cause logged for a request the server cut while its
// answer was being sent.
var errCut = errors.New("server: connection closed while answering: shutting down, <shutdowntimeout> ran out")

// writeError answers with the status of err. The cause is shown in the
// page only in debug mode (<debugmode/>); it always goes to the error log.
func writeError(w http.ResponseWriter, r *wire.Inbound, err error, debug bool) (int, int64) {
	status := stage.StatusOf(err)
	if status == forward.StatusClientClosed || errors.Is(context.Cause(r.Context()), http.ErrServerClosed) {
		// Nobody to send it to: the client left, or the server cut the
		// connection.
		return status, 0
	}
	detail := ""
	if debug {
		detail = err.Error()
	}
	if ra := forward.RetryAfter(err); ra != "" && status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", ra)
	}
	return writeStatus(w, status, detail)
}

// writeStatus writes a small HTML page for status.
func writeStatus(w http.ResponseWriter, status int, detail string) (int, int64) {
	text := fmt.Sprintf("%d %s", status, http.StatusText(status))
	body := "<html><head><title>" + text + "</title></head><body><h1>" + text + "</h1>"
	if detail != "" {
		body += "<pre>" + html.EscapeString(detail) + "</pre>"
	}
	body += "</body></html>\n"
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Server", ServerName)
	w.WriteHeader(status)
	n, _ := io.WriteString(w, body)
	return status, int64(n)
}

// tunnel answers a protocol switch (WebSocket): it takes the client's
// connection over from net/http, sends the backend's 101 head, and copies
// bytes both ways until either side closes.
func tunnel(w http.ResponseWriter, resp *wire.Response) (int, int64, error) {
	backend := resp.Body.(io.ReadWriteCloser) // checked by forward.CleanResponse
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return writeErrorStatus(w, http.StatusInternalServerError), 0, fmt.Errorf("server: tunnel: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Time{})
	unboundTunnel(conn)
	resp.Header.Del("Content-Length")
	fmt.Fprintf(brw, "HTTP/1.1 101 %s\r\n", http.StatusText(http.StatusSwitchingProtocols))
	if !resp.Header.Has("Server") {
		resp.Header.Set("Server", ServerName)
	}
	resp.Header.HTTP().Write(brw)
	brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		return http.StatusSwitchingProtocols, 0, nil
	}
	done := make(chan int64, 2)
	go func() {
		// Bytes the client sent after its request, then the rest.
		n, _ := io.Copy(backend, io.MultiReader(io.LimitReader(brw.Reader, int64(brw.Reader.Buffered())), conn))
		closeWrite(backend)
		done <- n
	}()
	go func() {
		n, _ := io.Copy(conn, backend)
		closeWrite(conn)
		done <- n
	}()
	n := <-done
	n += <-done
	return http.StatusSwitchingProtocols, n, nil
}

// closeWrite half-closes c when it can, so the other side sees the end of
// the stream while answers still flow back; otherwise it closes c.
func closeWrite(c io.Closer) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

func writeErrorStatus(w http.ResponseWriter, status int) int {
	s, _ := writeStatus(w, status, "")
	return s
}

// clientBody remembers the first error reading the client's request body,
// so that a failed backend call can be blamed on the client (400, 413)
// rather than on the backend (502).
type clientBody struct {
	io.ReadCloser
	mu  sync.Mutex
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

// readErr returns the first error reading the body, nil if none.
func (b *clientBody) readErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// idleBody sets the connection's read deadline before each read of a
// request body, and lifts it at the end of the body: net/http reads the
// connection in the background once the body is done, and a deadline left
// there would cancel a long answer (server-sent events).
type idleBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	d    time.Duration
	mu   sync.Mutex
	done bool // the handler has returned: the connection is not ours
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if !b.done {
		b.rc.SetReadDeadline(time.Now().Add(b.d))
	}
	b.mu.Unlock()
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.mu.Lock()
		if !b.done {
			b.rc.SetReadDeadline(time.Time{})
		}
		b.mu.Unlock()
	}
	return n, err
}

// finish is called when the handler returns.
func (b *idleBody) finish() {
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
}

func bodyError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// RFC 9110 section 15.5.9.
		return &stage.Error{Status: http.StatusRequestTimeout, Err: fmt.Errorf("request body not received within <timeout>: %w", err)}
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &stage.Error{Status: http.StatusRequestEntityTooLarge, Err: fmt.Errorf("request body over <maxrequestbodysize> %d bytes", tooBig.Limit)}
	}
	return &stage.Error{Status: http.StatusBadRequest, Err: fmt.Errorf("reading the request body: %w", err)}
}

// framingError returns the wire's verdict on the framing of the request
// being answered: the HTTP/1 server's ResponseWriter has one (see
// http1.Server); other servers (HTTPS, HTTP/2) do not track framing.
func framingError(w http.ResponseWriter) error {
	if fv, ok := w.(interface{ FramingError() error }); ok {
		return fv.FramingError()
	}
	return nil
}

// unboundTunnel lifts the send timeout of a hijacked HTTPS connection,
// whose connection beneath TLS bounds its writes (http1.SendTimeoutConn).
func unboundTunnel(conn net.Conn) {
	if tc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		if u, ok := tc.NetConn().(interface{ Unbound() }); ok {
			u.Unbound()
		}
	}
}
