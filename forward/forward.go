// Package forward builds the request a backend receives and cleans the
// response it sends back, as SPEC.md section 7 says:
//   - hop-by-hop headers (Connection and every header it names,
//     Keep-Alive, Proxy-Connection, Proxy-Authenticate,
//     Proxy-Authorization, TE, Trailer, Transfer-Encoding, Upgrade) are
//     removed in both directions;
//   - X-Forwarded-For is rebuilt from the entries access control accepted
//     followed by the peer address; a client's own value is never passed
//     on unless a trusted proxy sent it;
//   - X-Forwarded-Proto is "http" or "https", replacing any client value;
//   - X-Real-IP is the established client address, replacing any client
//     value; the other client-address fields (True-Client-IP,
//     CF-Connecting-IP, Forwarded...) and the fields backends build their
//     own URL from (X-Forwarded-Port, X-Forwarded-Prefix,
//     X-Forwarded-Scheme...) are removed unless a trusted proxy sent
//     them, and an untrusted X-Forwarded-Host is replaced by the client's
//     Host (clientaddr.go);
//   - with [Options.Forwarded], an RFC 7239 Forwarded field is built like
//     X-Forwarded-For;
//   - no User-Agent is invented;
//   - "TE: trailers" is sent when the client can receive trailers
//     ([httpsyntax.AcceptsTrailers]), whatever TE the client sent.
//
// It also maps transport errors to HTTP statuses (502, 504, 413).
package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
	"github.com/ocsiproxy/ocsiproxy/pool"

	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

// Header names used by the proxy.
const (
	HeaderXForwardedFor   = "X-Forwarded-For"
	HeaderXForwardedProto = "X-Forwarded-Proto"
	HeaderForwarded       = "Forwarded"
	HeaderUserAgent       = "User-Agent"
)

// hopHeaders are the hop-by-hop fields ([IsHopByHop]), removed from
// requests and responses with those Connection names.
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// canonicalName returns http.CanonicalHeaderKey(name) without building
// it for the names a Connection header usually lists ("keep-alive",
// "close", "upgrade"...).
func canonicalName(name string) string {
	for _, k := range connectionNames {
		if asciiEqualFold(name, k) {
			return k
		}
	}
	return http.CanonicalHeaderKey(name)
}

// connectionNames are canonical names that Connection headers list, in
// any case.
var connectionNames = append([]string{"Close"}, hopHeaders...)

// asciiEqualFold reports whether s and t are equal under ASCII case
// folding (strings.EqualFold folds non-ASCII letters too, such as the
// Kelvin sign, which http.CanonicalHeaderKey leaves alone).
func asciiEqualFold(s, t string) bool { return foldEqual(s, t, false) }

// foldEqual reports whether s and t are equal under ASCII case folding,
// with "_" in s matching "-" in t when underscoreIsDash is set.
func foldEqual(s, t string, underscoreIsDash bool) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], t[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if underscoreIsDash && a == '_' {
			a = '-'
		}
		if a != b {
			return false
		}
	}
	return true
}

// Target is where a request is proxied: scheme ("http" or "https"),
// host[:port], and the request target (path and query) sent on the
// request line.
type Target struct {
	Scheme   string
	Host     string // host[:port] as written in the destination
	Path     string // begins with "/"
	RawQuery string
	HasQuery bool
	// URI, when set, is Path followed by "?" and RawQuery when HasQuery,
	// as one string (a destination that needed no escaping has it):
	// NewRequest then need not build it.
	URI string
}

// URL returns the target as an absolute URL string.
func (t *Target) URL() string {
	s := t.Scheme + "://" + t.Host + t.Path
	if t.HasQuery {
		s += "?" + t.RawQuery
	}
	return s
}

// Options are the per-rule choices about the backend request.
type Options struct {
	// Forwarded sends an RFC 7239 Forwarded field (a rule's
	// forwarded="forwarded"); st.Env.Forwarded (<forwarded/> in the
	// revproxy extension) turns it on for every rule. Default off.
	Forwarded bool
}

