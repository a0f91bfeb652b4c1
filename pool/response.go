package pool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strings"
	"sync"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

// framing is how a response body is delimited (RFC 9112 section 6.3).
type framing uint8

const (
	framingNone    framing = iota // no body: HEAD, 1xx, 204, 304
	framingLength                 // Content-Length
	framingChunked                // Transfer-Encoding: chunked
	framingClose                  // until the server closes the connection
)

// maxInterim is how many interim (1xx) responses are skipped before a
// final one; more is a protocol error.
const maxInterim = 5

// FramingError is a response that cannot be trusted to be delimited
// correctly: a bad status line or header block, conflicting or invalid
// Content-Length and Transfer-Encoding, a malformed chunk. It poisons the
// connection it was read from.
type FramingError struct {
	Msg string
}

func (e *FramingError) Error() string { return "pool: bad response from backend: " + e.Msg }

func framingErrorf(format string, args ...any) error {
	return &FramingError{Msg: fmt.Sprintf(format, args...)}
}

// head is a parsed response head and the framing of its body. It holds,
// in the same allocation, the response resp points to and the body of
// the response when it is read whole.
type head struct {
	resp    *wire.Response // &r
	framing framing
	length  int64 // body length with framingLength
	// keepAlive is whether the headers allow reusing the connection
	// after this response: HTTP/1.1 without "Connection: close", or
	// HTTP/1.0 with "Connection: keep-alive", and a delimited body.
	keepAlive bool

	r      wire.Response
	body   bytesBody
	fields [16]wire.Field // room for the fields of r.Header
}

// heads holds the memory of answers their receiver released
// (wire.Response.Release): a head is given the answer's recycler only
// when its body was read whole (conn.complete), and its memory is then
// the receiver's until it releases it.
var heads = sync.Pool{New: func() any { return new(head) }}

// Recycle clears h and puts it back in heads.
func (h *head) Recycle() {
	*h = head{}
	heads.Put(h)
}

// readHead reads one final response head from tp for a request of the
// given method, skipping interim 1xx responses. It is stricter than
// [http.ReadResponse]: only HTTP/1.0 and HTTP/1.1, a three-digit status,
// Transfer-Encoding exactly "chunked" and only in HTTP/1.1, never together
// with Content-Length, and every Content-Length line equal and made of
// digits. An error that is not a [*FramingError] comes from the
// connection (io.EOF when it closed before the first byte,
// io.ErrUnexpectedEOF after it).
func readHead(tp *textproto.Reader, method string, strs *wire.Strings) (*head, error) {
	for interim := 0; ; interim++ {
		h, err := readOneHead(tp, method, strs)
		if err != nil {
			return nil, err
		}
		code := h.resp.StatusCode
		if code >= 200 || code == http.StatusSwitchingProtocols {
			if code == http.StatusSwitchingProtocols {
				return nil, framingErrorf("unexpected 101 Switching Protocols")
			}
			return h, nil
		}
		if interim >= maxInterim {
			return nil, framingErrorf("more than %d interim responses", maxInterim)
		}
	}
}

