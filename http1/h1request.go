package http1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

// The request head parser of the common case.
//
// http.ReadRequest costs about a seventh of the instructions of a proxied
// request (bench/instructions.sh): a textproto reader, a string per line
// and per value, a map sized by a first pass, and then WithContext copies
// the whole Request to attach the connection's context. parsePlainHead
// reads the heads most clients send, whole in the read buffer, with one
// string for the whole head (names and values are slices of it) and the
// context copied in from a per-connection template; anything else goes to
// http.ReadRequest, so that every refusal and every leniency stays
// net/http's. FuzzPlainHead checks that both give the same request
// wherever parsePlainHead takes the head.

var crlfcrlf = []byte("\r\n\r\n")

// parsePlainHead parses the request head at the start of br's buffer
// into sc.in, when the head is there whole and plain:
//
//   - the request line is "token /target HTTP/1.0" or HTTP/1.1, the
//     target printable ASCII (origin form);
//   - every line ends with CRLF; no field line is folded; names are
//     tokens; values are printable ASCII or tabs;
//   - there is no Transfer-Encoding or Pragma field, at most one Host
//     and at most one Content-Length, of decimal digits only.
//
// Otherwise it consumes nothing and returns false.
//
// The request's fields, in the order received (Host excepted), are
// sc.fields. The request and its fields live in sc, reused from one
// request of the connection to the next: the request must not be used
// once its handler has returned. The caller sets the connection's
// values (addresses, TLS, context).
func parsePlainHead(br *bufio.Reader, sc *reqScratch) (*wire.Inbound, bool) {
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 {
		return nil, false
	}
	head := sc.strs.Make(buf[:end+2]) // each line with its CRLF
	eol := strings.Index(head, "\r\n")
	method, rest, ok1 := strings.Cut(head[:eol], " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !httpsyntax.IsToken(method) || target == "" || target[0] != '/' {
		return nil, false
	}
	var minor int
	switch proto {
	case "HTTP/1.1":
		minor = 1
	case "HTTP/1.0":
	default:
		return nil, false
	}
	// plain: the path holds only bytes url.ParseRequestURI takes as
	// they are (no escapes to decode, none to keep in RawPath).
	plain, query := true, -1
	for i := 0; i < len(target); i++ {
		c := target[i]
		if c <= ' ' || c >= 0x7f {
			return nil, false
		}
		if query < 0 {
			if c == '?' {
				query = i
			} else if !plainPathByte[c] {
				plain = false
			}
		}
	}
	if !plain {
		// What url.ParseRequestURI refuses, http.ReadRequest does too:
		// its refusal is net/http's.
		if _, err := url.ParseRequestURI(target); err != nil {
			return nil, false
		}
	}

	fields := head[eol+2:]
	sc.fields = wire.MakeHeader(sc.fieldBuf[:])
	// The fields the parser acts on are noted as they go by, rather than
	// looked up after.
	var host, contentLength string
	var hostSeen, lengthSeen, connSeen bool
	for fields != "" {
		eol := strings.Index(fields, "\r\n")
		line := fields[:eol]
		fields = fields[eol+2:]
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return nil, false
		}
		name := line[:colon]
		if !httpsyntax.IsToken(name) {
			return nil, false
		}
		value := line[colon+1:]
		if !httpsyntax.ASCIIFieldValue(value) {
			return nil, false
		}
		value = httpsyntax.TrimOWS(value)
		key := name
		if !isCanonicalKey(name) {
			key = textproto.CanonicalMIMEHeaderKey(name)
		}
		switch key {
		case "Host":
			// Not among the fields: as http.ReadRequest, it is in
			// req.Host.
			if hostSeen {
				return nil, false
			}
			host, hostSeen = value, true
			continue
		case "Content-Length":
			if lengthSeen {
				return nil, false
			}
			contentLength, lengthSeen = value, true
		case "Connection":
			connSeen = true
		case "Transfer-Encoding", "Pragma":
			// Pragma: net/http adds Cache-Control for it.
			return nil, false
		}
		sc.fields.AddCanonical(key, value)
	}
	length := int64(0)
	if lengthSeen {
		var ok bool
		if length, ok = httpsyntax.ParseContentLength(contentLength); !ok {
			return nil, false
		}
	}

	req := &sc.in
	*req = wire.Inbound{
		Method:        method,
		Target:        target,
		Proto:         proto,
		Major:         1,
		Minor:         minor,
		Host:          host,
		ContentLength: length,
		Body:          http.NoBody,
	}
	req.SetFields(&sc.fields)
	// RFC 9112 section 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0
	// only with "keep-alive" (the values are ASCII: no Unicode folding).
	var connBuf [2]string
	var conn []string
	if connSeen {
		conn = sc.fields.AppendValues(connBuf[:0], "Connection")
	}
	req.Close = httpsyntax.HasToken(conn, "close") || minor == 0 && !httpsyntax.HasToken(conn, "keep-alive")
	if length > 0 {
		req.Body = &lengthBody{r: br, n: length}
	}
	br.Discard(end + 4)
	return req, true
}

// reqScratch is the memory of a connection's requests: the request, its
// fields and the response writer, reused by each request once the
// previous one is over (a request's handler has returned before the next
// is read).
type reqScratch struct {
	in   wire.Inbound
	resp h1Response
	// fields are the request's fields (Host excepted) in the order
	// received, in fieldBuf, when parsePlainHead read the request.
	fields   wire.Header
	fieldBuf [24]wire.Field
	// strs makes the head's string: the heads of many requests share
	// one allocation.
	strs wire.Strings
}

// plainPathByte marks the bytes of a request path that url.ParseRequestURI
// keeps as they are: letters, digits and "/-._~".
var plainPathByte = func() (t [256]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("/-._~", byte(c)) >= 0
	}
	return t
}()

// isCanonicalKey reports whether the token name is in canonical form: an
// upper-case letter first and after each hyphen, lower case elsewhere.
func isCanonicalKey(name string) bool {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// lengthBody is a request body of Content-Length bytes, read as
// net/http's: io.ErrUnexpectedEOF when the connection ends before them,
// io.EOF along with the last bytes.
type lengthBody struct {
	r *bufio.Reader
	n int64 // bytes left
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	switch {
	case err == io.EOF && b.n > 0:
		err = io.ErrUnexpectedEOF
	case err == nil && b.n == 0:
		err = io.EOF
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }
