// Package stage is the contract between the per-request stages of
// ocsiproxy: the request state they share, the [Stage] interface every
// compiled site instruction implements, and the way a stage reports an
// error with its HTTP status.
//
// It mirrors Ocsigen's extension model: a site is a list of instructions
// run in document order; an instruction either leaves the request
// unanswered (Ocsigen's Req_not_found, with a status that defaults to 404),
// answers it (Req_found), or acts on an answer given before it (output
// filters, <iffound>). Stages are compiled once at load time into an
// immutable tree; the per-request path only walks it.
package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ocsiproxy/ocsiproxy/wire"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Result tells the engine what to do after a stage.
type Result int

const (
	// Next runs the following stage.
	Next Result = iota
	// StopSite skips the rest of the innermost site; the instructions after
	// that site run.
	StopSite
	// StopHost skips the rest of the host. When nothing answered, the next
	// matching host is tried.
	StopHost
	// StopAll ends processing: the answer, if any, is sent, else the status.
	StopAll
	// Restart runs the whole configuration again, from the first host, on
	// the request's new path (a <rewrite> without continue).
	Restart
)

// String returns the result's name, as traces print it.
func (r Result) String() string {
	switch r {
	case Next:
		return "next"
	case StopSite:
		return "stop site"
	case StopHost:
		return "stop host"
	case StopAll:
		return "stop"
	case Restart:
		return "restart"
	}
	return fmt.Sprintf("result(%d)", int(r))
}

// Stage is one compiled site instruction.
type Stage interface {
	// Run applies the instruction to st. A non-nil error ends processing
	// with the error's status (see [Error]).
	Run(ctx context.Context, st *State) (Result, error)
}

// Error is a failure that ends a request with an HTTP status: 500 for an
// internal error such as a regexp timeout, 502 when the backend fails, 504
// when it is too slow, 413 when the request body is too large.
type Error struct {
	Status int
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given status.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Err: fmt.Errorf(format, args...)}
}

// StatusOf returns the HTTP status for err: the status of an *Error in its
// chain, else 500.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return http.StatusInternalServerError
}

// StandIn is implemented by the body of an answer that stands in for a
// backend's unknown one (the recording client of --dry-run): a stage
// that decides on the backend's headers says so instead of deciding.
type StandIn interface{ StandIn() }

// IsStandIn reports whether body, or a body it wraps (one with an
// Unwrap() io.ReadCloser method, as a route's), is a [StandIn].
func IsStandIn(body io.ReadCloser) bool {
	for body != nil {
		if _, ok := body.(StandIn); ok {
			return true
		}
		u, ok := body.(interface{ Unwrap() io.ReadCloser })
		if !ok {
			return false
		}
		body = u.Unwrap()
	}
	return false
}

// Env is what the stages of one server share at run time.
type Env struct {
	// Transport sends proxied requests to backends. The engine does not
	// know which client it is: the pipelining pool, or the recorder of
	// --dry-run.
	Transport wire.Sender
	// Upgrade sends the requests that switch protocols (WebSocket); such
	// a connection becomes a tunnel and is never shared. nil means
	// Transport.
	Upgrade http.RoundTripper
	// BackendTimeout bounds the wait for a backend's response head; 0
	// means no bound.
	BackendTimeout time.Duration
	// Forwarded is set by <forwarded/> in the revproxy extension: every
	// backend request carries an RFC 7239 Forwarded field. Default off.
	Forwarded bool
	// PathPrefix, when set, gives the path prefix of the upstream
	// scheme://hostport (an <upstream> path_prefix, or the path of its
	// url), prepended to the path of every backend request to it; ""
	// for none. nil, the default, means no upstream has one.
	PathPrefix func(scheme, hostport string) string
}

