package wire

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
)

// Request is a request to a backend, as the pool sends it.
type Request struct {
	// Method is the request method, a token.
	Method string
	// Scheme is how the backend is reached: "http" or "https".
	Scheme string
	// Backend is the backend as the destination names it: host[:port],
	// or the name of an upstream group.
	Backend string
	// Target is the request target of the request line: an absolute path
	// and its query ("/a/b?c"), sent as it is.
	Target string
	// Host is the value of the Host field sent.
	Host string
	// Header is the fields sent, in order, after Host. The fields the
	// head writer makes itself (Host, Content-Length,
	// Transfer-Encoding, Connection, Trailer) are never taken from it.
	Header Header
	// ContentLength is the length of Body: 0 for no body (Body is then
	// not read), -1 for a body of unknown length, sent chunked.
	ContentLength int64
	// Body is the request body, or nil for none.
	Body io.ReadCloser
	// Close asks for a connection of its own, closed after the exchange
	// ("Connection: close" is sent).
	Close bool
	// ClientAddr is the client's address, for the upstream groups that
	// balance by it (ip_hash); the zero Addr when unknown.
	ClientAddr netip.Addr
	// Start is when the server began to serve the inbound request, a
	// moment before the call starts: a Sender may take it for the
	// present rather than read the clock again (its deadlines then run
	// out that moment early, never late). The zero Time means unknown.
	Start time.Time

	ctx context.Context

	// recycler takes r's memory back (SetRecycler); settled is set by
	// the Sender when it refers to r no more (Settle).
	recycler Recycler
	settled  bool
}

// Context returns the request's context (context.Background when none was
// set). The call to the backend ends when it is done.
func (r *Request) Context() context.Context {
	if r.ctx == nil {
		return context.Background()
	}
	return r.ctx
}

// SetContext sets the request's context.
func (r *Request) SetContext(ctx context.Context) { r.ctx = ctx }

// BodyKind is how a request body is framed on the wire.
type BodyKind uint8

const (
	BodyNone    BodyKind = iota // no body
	BodyLength                  // Content-Length
	BodyChunked                 // Transfer-Encoding: chunked
)

// BodyKind says how r's body is sent: none (no Body, http.NoBody, or a
// length of 0), with its Content-Length, or chunked (unknown length).
func (r *Request) BodyKind() BodyKind {
	switch {
	case r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0:
		return BodyNone
	case r.ContentLength > 0:
		return BodyLength
	default:
		return BodyChunked
	}
}

// ownField reports whether name is a request field the head writer
// produces itself and so never takes from Request.Header.
func ownField(name string) bool {
	switch len(name) {
	case 4:
		return EqualName(name, "Host")
	case 7:
		return EqualName(name, "Trailer")
	case 10:
		return EqualName(name, "Connection")
	case 14:
		return EqualName(name, "Content-Length")
	case 17:
		return EqualName(name, "Transfer-Encoding")
	}
	return false
}

// AppendHead appends r's request line and header block to b and returns
// the result: the method and target, HTTP/1.1, Host, the fields of
// r.Header in order (a CR or LF in a value becomes a space), the framing
// of the body, and "Connection: close" when r.Close is set. POST, PUT and
// PATCH without a body carry "Content-Length: 0". No User-Agent is added.
// The method, target, Host and field names are written as they are: the
// caller checks them first (the pool refuses a request whose head they
// would break).
func (r *Request) AppendHead(b []byte) []byte {
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.Target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.Host...)
	b = append(b, "\r\n"...)
	for _, f := range r.Header.fields {
		if ownField(f.Name) {
			continue
		}
		b = append(b, f.Name...)
		b = append(b, ": "...)
		b = httpsyntax.AppendFieldValue(b, f.Value)
		b = append(b, "\r\n"...)
	}
	switch r.BodyKind() {
	case BodyLength:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, r.ContentLength, 10)
		b = append(b, "\r\n"...)
	case BodyChunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	default:
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			b = append(b, "Content-Length: 0\r\n"...)
		}
	}
	if r.Close {
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, "\r\n"...)
}