// NewRequest returns the request to send to the backend for st. host is
// the Host header to send. The path sent is t's, after the path prefix
// of the upstream (st.Env.PathPrefix), if any. It carries ctx and the
// client's address (st.Client, for groups balanced by ip_hash). The
// inbound request is not modified; its body is streamed, not copied.
func NewRequest(ctx context.Context, st *stage.State, t *Target, host string, opts Options) *wire.Request {
	in := st.In
	target := t.URI
	if target == "" {
		target = t.Path
		if t.HasQuery {
			target += "?" + t.RawQuery
		}
	}
	if st.Env != nil && st.Env.PathPrefix != nil {
		target = st.Env.PathPrefix(t.Scheme, t.Host) + target
	}
	m := outRequests.Get().(*outRequest)
	out := &m.req
	*out = wire.Request{
		Method:        st.Method,
		Scheme:        t.Scheme,
		Backend:       t.Host,
		Target:        target,
		Host:          host,
		ContentLength: in.ContentLength,
		Body:          in.Body,
		ClientAddr:    st.Client,
		Start:         st.Start,
	}
	// A known empty body is sent without framing; an unknown length
	// (chunked from the client) is sent chunked.
	if in.ContentLength == 0 {
		out.Body = nil
	}
	out.SetContext(ctx)
	out.SetRecycler(m)
	h := wire.MakeHeader(m.fields[:])
	h = appendOutHeader(h, st, opts.Forwarded || (st.Env != nil && st.Env.Forwarded))
	fields := st.Fields()
	var teBuf [2]string
	if httpsyntax.AcceptsTrailers(in.Major, in.Minor, fields.AppendValues(teBuf[:0], "Te")) {
		// The trailers of the answer reach the client: the backend may
		// send them (gRPC servers require this).
		h.AddCanonical("Te", "trailers")
	}
	if upgrade := UpgradeProtocol(in.Major, in.Minor, fields); upgrade != "" {
		h.AddCanonical("Connection", "Upgrade")
		h.AddCanonical("Upgrade", upgrade)
	}
	out.Header = h
	return out
}

// outRequest is the memory of a backend request: the request and room for
// its header fields, allocated together, and reused once the request is
// released (wire.Request.Release: the engine, after its answer).
type outRequest struct {
	req    wire.Request
	fields [16]wire.Field
}

// outRequests holds the memory of released backend requests.
var outRequests = sync.Pool{New: func() any { return new(outRequest) }}

// Recycle clears m and puts it back in outRequests.
func (m *outRequest) Recycle() {
	*m = outRequest{}
	outRequests.Put(m)
}

// appendOutHeader appends to h the header block the backend receives,
// but for Te, Connection and Upgrade, which NewRequest adds: the
// client's fields (st.Fields: in the order it sent them over HTTP/1)
// without the hop-by-hop ones
// (and those Connection names) and without the forwarding fields the
// peer may not set, then the forwarding fields as SPEC section 7 says
// (X-Forwarded-For, X-Forwarded-Proto, X-Real-IP; X-Forwarded-Host when
// an untrusted client sent one; Forwarded when ownForwarded).
func appendOutHeader(h wire.Header, st *stage.State, ownForwarded bool) wire.Header {
	in := st.Fields()
	trusted := trustedPeer(st)
	var namedBuf [4]string
	named := namedBuf[:0] // canonical names listed by Connection
	for _, f := range in.Fields() {
		if !wire.EqualName(f.Name, "Connection") {
			continue
		}
		for name := range strings.SplitSeq(f.Value, ",") {
			if name = httpsyntax.TrimOWS(name); name != "" {
				named = append(named, canonicalName(name))
			}
		}
	}
	replaceHost := false
	for _, f := range in.Fields() {
		k := f.Name
		if IsHopByHop(k) || slices.Contains(named, k) || aliasesReserved(k) {
			continue
		}
		if c, p, ok := forwardingField(k); ok && !passForwarding(k, c, p, trusted, ownForwarded) {
			replaceHost = replaceHost || c == HeaderXForwardedHost
			continue
		}
		h.AddCanonical(k, f.Value)
	}
	peer := peerText(st)
	xff := peer
	if len(st.Forwarded) > 0 {
		xff = strings.Join(st.Forwarded, ", ") + ", " + xff
	}
	h.AddCanonical(HeaderXForwardedFor, xff)
	h.AddCanonical(HeaderXForwardedProto, st.Scheme())
	h.AddCanonical(HeaderXRealIP, clientText(st, peer))
	if replaceHost && !trusted && st.Host != "" {
		h.AddCanonical(HeaderXForwardedHost, st.Host)
	}
	if ownForwarded {
		h.AddCanonical(HeaderForwarded, forwardedValue(st, peer))
	}
	return h
}