// State is the request as the stages see it. Stages never modify the
// inbound request In (its Body is wrapped by the handler, for the body
// limit and timeout, before they run); they change the fields of State
// instead.
type State struct {
	// In is the request as the server received it. Stages read its
	// header fields through Fields.
	In *wire.Inbound
	// Env is the server's run-time environment.
	Env *Env

	// Method is the request method.
	Method string
	// Proto is the request's protocol, "HTTP/1.1" or "HTTP/1.0".
	Proto string
	// Path is the normalised request path, percent-encoded, beginning
	// with "/". It is what rules, access control and the backend see.
	Path string
	// RawQuery is the query without the "?"; HasQuery tells an empty query
	// ("/x?") from none.
	RawQuery string
	HasQuery bool

	// Host is the Host header as the client sent it, "" when absent.
	Host string
	// HostName is the lower-case host name of Host, without the port.
	HostName string
	// LocalPort is the port the request arrived on.
	LocalPort int
	// HostFilter is the hostfilter of the <host> being run (for metrics
	// and logs).
	HostFilter string
	// Secure is true for a TLS connection, or after <allow-forward-proto/>
	// accepted "X-Forwarded-Proto: https".
	Secure bool

	// Peer is the address of the connection's other end.
	Peer netip.Addr
	// PeerText is Peer as text when the server had it at hand (the
	// address part of an IPv4 peer's RemoteAddr), else "".
	PeerText string
	// Client is the client address: the peer, or the address that
	// <allow-forward-for> established.
	Client netip.Addr
	// Forwarded holds the X-Forwarded-For entries accepted by
	// <allow-forward-for>: the client and the proxies to its right, in
	// header order. The backend receives them followed by the peer.
	Forwarded []string

	// Site is the path of the innermost site entered, as segments.
	Site []string
	// SubPath is the path relative to the innermost site, without the
	// leading slash, percent-encoded as the client sent it (after
	// normalisation).
	SubPath string

	// Status is the status of a request nobody answered; 404 by default.
	Status int
	// Answer is the response found so far; nil while unanswered. Its Body
	// is owned by the state: a stage that drops an answer closes it.
	Answer *wire.Response
	// AnswerPos is the position of the instruction that answered, or of
	// the one whose error ended the request (a <revproxy> or <route>
	// whose backend call failed); zero when there is neither.
	AnswerPos xmlconf.Pos
	// AnswerRequest is the request sent to the backend whose answer
	// Answer is (a <revproxy> or <route> gave it), for the logs and
	// --dry-run; nil when the answer was made here, or there is none.
	AnswerRequest *wire.Request
	// AnswerSite is the innermost <site> whose instructions gave the
	// answer, as its path ("/app/"), for the logs; "" when the answer
	// came from outside every site, or there is none.
	AnswerSite string

	// Retries counts the restarts made by <rewrite>.
	Retries int

	// Start is when the server began to serve the request (zero when
	// the state was not made by the server's handler).
	Start time.Time

	// Files holds the file-serving settings that Ocsigen's
	// extendconfiguration elements (<listdirs>, <defaultindex>,
	// <hidefile>...) set for the instructions after them; nil means the
	// defaults. Its dynamic type belongs to the package that sets and reads
	// it (staticmod). A value is never modified in place: a stage that
	// changes a setting stores a new value. The engine resets it when it
	// enters a host and restores it when a <site> ends, as Ocsigen
	// restores the request's configuration after a site.
	Files any

	// Trace, when set (by --dry-run), receives one line per decision.
	Trace func(pos xmlconf.Pos, msg string)
}

// Tracef sends a trace line when tracing is on.
func (st *State) Tracef(pos xmlconf.Pos, format string, args ...any) {
	if st.Trace != nil {
		st.Trace(pos, fmt.Sprintf(format, args...))
	}
}

// AnswerWriter is implemented by the Body of an answer that writes
// itself to the client instead of being copied: a static file, served
// with [net/http.ServeContent] so that conditional and range requests are
// answered. The server copies resp.Header (as the filters left it) to
// w.Header(), then calls WriteAnswer instead of writing resp.StatusCode
// and copying the body; WriteAnswer writes the status and the body, and
// honours resp.StatusCode when a filter changed it. Read must still
// return the whole body, for any consumer that copies it.
type AnswerWriter interface {
	io.ReadCloser
	WriteAnswer(w http.ResponseWriter, r *http.Request, resp *wire.Response)
}

// SetAnswer records resp as the answer given by the instruction at pos,
// an answer made here (a backend's is recorded by SetProxied).
func (st *State) SetAnswer(resp *wire.Response, pos xmlconf.Pos) {
	st.Answer = resp
	st.AnswerRequest = nil
	st.AnswerPos = pos
}