// Response is a backend's answer: its head, and its body to read.
type Response struct {
	// StatusCode is the status, 100 to 999.
	StatusCode int
	// Status is the status line after the version ("200 OK").
	Status string
	// ProtoMinor is the minor version of HTTP/1.x the backend answered
	// with.
	ProtoMinor int
	// Header is the answer's fields in the order received.
	Header Header
	// ContentLength is the length of Body, or -1 when unknown.
	ContentLength int64
	// Body is the answer's body; never nil (http.NoBody when empty). The
	// receiver closes it.
	Body io.ReadCloser
	// Trailer holds the trailer fields, as http.Response.Trailer does:
	// the names the Trailer header announced before Body is read to its
	// end, their values (and those of fields not announced) after. Nil
	// when there are none.
	Trailer http.Header

	recycler Recycler // takes r's memory back (SetRecycler)
}

// A Recycler takes back the memory of a message it made, to make the next
// one in it (see [Response.Release] and [Request.Release]).
type Recycler interface{ Recycle() }

// SetRecycler has [Response.Release] hand r's memory to rc. A Sender that
// reuses the memory of its answers sets it.
func (r *Response) SetRecycler(rc Recycler) { r.recycler = rc }

// Release tells the Sender that made r that its receiver is done with r,
// its header and its body (closed): their memory may make the next
// answer, so none of them may be used after, nor the body closed again
// (the values, strings, stay valid). An answer with no recycler is left
// to the garbage collector; releasing is never required.
func (r *Response) Release() {
	if rc := r.recycler; rc != nil {
		r.recycler = nil
		rc.Recycle()
	}
}

// SetRecycler has [Request.Release] hand r's memory to rc once r is
// settled. The maker of r sets it.
func (r *Request) SetRecycler(rc Recycler) { r.recycler = rc }

// Settle is called by the Sender r was given to once it refers to r no
// more (an exchange whose request was written and whose answer was read
// whole); a Sender that cannot tell never calls it.
func (r *Request) Settle() { r.settled = true }

// Release tells the maker of r that its last user is done with r and its
// header: when the Sender settled r, their memory may make the next
// request, so neither may be used after (the values, strings, stay
// valid). Otherwise r is left to the garbage collector, as is a request
// with no recycler; releasing is never required.
func (r *Request) Release() {
	if rc := r.recycler; rc != nil && r.settled {
		r.recycler, r.settled = nil, false
		rc.Recycle()
	}
}

// HTTP returns r as an *http.Response (its header in a new map; the same
// body and trailer), for code that works on net/http's types.
func (r *Response) HTTP() *http.Response {
	return &http.Response{
		Status: r.Status, StatusCode: r.StatusCode,
		Proto: "HTTP/1." + strconv.Itoa(r.ProtoMinor), ProtoMajor: 1, ProtoMinor: r.ProtoMinor,
		Header: r.Header.HTTP(), Body: r.Body, ContentLength: r.ContentLength, Trailer: r.Trailer,
	}
}

// HTTP returns r as an *http.Request with the same head, body and
// context, for code that works on net/http's types: the backend and the
// target in its URL, and the client address left out.
func (r *Request) HTTP() *http.Request {
	path, query, hasQuery := strings.Cut(r.Target, "?")
	u := &url.URL{Scheme: r.Scheme, Host: r.Backend, Opaque: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	hr := &http.Request{
		Method: r.Method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: r.Header.HTTP(), Host: r.Host, ContentLength: r.ContentLength, Body: r.Body, Close: r.Close,
	}
	return hr.WithContext(r.Context())
}

// A Sender sends a request to its backend and returns the answer once
// its head has arrived; its body streams. It closes req.Body, on success
// or not. The pool is the Sender of the live server; a dry run's records
// the request instead.
type Sender interface {
	Send(req *Request) (*Response, error)
}
