package wire

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
)

// Inbound is a request as a client sent it: what the server hands the
// handler. The HTTP/1 server (http1) parses a plain head straight into
// one, its fields in the order received, with no http.Request made; a
// request that net/http parsed (HTTP/2, or an HTTP/1 head http1 leaves to
// http.ReadRequest) is converted once, at the edge, by FromHTTPRequest.
// Stages never modify it; the handler wraps its Body.
type Inbound struct {
	// Method is the request method.
	Method string
	// Target is the request target as the request line sent it: an
	// origin form "/p?q" (HTTP/2's :path), an absolute URI, "*"...
	Target string
	// Proto is the protocol, "HTTP/1.1"; Major and Minor its version.
	Proto        string
	Major, Minor int
	// Host is the Host field (HTTP/2's :authority), "" when absent.
	Host string
	// ContentLength is the length of Body: 0 for none, -1 when unknown
	// (a chunked body, or an HTTP/2 body without a length).
	ContentLength int64
	// Body is the request body; nil or http.NoBody for none.
	Body io.ReadCloser
	// Close is set when the connection is to close after the answer:
	// "Connection: close", or HTTP/1.0 without keep-alive.
	Close bool
	// RemoteAddr is the client's "ip:port", as net/http gives it.
	RemoteAddr string
	// Peer is RemoteAddr parsed, when the server had it at hand; the
	// zero AddrPort otherwise.
	Peer netip.AddrPort
	// LocalPort is the port the request arrived on; 0 when unknown.
	LocalPort int
	// TLS is the state of a TLS connection; nil for plain HTTP.
	TLS *tls.ConnectionState
	// HTTP is the net/http request the Inbound was made from; nil when
	// the server parsed the request itself.
	HTTP *http.Request

	fields *Header
	ctx    context.Context
}

// FromHTTPRequest returns r as an Inbound, for the requests net/http
// parsed. Its fields are read from r.Header when first asked for
// (Fields); r is not modified.
func FromHTTPRequest(r *http.Request) *Inbound {
	in := &Inbound{
		Method:        r.Method,
		Target:        r.RequestURI,
		Proto:         r.Proto,
		Major:         r.ProtoMajor,
		Minor:         r.ProtoMinor,
		Host:          r.Host,
		ContentLength: r.ContentLength,
		Body:          r.Body,
		Close:         r.Close,
		RemoteAddr:    r.RemoteAddr,
		TLS:           r.TLS,
		HTTP:          r,
		ctx:           r.Context(),
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		in.LocalPort = PortOf(a)
	}
	return in
}

// PortOf returns the port of the address a ("ip:port"), 0 when it has
// none.
func PortOf(a net.Addr) int {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.Port
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return int(ap.Port())
	}
	return 0
}

// Context returns the request's context: the connection's, cancelled when
// the client goes away (context.Background when none was set).
func (in *Inbound) Context() context.Context {
	if in.ctx == nil {
		return context.Background()
	}
	return in.ctx
}

// SetContext sets the request's context.
func (in *Inbound) SetContext(ctx context.Context) { in.ctx = ctx }

// ProtoAtLeast reports whether the request's version is at least
// major.minor.
func (in *Inbound) ProtoAtLeast(major, minor int) bool {
	return in.Major > major || in.Major == major && in.Minor >= minor
}

// Fields returns the request's header fields, Host excepted: in the order
// received when the server kept it (SetFields), else HTTP.Header's fields
// in the order of their names, converted once. It is never nil.
func (in *Inbound) Fields() *Header {
	if in.fields == nil {
		f := new(Header)
		if in.HTTP != nil {
			*f = FromHTTP(in.HTTP.Header)
		}
		in.fields = f
	}
	return in.fields
}

// SetFields sets the request's header fields (Host excepted).
func (in *Inbound) SetFields(h *Header) { in.fields = h }

// Request returns the request as net/http code expects it (for
// http.ServeContent, or an http.Handler): HTTP itself when the Inbound was
// made from it and its Body is still HTTP's, else a new request made from
// the Inbound, whose URL is parsed from Target and whose Header holds the
// fields. The Inbound is not modified.
func (in *Inbound) Request() *http.Request {
	if in.HTTP != nil && in.HTTP.Body == in.Body {
		return in.HTTP
	}
	r := new(http.Request)
	if in.HTTP != nil {
		*r = *in.HTTP
		r.Body = in.Body
		return r
	}
	u, err := url.ParseRequestURI(in.Target)
	if err != nil {
		u = &url.URL{Path: in.Target}
	}
	*r = http.Request{
		Method:        in.Method,
		URL:           u,
		Proto:         in.Proto,
		ProtoMajor:    in.Major,
		ProtoMinor:    in.Minor,
		Header:        in.Fields().HTTP(),
		Body:          in.Body,
		ContentLength: in.ContentLength,
		Close:         in.Close,
		Host:          in.Host,
		RemoteAddr:    in.RemoteAddr,
		RequestURI:    in.Target,
		TLS:           in.TLS,
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	return r.WithContext(in.Context())
}