// aliasesReserved reports whether k, spelled with "_" for "-", is a field
// the proxy controls or one that frames the message: CGI-style backends
// (RFC 3875 section 4.1.18: PHP-FPM, WSGI, Rack) read "Transfer_Encoding"
// and "X_Forwarded_For" as Transfer-Encoding and X-Forwarded-For, so such
// a field would smuggle a framing past the proxy (the forwarding fields
// are [forwardingField]'s). Other field names with "_" are passed on.
func aliasesReserved(k string) bool {
	if !strings.Contains(k, "_") {
		return false
	}
	switch c := http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-")); c {
	case "Content-Length":
		return true
	default:
		return IsHopByHop(c)
	}
}

// IsHopByHop reports whether k, in any case, is in the fixed list of
// hop-by-hop fields (hopHeaders: Connection, Keep-Alive, TE, Upgrade...:
// SPEC 7).
func IsHopByHop(k string) bool {
	switch len(k) {
	case 2:
		return wire.EqualName(k, "Te")
	case 7:
		return wire.EqualName(k, "Upgrade") || wire.EqualName(k, "Trailer")
	case 10:
		return wire.EqualName(k, "Connection") || wire.EqualName(k, "Keep-Alive")
	case 16:
		return wire.EqualName(k, "Proxy-Connection")
	case 17:
		return wire.EqualName(k, "Transfer-Encoding")
	case 18:
		return wire.EqualName(k, "Proxy-Authenticate")
	case 19:
		return wire.EqualName(k, "Proxy-Authorization")
	}
	return false
}

// peerText returns the peer address as X-Forwarded-For writes it. For an
// IPv4 peer that is the address part of the connection's RemoteAddr,
// which is already that text (st.PeerText, when the handler noted it): no
// string needs to be built.
func peerText(st *stage.State) string {
	if st.PeerText != "" {
		return st.PeerText
	}
	peer := st.Peer.Unmap()
	if ra := st.In.RemoteAddr; peer.Is4() {
		if i := strings.LastIndexByte(ra, ':'); i > 0 {
			// Dotted IPv4 text that parses is canonical (no leading
			// zeros), so equal addresses have equal text.
			if a, err := netip.ParseAddr(ra[:i]); err == nil && a == peer {
				return ra[:i]
			}
		}
	}
	return peer.String()
}

// UpgradeProtocol returns the protocol a request of HTTP version
// major.minor with the header fields h asks to switch to (its Upgrade
// field, when it is HTTP/1.1 and Connection names "upgrade"), or "" when
// it asks for none. "h2c" is never returned: a proxy does not pass it on.
func UpgradeProtocol(major, minor int, h *wire.Header) string {
	var connBuf [2]string
	if major != 1 || minor < 1 || !httpsyntax.HasToken(h.AppendValues(connBuf[:0], "Connection"), "upgrade") {
		return ""
	}
	up := httpsyntax.TrimOWS(h.Get("Upgrade"))
	if up == "" || strings.EqualFold(up, "h2c") || strings.Contains(strings.ToLower(up), "h2c") {
		return ""
	}
	return up
}