// readOneHead reads one response head (a status line and its fields).
func readOneHead(tp *textproto.Reader, method string, strs *wire.Strings) (*head, error) {
	line, err := readLine(tp.R)
	if err != nil {
		return nil, err
	}
	proto, status, ok := bytes.Cut(line, sp)
	if !ok {
		return nil, framingErrorf("malformed status line %q", clip(string(line)))
	}
	h := heads.Get().(*head)
	resp := &h.r
	h.resp = resp
	switch string(proto) {
	case "HTTP/1.1":
		resp.ProtoMinor = 1
	case "HTTP/1.0":
	default:
		return nil, framingErrorf("unsupported protocol in status line %q", clip(string(line)))
	}
	if len(status) < 3 || (len(status) > 3 && status[3] != ' ') {
		return nil, framingErrorf("malformed status line %q", clip(string(line)))
	}
	code := 0
	for i := 0; i < 3; i++ {
		d := status[i]
		if d < '0' || d > '9' {
			return nil, framingErrorf("malformed status code in %q", clip(string(line)))
		}
		code = code*10 + int(d-'0')
	}
	if code < 100 {
		return nil, framingErrorf("status code %d out of range", code)
	}
	resp.StatusCode = code
	resp.Status = statusText(status)
	resp.Header = wire.MakeHeader(h.fields[:])
	if err := readHeader(tp, &resp.Header, strs); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, err
		}
		return nil, framingErrorf("header block: %v", err)
	}
	for _, f := range resp.Header.Fields() {
		// textproto keeps "Content-Length : 1" as a field named
		// "Content-Length ": a message other parsers read differently.
		if strings.IndexByte(f.Name, ' ') >= 0 {
			return nil, framingErrorf("space in header field name %q", clip(f.Name))
		}
	}
	if code < 200 {
		return h, nil
	}
	if err := frame(h, method); err != nil {
		return nil, err
	}
	return h, nil
}

var sp = []byte(" ")

// readHeader reads a header block into hdr, as
// [textproto.Reader.ReadMIMEHeader] reads it. When the block is already
// buffered whole and made of plain lines (see parseHeader), it is read
// with one string for all its values, the fields in the order received;
// anything else is left to ReadMIMEHeader, which accepts or refuses it as
// it always did (its fields are then in the order of their names).
func readHeader(tp *textproto.Reader, hdr *wire.Header, strs *wire.Strings) error {
	br := tp.R
	if n := br.Buffered(); n > 0 {
		p, _ := br.Peek(n)
		if used := parseHeader(p, hdr, strs); used > 0 {
			br.Discard(used)
			return nil
		}
	}
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		return err
	}
	*hdr = wire.AppendHTTP(*hdr, http.Header(mh))
	return nil
}

var crlfcrlf = []byte("\r\n\r\n")

// maxPlainLines bounds the fields parseHeader takes; a longer block is
// left to ReadMIMEHeader.
const maxPlainLines = 32

// parseHeader parses the header block at the start of p, up to its empty
// line, into hdr, and returns the number of bytes it takes, when it has at
// most maxPlainLines lines and every one is plain: ended by CRLF, not
// folded, a field name of token characters (64 at most) then a colon, and
// a value of visible characters, spaces, tabs and obs-text. For those,
// the fields are what ReadMIMEHeader gives (canonical names, values
// without their leading and trailing blanks), in the order received, with
// one string for all the values and the uncommon names, made by strs
// (nil: allocated). Otherwise it
// returns 0, hdr is left as it was and p is to be read by ReadMIMEHeader.
func parseHeader(p []byte, hdr *wire.Header, strs *wire.Strings) int {
	if bytes.HasPrefix(p, crlf) {
		return 2
	}
	end := bytes.Index(p, crlfcrlf)
	if end < 0 {
		return 0
	}
	block := p[:end+2] // every line with its CRLF
	// A field's name and value are offsets in block (a small array to
	// clear: it is cleared on every call).
	type field struct {
		key                              string // interned, or "": its canonical form goes in the string
		nameOff, nameEnd, valOff, valEnd int32
	}
	var fields [maxPlainLines]field
	n, size := 0, 0
	for off := 0; off < len(block); n++ {
		rest := block[off:]
		i := bytes.IndexByte(rest, '\n') // found: the block ends with CRLF
		if n == maxPlainLines || i < 1 || rest[i-1] != '\r' {
			return 0
		}
		name, val, ok := plainLine(rest[:i-1])
		if !ok {
			return 0
		}
		f := &fields[n]
		if f.key, ok = commonKey(name); !ok {
			return 0
		}
		f.nameOff = int32(off)
		f.nameEnd = f.nameOff + int32(len(name))
		f.valOff = int32(off + (cap(rest) - cap(val))) // val is a slice of rest
		f.valEnd = f.valOff + int32(len(val))
		if f.key == "" {
			size += len(name)
		}
		size += len(val)
		off += i + 1
	}
	sb := strs.Room(size)
	for i := range fields[:n] {
		f := &fields[i]
		if f.key == "" {
			upper := true
			for _, c := range block[f.nameOff:f.nameEnd] {
				if upper && 'a' <= c && c <= 'z' {
					c -= 'a' - 'A'
				} else if !upper && 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				sb = append(sb, c)
				upper = c == '-'
			}
		}
		sb = append(sb, block[f.valOff:f.valEnd]...)
	}
	all := strs.Done(sb)
	at := 0
	for i := range fields[:n] {
		f := &fields[i]
		key := f.key
		if key == "" {
			key = all[at : at+int(f.nameEnd-f.nameOff)]
			at += len(key)
		}
		vlen := int(f.valEnd - f.valOff)
		hdr.AddCanonical(key, all[at:at+vlen])
		at += vlen
	}
	return end + 4
}

