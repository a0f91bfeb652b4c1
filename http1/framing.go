package http1

import (
	"bytes"
	"errors"
)

// Request framing that net/http accepts but a reverse proxy must refuse.
//
// http.ReadRequest, the request parser of the plain-HTTP server (h1.go),
// resolves a request carrying both Content-Length and Transfer-Encoding
// by dropping the Content-Length (RFC 9112 section 6.3 lets an
// intermediary do that), and keeps one of several Host fields. A front
// proxy that trusted the Content-Length instead would disagree with us
// about where the next request starts: request smuggling. The evidence is
// gone once the request is parsed, so the server's connReader feeds every
// byte it reads to a tracker that follows the framing of each request
// exactly as a strict HTTP/1.1 parser does and records one verdict per
// request head; the handler refuses a flagged request with 400 and closes
// the connection. It passes over what the server passes over: the CR and
// LF after a POST. A head that the server's own parser (parsePlainHead)
// takes whole from a read is sound by that parser's rules; the tracker
// then skips it instead of reading it a second time (skipHead).
var (
	errCLAndTE  = errors.New("both Content-Length and Transfer-Encoding")
	errTE10     = errors.New("Transfer-Encoding in an HTTP/1.0 request")
	errFoldedTE = errors.New("Content-Length or Transfer-Encoding folded over lines")
	// errHosts: RFC 9112 section 3.2, a request with more than one Host
	// field is refused (http.ReadRequest keeps one of them silently).
	errHosts = errors.New("more than one Host field")
	// errUntracked is the verdict on a request whose head the tracker did
	// not see as one: it had stopped following the connection, or lost
	// its place. Such a request is refused rather than trusted.
	errUntracked = errors.New("framing of the connection not followed")
)

// framing is the parser state of one connection. It works on the bytes
// as read, without allocating per request.
type framing struct {
	state     framingState
	line      []byte // a line split over reads, until its end arrives
	remaining int64
	max       int // longest line followed; longer ones stop the tracking

	// The head being read.
	inHead  bool
	http10  bool // the request line ends with HTTP/1.0
	cl, te  int
	hosts   int
	clValue []byte // the last Content-Length value, trimmed
	clSame  bool   // every Content-Length line has the same value
	teChunk bool   // the last Transfer-Encoding value is "chunked"
	lastKey headerKey
	folded  bool
	post    bool // the request line's method is POST

	// crlf is how many of the bytes before the next request line may
	// still be CR or LF that the server discards, as net/http does after
	// a POST (RFC 9112 section 2.2): up to four, while they last.
	crlf int

	// verdicts[head:] are the verdicts not yet asked for.
	verdicts []error
	head     int
}

// headerKey is what the framing cares about in a header field name.
type headerKey uint8

const (
	keyOther headerKey = iota
	keyContentLength
	keyTransferEncoding
	keyHost
)

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
			if f.crlf > 0 && f.state == fsHead && !f.inHead && len(f.line) == 0 {
				for f.crlf > 0 && len(p) > 0 && (p[0] == '\r' || p[0] == '\n') {
					p, f.crlf = p[1:], f.crlf-1
				}
				if len(p) == 0 {
					return
				}
				f.crlf = 0 // the request line begins
			}
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				f.line = append(f.line, p...)
				if len(f.line) > f.max {
					f.state = fsStopped
				}
				return
			}
			if len(f.line)+i > f.max {
				// The same bound whether the line came in one read or
				// several (a FuzzFraming finding).
				f.state = fsStopped
				return
			}
			line := p[:i]
			if len(f.line) > 0 {
				f.line = append(f.line, line...)
				line = f.line
			}
			p = p[i+1:]
			f.onLine(bytes.TrimSuffix(line, []byte("\r")))
			f.line = f.line[:0]
		}
	}
}

// onLine follows one whole line of the connection, by parser state.
func (f *framing) onLine(line []byte) {
	switch f.state {
	case fsHead:
		f.headLine(line)
	case fsChunkSize:
		size := line
		if i := bytes.IndexByte(size, ';'); i >= 0 {
			size = size[:i]
		}
		n, ok := parseInt(bytes.TrimSpace(size), 16)
		switch {
		case !ok || n < 0:
			f.state = fsStopped
		case n == 0:
			f.state = fsTrailer
		default:
			f.state, f.remaining = fsChunkData, n
		}
	case fsChunkEnd:
		if len(line) != 0 {
			f.state = fsStopped
			return
		}
		f.state = fsChunkSize
	case fsTrailer:
		if len(line) == 0 {
			f.state = fsHead
		}
	}
}