// SetProxied records resp, a backend's answer to the request out, as the
// answer given by the instruction at pos.
func (st *State) SetProxied(resp *wire.Response, out *wire.Request, pos xmlconf.Pos) {
	st.SetAnswer(resp, pos)
	st.AnswerRequest = out
}

// DropAnswer discards the answer, closing its body.
func (st *State) DropAnswer() {
	if st.Answer != nil && st.Answer.Body != nil {
		st.Answer.Body.Close()
	}
	st.Answer = nil
	st.AnswerRequest = nil
}

// Fields returns the request's header fields (Host excepted), In's: in
// the order the client sent them over HTTP/1, else in the order of their
// names (wire.Inbound.Fields). It is never nil.
func (st *State) Fields() *wire.Header {
	if st.In == nil {
		st.In = new(wire.Inbound)
	}
	return st.In.Fields()
}

// Request returns the inbound request as net/http code expects it, for
// handing it to net/http (http.ServeContent): see wire.Inbound.Request.
func (st *State) Request() *http.Request {
	if st.In == nil {
		st.In = new(wire.Inbound)
	}
	return st.In.Request()
}

// SubURL returns the string a suburl regexp matches: the site-relative
// path, plus "?query" when the request has a query.
func (st *State) SubURL() string {
	if !st.HasQuery {
		return st.SubPath
	}
	if st.In != nil {
		// Usually the request target ends with that very text: take it
		// from there rather than build it.
		if u, ok := joinedSuffix(st.In.Target, st.SubPath, "?", st.RawQuery); ok {
			return u
		}
	}
	return st.SubPath + "?" + st.RawQuery
}

// joinedSuffix returns the suffix of s that is a+b+c, if s ends with it.
func joinedSuffix(s, a, b, c string) (string, bool) {
	n := len(a) + len(b) + len(c)
	if n > len(s) {
		return "", false
	}
	t := s[len(s)-n:]
	if t[:len(a)] != a || t[len(a):len(a)+len(b)] != b || t[len(a)+len(b):] != c {
		return "", false
	}
	return t, true
}

// FullURL returns the string a fullurl regexp matches:
// "http[s]://host[:port]/path[?query]", where port is the listening port,
// omitted when it is 80 or 443. ok is false when the request has no Host
// header.
func (st *State) FullURL() (url string, ok bool) {
	if st.Host == "" {
		return "", false
	}
	q, query := "", ""
	if st.HasQuery {
		q, query = "?", st.RawQuery
	}
	name, port := st.hostPort()
	if port == "" {
		return st.Scheme() + "://" + name + st.Path + q + query, true
	}
	return st.Scheme() + "://" + name + ":" + port + st.Path + q + query, true
}

// FullURLHasPrefix reports whether FullURL is ok and starts with
// prefix, without building it.
func (st *State) FullURLHasPrefix(prefix string) bool {
	if st.Host == "" {
		return false
	}
	name, port := st.hostPort()
	p, done := consumePrefix(prefix, st.Scheme(), "://", name)
	if !done && port != "" {
		p, done = consumePrefix(p, ":", port)
	}
	if !done {
		p, done = consumePrefix(p, st.Path)
	}
	if !done && st.HasQuery {
		p, done = consumePrefix(p, "?", st.RawQuery)
	}
	return p == ""
}

// consumePrefix matches p against the concatenation of parts: done is
// true when the outcome is known, rest then "" if p is a prefix of the
// parts and non-empty if not; otherwise the parts are a prefix of p and
// rest is what follows them.
func consumePrefix(p string, parts ...string) (rest string, done bool) {
	for _, part := range parts {
		if len(p) <= len(part) {
			if strings.HasPrefix(part, p) {
				return "", true
			}
			return p, true
		}
		if p[:len(part)] != part {
			return p, true
		}
		p = p[len(part):]
	}
	return p, false
}

// HostPort returns the host name as the client sent it (case kept, port
// removed) followed by ":port" with the listening port, unless that is 80
// or 443: the authority Ocsigen uses in full URLs and site redirects.
func (st *State) HostPort() string {
	name, port := st.hostPort()
	if port == "" {
		return name
	}
	return name + ":" + port
}