// RoundTrip sends out, built by NewRequest for st, to its backend: through
// st.Env.Upgrade when it asks to switch protocols (and there is one), else
// st.Env.Transport; then cleans the answer (CleanResponse). It is the
// backend call of <revproxy> and <route> alike; ErrorStatus gives the
// status of a failure.
func RoundTrip(st *stage.State, out *wire.Request) (*wire.Response, error) {
	var resp *wire.Response
	if out.Header.Get("Upgrade") != "" && st.Env.Upgrade != nil {
		hresp, err := st.Env.Upgrade.RoundTrip(upgradeRequest(out))
		if err != nil {
			return nil, err
		}
		resp = fromHTTP(hresp)
	} else {
		var err error
		if resp, err = st.Env.Transport.Send(out); err != nil {
			return nil, err
		}
	}
	if err := CleanResponse(out, resp); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// upgradeRequest returns out, a request to switch protocols, as the
// upgrade transport (net/http's) takes it: the client address in its
// context ([pool.WithClientAddr]) and no User-Agent invented.
func upgradeRequest(out *wire.Request) *http.Request {
	with := *out
	with.SetContext(pool.WithClientAddr(out.Context(), out.ClientAddr))
	hr := with.HTTP()
	if _, ok := hr.Header[HeaderUserAgent]; !ok {
		// An empty entry stops net/http from inventing one.
		hr.Header[HeaderUserAgent] = nil
	}
	return hr
}

// fromHTTP returns the upgrade transport's answer r as a *wire.Response: its
// header in the order [wire.FromHTTP] gives, the same body and trailer.
func fromHTTP(r *http.Response) *wire.Response {
	if r.Trailer == nil && len(r.TransferEncoding) > 0 {
		// The end of a chunked body may bring trailer fields its Trailer
		// field did not announce: the transport puts them in r.Trailer,
		// in the map it finds there, else in a new one that the
		// wire.Response would not see.
		r.Trailer = make(http.Header)
	}
	return &wire.Response{
		StatusCode: r.StatusCode, Status: r.Status, ProtoMinor: r.ProtoMinor,
		Header: wire.FromHTTP(r.Header), ContentLength: r.ContentLength,
		Body: r.Body, Trailer: r.Trailer,
	}
}

// CleanResponse removes the hop-by-hop headers of a backend response. A
// 101 answer to an upgrade request keeps "Connection: Upgrade" and its
// Upgrade header; a 101 the request did not ask for, or for another
// protocol, is an error.
func CleanResponse(req *wire.Request, resp *wire.Response) error {
	up := resp.Header.Get("Upgrade")
	removeHopByHop(&resp.Header)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil
	}
	want := req.Header.Get("Upgrade")
	if want == "" || !strings.EqualFold(up, want) {
		return fmt.Errorf("backend switched protocols to %q, requested %q", up, want)
	}
	if _, ok := resp.Body.(io.ReadWriteCloser); !ok {
		return errors.New("backend switched protocols but the connection cannot be tunnelled")
	}
	resp.Header.Set("Connection", "Upgrade")
	resp.Header.Set("Upgrade", up)
	return nil
}

// removeHopByHop deletes the hop-by-hop fields of h: first every field
// that Connection names, then the fixed list.
func removeHopByHop(h *wire.Header) {
	// The values of Connection are taken first, in an array of this
	// frame; one walk then drops every field they or the list name.
	var buf [2]string
	conn := h.AppendValues(buf[:0], "Connection")
	h.DelFunc(func(name string) bool {
		return IsHopByHop(name) || len(conn) > 0 && listed(conn, name)
	})
}

// listed reports whether one of the comma-separated lists in values
// names the field name (ASCII case folded, as field names compare).
func listed(values []string, name string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if wire.EqualName(httpsyntax.TrimOWS(t), name) {
				return true
			}
		}
	}
	return false
}

// StatusClientClosed is the status logged when the client went away
// before an answer (nginx's 499); it is never sent.
const StatusClientClosed = 499

// StatusServerClosed is the status logged for a request the server cut:
// its connection was closed because the server was shutting down (or a
// reload dropped its port) and <shutdowntimeout> ran out. Nothing is
// sent; 503 says that the server, not the client or the backend, ended it.
const StatusServerClosed = http.StatusServiceUnavailable

// CanceledStatus returns the status logged for a request whose context
// ctx was cancelled: [StatusServerClosed] when the server closed the
// connection (the cause is [http.ErrServerClosed]), [StatusClientClosed]
// otherwise.
func CanceledStatus(ctx context.Context) int {
	if errors.Is(context.Cause(ctx), http.ErrServerClosed) {
		return StatusServerClosed
	}
	return StatusClientClosed
}

// RetryAfterError is a backend failure after which the client should
// try again later: an upstream group with no server up
// ([pool.UnavailableError]). Its status is 503 and the answer carries
// Retry-After (see [RetryAfter]).
type RetryAfterError interface {
	error
	RetryAfter() time.Duration
}

// RetryAfter returns the Retry-After value, in whole seconds, of a
// failure whose chain holds a [RetryAfterError]; "" for any other.
func RetryAfter(err error) string {
	var ra RetryAfterError
	if !errors.As(err, &ra) {
		return ""
	}
	return strconv.Itoa(int(max(time.Second, ra.RetryAfter()+time.Second-1) / time.Second))
}

// ErrorStatus maps an error from the backend round trip to the status the
// client receives: 413 for a request body over the limit, 504 for a
// timeout, 499 when the client went away (503 when the server cut the
// request: see [CanceledStatus]), 503 when an upstream group has no
// server up ([RetryAfterError]), and 502 for every other failure
// (refused, reset, bad response, every server of a group tried).
func ErrorStatus(ctx context.Context, err error) int {
	var tooBig *http.MaxBytesError
	var ra RetryAfterError
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	case errors.As(err, &ra):
		return http.StatusServiceUnavailable
	case errors.Is(ctx.Err(), context.Canceled):
		return CanceledStatus(ctx)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}