// plainLine splits line (without its CRLF) into its field name (not
// checked: see commonKey) and its value without leading and trailing
// blanks, and reports whether it is a plain field line as far as its
// value goes: see parseHeader.
func plainLine(line []byte) (name, val []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || colon > 64 {
		return nil, nil, false
	}
	name = line[:colon]
	val = line[colon+1:]
	if !httpsyntax.ValidFieldValue(val) {
		return nil, nil, false
	}
	return name, httpsyntax.TrimOWS(val), true
}

// isCanonical reports whether the token k is in canonical form: each
// letter upper-case at the start and after a hyphen, lower-case elsewhere
// (the form backends send, so commonKey rarely copies).
func isCanonical(k []byte) bool {
	upper := true
	for _, c := range k {
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// commonKey checks the field name k (64 bytes at most) and returns its
// canonical form when it is one of the usual response fields, or "" when
// it is another; ok is false when k is not a token. A usual field sent in
// canonical form, as most backends send them, is found without a look at
// its bytes one by one.
func commonKey(k []byte) (key string, ok bool) {
	if key = knownKey(k); key != "" {
		return key, true // a token
	}
	for _, c := range k {
		if !httpsyntax.IsTokenByte(c) {
			return "", false
		}
	}
	if isCanonical(k) {
		return "", true
	}
	var b [64]byte
	a := b[:len(k)]
	upper := true
	for i, c := range k {
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		a[i] = c
		upper = c == '-'
	}
	return knownKey(a), true
}

// knownKey returns k when it is the canonical name of one of the usual
// response fields, as an interned string, and "" otherwise.
func knownKey(a []byte) string {
	switch string(a) {
	case "Accept-Ranges":
		return "Accept-Ranges"
	case "Access-Control-Allow-Origin":
		return "Access-Control-Allow-Origin"
	case "Age":
		return "Age"
	case "Alt-Svc":
		return "Alt-Svc"
	case "Cache-Control":
		return "Cache-Control"
	case "Connection":
		return "Connection"
	case "Content-Disposition":
		return "Content-Disposition"
	case "Content-Encoding":
		return "Content-Encoding"
	case "Content-Language":
		return "Content-Language"
	case "Content-Length":
		return "Content-Length"
	case "Content-Range":
		return "Content-Range"
	case "Content-Security-Policy":
		return "Content-Security-Policy"
	case "Content-Type":
		return "Content-Type"
	case "Date":
		return "Date"
	case "Etag":
		return "Etag"
	case "Expires":
		return "Expires"
	case "Keep-Alive":
		return "Keep-Alive"
	case "Last-Modified":
		return "Last-Modified"
	case "Link":
		return "Link"
	case "Location":
		return "Location"
	case "Pragma":
		return "Pragma"
	case "Referrer-Policy":
		return "Referrer-Policy"
	case "Retry-After":
		return "Retry-After"
	case "Server":
		return "Server"
	case "Set-Cookie":
		return "Set-Cookie"
	case "Strict-Transport-Security":
		return "Strict-Transport-Security"
	case "Trailer":
		return "Trailer"
	case "Transfer-Encoding":
		return "Transfer-Encoding"
	case "Upgrade":
		return "Upgrade"
	case "Vary":
		return "Vary"
	case "Via":
		return "Via"
	case "Www-Authenticate":
		return "Www-Authenticate"
	case "X-Content-Type-Options":
		return "X-Content-Type-Options"
	case "X-Frame-Options":
		return "X-Frame-Options"
	case "X-Powered-By":
		return "X-Powered-By"
	}
	return ""
}

// readLine reads a line as [textproto.Reader.ReadLine] does (without its
// end, CRLF or LF; a line longer than br's buffer is put together), but
// returns it without a copy when it fits in the buffer: it is valid until
// the next read from br.
func readLine(br *bufio.Reader) ([]byte, error) {
	l, more, err := br.ReadLine()
	if err != nil {
		return nil, err
	}
	if !more {
		return l, nil
	}
	line := append([]byte(nil), l...)
	for more {
		if l, more, err = br.ReadLine(); err != nil {
			return nil, err
		}
		line = append(line, l...)
	}
	return line, nil
}

// statusText returns status as a string, without allocating for the
// usual ones.
func statusText(status []byte) string {
	switch string(status) {
	case "200 OK":
		return "200 OK"
	case "204 No Content":
		return "204 No Content"
	case "206 Partial Content":
		return "206 Partial Content"
	case "301 Moved Permanently":
		return "301 Moved Permanently"
	case "302 Found":
		return "302 Found"
	case "303 See Other":
		return "303 See Other"
	case "304 Not Modified":
		return "304 Not Modified"
	case "307 Temporary Redirect":
		return "307 Temporary Redirect"
	case "308 Permanent Redirect":
		return "308 Permanent Redirect"
	case "400 Bad Request":
		return "400 Bad Request"
	case "401 Unauthorized":
		return "401 Unauthorized"
	case "403 Forbidden":
		return "403 Forbidden"
	case "404 Not Found":
		return "404 Not Found"
	case "500 Internal Server Error":
		return "500 Internal Server Error"
	case "502 Bad Gateway":
		return "502 Bad Gateway"
	case "503 Service Unavailable":
		return "503 Service Unavailable"
	case "504 Gateway Timeout":
		return "504 Gateway Timeout"
	}
	return string(status)
}

// frame works out how the body of h.resp is delimited.
func frame(h *head, method string) error {
	resp := h.resp
	hdr := &resp.Header
	// The fields looked at are found in one pass, their values gathered
	// in arrays of this frame: none is kept.
	var teBuf, clBuf, connBuf [2]string
	te, cl, conn := teBuf[:0], clBuf[:0], connBuf[:0]
	for _, f := range hdr.Fields() {
		switch len(f.Name) { // the names compared are of three lengths
		case len("Transfer-Encoding"):
			if wire.EqualName(f.Name, "Transfer-Encoding") {
				te = append(te, f.Value)
			}
		case len("Content-Length"):
			if wire.EqualName(f.Name, "Content-Length") {
				cl = append(cl, f.Value)
			}
		case len("Connection"):
			if wire.EqualName(f.Name, "Connection") {
				conn = append(conn, f.Value)
			}
		}
	}
	hasTE, hasCL := len(te) > 0, len(cl) > 0
	if hasTE && hasCL {
		return framingErrorf("both Transfer-Encoding and Content-Length")
	}
	length := int64(-1)
	if hasCL {
		var err error
		if length, err = parseContentLength(cl); err != nil {
			return err
		}
	}
	if hasTE {
		if resp.ProtoMinor == 0 {
			return framingErrorf("Transfer-Encoding in an HTTP/1.0 response")
		}
		if len(te) != 1 || !strings.EqualFold(strings.TrimSpace(te[0]), "chunked") {
			return framingErrorf("unsupported Transfer-Encoding %q", clip(strings.Join(te, ", ")))
		}
	}
	closeTok := httpsyntax.HasToken(conn, "close")
	if resp.ProtoMinor == 1 {
		h.keepAlive = !closeTok
	} else {
		h.keepAlive = !closeTok && httpsyntax.HasToken(conn, "keep-alive")
	}
	code := resp.StatusCode
	switch {
	case method == http.MethodHead:
		h.framing = framingNone
		resp.ContentLength = length
		if hasTE {
			hdr.Del("Transfer-Encoding")
			resp.ContentLength = -1
		}
	case code == http.StatusNoContent || code == http.StatusNotModified:
		h.framing = framingNone
		resp.ContentLength = 0
		if hasTE {
			hdr.Del("Transfer-Encoding")
		}
	case hasTE:
		h.framing = framingChunked
		hdr.Del("Transfer-Encoding")
		resp.ContentLength = -1
		if tr := hdr.Values("Trailer"); tr != nil {
			resp.Trailer = declaredTrailer(tr)
		}
	case hasCL:
		h.framing = framingLength
		h.length = length
		resp.ContentLength = length
		if len(cl) > 1 {
			hdr.Set("Content-Length", cl[0])
		}
	default:
		h.framing = framingClose
		resp.ContentLength = -1
		h.keepAlive = false
	}
	return nil
}

// parseContentLength accepts one or more identical Content-Length lines,
// each made of decimal digits only.
func parseContentLength(cl []string) (int64, error) {
	first := strings.TrimSpace(cl[0])
	for _, v := range cl[1:] {
		if strings.TrimSpace(v) != first {
			return -1, framingErrorf("conflicting Content-Length values")
		}
	}
	n, ok := httpsyntax.ParseContentLength(first)
	if !ok {
		return -1, framingErrorf("invalid Content-Length %q", clip(first))
	}
	return n, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// chunkedComplete reports whether p begins with a whole chunked body
// without trailers, in the strict form every chunked reader agrees on:
// hexadecimal sizes, optional extensions without control characters,
// CRLF line ends, and the final "0" chunk followed by an empty line. It
// returns the number of bytes of the encoded body and of its data. When
// it says no, the body may still be valid: it is then read as a stream.
func chunkedComplete(p []byte) (encoded int, data int64, ok bool) {
	i := 0
	for {
		// chunk-size [ chunk-ext ] CRLF
		start := i
		var size int64
		for i < len(p) && isHex(p[i]) {
			if i-start >= 15 {
				return 0, 0, false
			}
			size = size<<4 | int64(unhex(p[i]))
			i++
		}
		if i == start {
			return 0, 0, false
		}
		if i < len(p) && p[i] == ';' {
			for i < len(p) && p[i] != '\r' {
				if p[i] < ' ' && p[i] != '\t' || p[i] == 0x7f {
					return 0, 0, false
				}
				i++
			}
		}
		if i-start >= 4096 || !bytes.HasPrefix(p[i:], crlf) {
			return 0, 0, false
		}
		i += 2
		if size == 0 {
			if !bytes.HasPrefix(p[i:], crlf) {
				return 0, 0, false // trailers, or not there yet
			}
			return i + 2, data, true
		}
		if int64(len(p)-i) < size+2 {
			return 0, 0, false
		}
		i += int(size)
		data += size
		if !bytes.HasPrefix(p[i:], crlf) {
			return 0, 0, false
		}
		i += 2
	}
}

var crlf = []byte("\r\n")

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// declaredTrailer returns the fields a Trailer header announces, as
// net/http's Response.Trailer holds them before the body is read: each
// canonical name with a nil value. Names that are not tokens and fields
// that may not be trailers ([httpsyntax.TrailerAllowed]) are left out;
// nil when none is left.
func declaredTrailer(lines []string) http.Header {
	var t http.Header
	for _, line := range lines {
		for name := range strings.SplitSeq(line, ",") {
			name = httpsyntax.TrimOWS(name)
			if !httpsyntax.IsToken(name) {
				continue
			}
			key := textproto.CanonicalMIMEHeaderKey(name)
			if !httpsyntax.TrailerAllowed(key) {
				continue
			}
			if t == nil {
				t = make(http.Header)
			}
			t[key] = nil
		}
	}
	return t
}

// chunkedReader reads a chunked body from br, then its trailer section.
// With resp set, the trailer fields are kept in resp.Trailer when the
// body reaches its end, as net/http does (the values of the fields the
// backend sent, added to the names its Trailer header announced); fields
// that may not be trailers are dropped. Without resp, they are checked
// and discarded.
type chunkedReader struct {
	cr   io.Reader
	tp   *textproto.Reader
	resp *wire.Response
	err  error
}

func newChunkedReader(br *bufio.Reader, tp *textproto.Reader, resp *wire.Response) *chunkedReader {
	return &chunkedReader{cr: httputil.NewChunkedReader(br), tp: tp, resp: resp}
}

func (r *chunkedReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.cr.Read(p)
	if err == io.EOF {
		err = r.readTrailer()
	} else if err != nil && err != io.ErrUnexpectedEOF && !isNetError(err) {
		err = framingErrorf("chunked body: %v", err)
	}
	r.err = err
	return n, err
}

// readTrailer reads the end of a chunked body after its last chunk: CRLF,
// or trailer fields each ending in CRLF, and an empty line. The section
// is bounded by maxTrailerBytes; a malformed or oversized one is an error
// and leaves resp.Trailer as it was.
func (r *chunkedReader) readTrailer() error {
	br := r.tp.R
	total := 0
	var fields http.Header
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			return framingErrorf("trailer line too long")
		case err == io.EOF:
			return io.ErrUnexpectedEOF
		case err != nil:
			return err
		}
		total += len(line)
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return framingErrorf("chunked body ends with a bare LF")
		}
		if len(line) == 2 {
			if r.resp != nil && len(fields) > 0 {
				if r.resp.Trailer == nil {
					r.resp.Trailer = fields
				} else {
					maps.Copy(r.resp.Trailer, fields)
				}
			}
			return io.EOF
		}
		if total > maxTrailerBytes {
			return framingErrorf("trailer section over %d bytes", maxTrailerBytes)
		}
		name, value, ok := bytes.Cut(line[:len(line)-2], []byte(":"))
		if !ok || !httpsyntax.IsToken(string(name)) || !httpsyntax.ValidFieldValue(value) {
			return framingErrorf("malformed trailer line %q", clip(string(line)))
		}
		if r.resp == nil {
			continue
		}
		key := textproto.CanonicalMIMEHeaderKey(string(name))
		if !httpsyntax.TrailerAllowed(key) {
			continue
		}
		if fields == nil {
			fields = make(http.Header)
		}
		fields[key] = append(fields[key], string(httpsyntax.TrimOWS(value)))
	}
}

// maxTrailerBytes bounds the trailer section of a chunked body.
const maxTrailerBytes = 16 << 10

// responseToHTTP returns resp as an *http.Response answering req, for
// [Pool.RoundTrip]: its fields in a new map, and trailers that arrive
// with the end of the body set in its Trailer as they are in resp's.
func responseToHTTP(resp *wire.Response, req *http.Request) *http.Response {
	hr := resp.HTTP()
	hr.Request = req
	if resp.ContentLength < 0 {
		hr.Body = &trailerBody{ReadCloser: resp.Body, from: resp, to: hr}
	}
	return hr
}

// trailerBody is the body of a [responseToHTTP] answer of unknown length:
// at its end, the trailer fields the pool kept in from.Trailer are set in
// to.Trailer.
type trailerBody struct {
	io.ReadCloser
	from *wire.Response
	to   *http.Response
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.to.Trailer = b.from.Trailer
	}
	return n, err
}