// hostPort returns the two parts of HostPort: the host ("[...]" for an
// IPv6 address) and the port, "" when it is omitted.
func (st *State) hostPort() (name, port string) {
	name = st.Host
	if hasPort(name) {
		if h, _, err := net.SplitHostPort(name); err == nil {
			name = h
		}
	}
	name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
	name = hostForURL(name)
	if st.LocalPort != 80 && st.LocalPort != 443 && st.LocalPort != 0 {
		port = portText(st.LocalPort)
	}
	return name, port
}

// hasPort reports whether net.SplitHostPort may succeed on h: without a
// colon it always fails (and builds an error to say so).
func hasPort(h string) bool { return strings.IndexByte(h, ':') >= 0 }

// portTexts caches the text of the listening ports converted, a few
// slots of them: a server listens on few ports.
var portTexts [8]atomic.Pointer[portString]

type portString struct {
	n int
	s string
}

func portText(p int) string {
	slot := &portTexts[uint(p)%uint(len(portTexts))]
	if c := slot.Load(); c != nil && c.n == p {
		return c.s
	}
	s := strconv.Itoa(p)
	slot.Store(&portString{p, s})
	return s
}

// Scheme returns "https" when the request counts as secure, else "http".
func (st *State) Scheme() string {
	if st.Secure {
		return "https"
	}
	return "http"
}

func hostForURL(name string) string {
	if strings.IndexByte(name, ':') < 0 {
		// Not an IPv6 address; netip.ParseAddr would build an error to
		// say so.
		return name
	}
	if a, err := netip.ParseAddr(name); err == nil && a.Is6() {
		return "[" + name + "]"
	}
	return name
}

// RunBlock runs stages in order until one returns something other than
// Next, and returns that result.
func RunBlock(ctx context.Context, st *State, stages []Stage) (Result, error) {
	for _, s := range stages {
		r, err := s.Run(ctx, st)
		if err != nil || r != Next {
			return r, err
		}
	}
	return Next, nil
}

// Compiler compiles site instructions. Extensions receive it to compile
// the instructions nested in their own elements (<then>, <iffound>...).
type Compiler interface {
	// Block compiles a list of site instructions in document order,
	// reporting every problem into the compiler's error list.
	Block(elems []*xmlconf.Element) []Stage
	// Errors is the list every problem is reported into.
	Errors() *xmlconf.ErrorList
	// MatchTimeout is the time limit of one regexp match.
	MatchTimeout() time.Duration
}

// ConfigSource is implemented by a [Compiler] that gives extensions the
// whole configuration: the <server> options (<mimefile>, <charset>...) and
// the <extension> elements with their children (an extension's global
// options). An extension that needs them asserts it; without it, the
// defaults apply.
type ConfigSource interface {
	Config() *xmlconf.Config
}

// Noter is implemented by a [Compiler] that reports site elements
// accepted with no effect, as the loader reports such <server> options:
// the note goes to the configuration's Notes, which --dry-run and -v
// print. An extension asserts it; without it, the note is not made.
type Noter interface {
	Note(e *xmlconf.Element, reason string)
}

// SubPathOf returns path relative to the site whose segments are site,
// without the leading slash and percent-encoded as path is. ok is false
// when path is not inside the site. A segment of path is compared with
// the site's segment after percent-decoding, so "/a%62c/x" is inside
// site "abc".
func SubPathOf(path string, site []string) (sub string, ok bool) {
	rest := strings.TrimPrefix(path, "/")
	for _, seg := range site {
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return "", false
		}
		if s, err := url.PathUnescape(rest[:i]); err != nil || s != seg {
			return "", false
		}
		rest = rest[i+1:]
	}
	return rest, true
}

// InsideWithSlash reports whether path+"/" is inside the site whose
// segments are site, as SubPathOf(path+"/", site) reports it, without
// building path+"/".
func InsideWithSlash(path string, site []string) bool {
	if path == "" {
		// "/": its only slash is the leading one.
		return len(site) == 0
	}
	rest := strings.TrimPrefix(path, "/")
	slash := true // the appended "/" is still to come
	for _, seg := range site {
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			if !slash {
				return false
			}
			i, slash = len(rest), false
		}
		if s, err := url.PathUnescape(rest[:i]); err != nil || s != seg {
			return false
		}
		rest = rest[min(i+1, len(rest)):]
	}
	return true
}