// headLine follows one line of a request head: the request line, then
// the fields that decide the framing, and the verdict at its end.
func (f *framing) headLine(line []byte) {
	if !f.inHead {
		if len(line) == 0 {
			return // empty lines before a request line are ignored
		}
		f.inHead = true
		f.http10 = string(line[bytes.LastIndexByte(line, ' ')+1:]) == "HTTP/1.0"
		f.post = bytes.HasPrefix(line, []byte("POST "))
		f.cl, f.te, f.hosts, f.lastKey, f.folded = 0, 0, 0, keyOther, false
		return
	}
	if len(line) != 0 {
		if line[0] == ' ' || line[0] == '\t' {
			if f.lastKey != keyOther {
				f.folded = true
			}
			return
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		f.lastKey = keyOf(name)
		switch f.lastKey {
		case keyContentLength:
			f.cl++
			v := bytes.TrimSpace(value)
			f.clSame = f.cl == 1 || f.clSame && bytes.Equal(v, f.clValue)
			f.clValue = append(f.clValue[:0], v...)
		case keyTransferEncoding:
			f.te++
			// EqualFold, as lower-casing then comparing did: the Kelvin
			// sign counts as "k".
			f.teChunk = bytes.EqualFold(bytes.TrimSpace(value), []byte("chunked"))
		case keyHost:
			f.hosts++
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
	case f.te > 0 && f.http10:
		verdict = errTE10
	case f.hosts > 1:
		verdict = errHosts
	}
	f.headEnded(verdict, f.post)
	switch {
	case verdict != nil:
		f.state = fsStopped // the handler closes the connection
	case f.te > 0:
		if f.te == 1 && f.teChunk {
			f.state = fsChunkSize
		} else {
			f.state = fsStopped // net/http answers 501 and closes
		}
	case f.cl == 1:
		n, ok := parseInt(f.clValue, 10)
		if !ok || n < 0 || bytes.ContainsAny(f.clValue, "+-") {
			f.state = fsStopped // net/http answers 400 and closes
		} else if n > 0 {
			f.state, f.remaining = fsBody, n
		}
	case f.cl > 1:
		// net/http answers 400 unless the values agree, and takes one of
		// them when they do (RFC 9112 section 6.3 item 5): so must we,
		// or the requests that follow on the connection go untracked.
		n, ok := parseInt(f.clValue, 10)
		if !f.clSame || !ok || n < 0 || bytes.ContainsAny(f.clValue, "+-") {
			f.state = fsStopped
		} else if n > 0 {
			f.state, f.remaining = fsBody, n
		}
	}
}

// keyOf classifies a header field name, ignoring ASCII case. Lower-casing
// with Unicode rules gives the same answers: the only non-ASCII character
// that lower-cases to ASCII is the Kelvin sign, and neither name has a k.
func keyOf(name []byte) headerKey {
	switch {
	case asciiEqualFold(name, "content-length"):
		return keyContentLength
	case asciiEqualFold(name, "transfer-encoding"):
		return keyTransferEncoding
	case asciiEqualFold(name, "host"):
		return keyHost
	}
	return keyOther
}

// asciiEqualFold reports whether b equals the lower-case ASCII string s,
// ignoring the case of ASCII letters.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// parseInt parses b as strconv.ParseInt(string(b), base, 64) does (an
// optional sign, at least one digit, in range), without copying b.
func parseInt(b []byte, base uint64) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var un uint64
	for _, c := range b {
		var d uint64
		switch {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case 'a' <= c && c <= 'z':
			d = uint64(c-'a') + 10
		case 'A' <= c && c <= 'Z':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= base || un > (1<<63)/base {
			return 0, false // not a digit, or out of range
		}
		un = un*base + d
	}
	if un > 1<<63 || un == 1<<63 && !neg {
		return 0, false
	}
	if neg {
		return -int64(un), true
	}
	return int64(un), true
}

// headEnded records the verdict on a head that has ended, and, after a
// POST, that up to four CR or LF before the next request line are passed
// over.
func (f *framing) headEnded(verdict error, post bool) {
	if f.head == len(f.verdicts) {
		f.verdicts, f.head = f.verdicts[:0], 0
	}
	f.verdicts = append(f.verdicts, verdict)
	f.crlf = 0
	if post {
		f.crlf = 4
	}
}

// atRest reports whether the tracker waits for a request head and has
// seen nothing of one: no line begun, no verdict pending.
func (f *framing) atRest() bool {
	return f.state == fsHead && !f.inHead && len(f.line) == 0 && f.head == len(f.verdicts)
}

// skipHead follows a request head that parsePlainHead took, without
// reading it again, when the tracker was at rest (atRest) before it and
// the head is no longer than f.max. Such a head is sound: it has no
// Transfer-Encoding, at most one Content-Length (of decimal digits, the
// body's length) and one Host, and no folded line. So feeding the head
// would end as this does: a nil verdict, length bytes of body to follow,
// and after them, for a POST, up to four CR or LF to pass over.
// FuzzSkipHead checks it against feeding.
func (f *framing) skipHead(length int64, post bool) {
	f.headEnded(nil, post)
	if length > 0 {
		f.state, f.remaining = fsBody, length
	}
}

// next returns the verdict on the oldest request head not yet asked for.
// Every request the server parses was read through the tracker, so a
// missing verdict means the tracker stopped or lost its place: that
// request is refused (errUntracked), never waved through.
func (f *framing) next() error {
	if f.head == len(f.verdicts) {
		return errUntracked
	}
	v := f.verdicts[f.head]
	f.verdicts[f.head] = nil
	f.head++
	return v
}

// FramingError returns the framing tracker's verdict on the head of the
// request being answered: nil when its framing is sound, else why the
// request must be refused (400, and the connection closed). Handlers find
// it on the ResponseWriter, as they find http.Flusher.
func (w *h1Response) FramingError() error { return w.c.verdict }
