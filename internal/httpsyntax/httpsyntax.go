// Package httpsyntax holds the pieces of HTTP syntax (RFC 9110 section
// 5.6) that several packages check or write: tokens, comma-separated
// token lists and field values.
package httpsyntax

import (
	"strings"
)

// IsToken reports whether s is a non-empty token (RFC 9110 section
// 5.6.2): the syntax of methods, field names and most list members.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !tokenChar[c] {
			return false
		}
	}
	return true
}

// load8 returns the eight bytes of w (len(w) == 8) as a little-endian
// word: the compiler makes it one load.
func load8[T string | []byte](w T) uint64 {
	_ = w[7]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

// HasSpaceOrCRLF reports whether s holds a space, tab, CR or LF: the
// bytes that would end a request line's parts or a field line early.
func HasSpaceOrCRLF(s string) bool {
	if len(s) < 8 {
		return spaceOrCRLF(s)
	}
	for {
		// A word with a byte below 0x21 is looked at byte by byte; the
		// last word overlaps the one before.
		w := s[:8]
		if x := load8(w); (x-0x21*lo8)&^x&hi8 != 0 && spaceOrCRLF(w) {
			return true
		}
		if len(s) == 8 {
			return false
		}
		if len(s) < 16 {
			s = s[len(s)-8:]
		} else {
			s = s[8:]
		}
	}
}

// spaceOrCRLF is HasSpaceOrCRLF one byte at a time.
func spaceOrCRLF(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
			return true
		}
	}
	return false
}

// TrimOWS returns s without its leading and trailing spaces and tabs
// (optional whitespace, RFC 9110 section 5.6.3), as strings.Trim(s,
// " \t") and bytes.Trim do, without building a set of the two bytes on
// every call.
func TrimOWS[T string | []byte](s T) T {
	i, j := 0, len(s)
	for i < j && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	return s[i:j]
}

// ValidFieldValue reports whether v holds only the bytes RFC 9110 section
// 5.5 allows in a field value: visible characters, obs-text (0x80 and
// above), spaces and tabs.
func ValidFieldValue[T string | []byte](v T) bool { return fieldValue(v, 0) }

// ASCIIFieldValue reports whether v holds only visible ASCII characters,
// spaces and tabs: a valid field value without obs-text.
func ASCIIFieldValue[T string | []byte](v T) bool { return fieldValue(v, hi8) }

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// fieldValue checks v eight bytes at a time (one load, a few arithmetic
// operations): a word with no byte below 0x20, none equal to 0x7f and, of
// the bits in refuse, none set is valid as it is; any other word is
// checked byte by byte, which decides (a tab is valid). The tests are
// those of "Bit Twiddling Hacks" (hasless, haszero): they may flag a
// valid word, never miss an invalid one.
func fieldValue[T string | []byte](v T, refuse uint64) bool {
	for ; len(v) >= 8; v = v[8:] {
		w := v[:8]
		x := load8(w)
		ctl := (x - 0x20*lo8) &^ x & hi8 // a byte below 0x20
		y := x ^ 0x7f*lo8
		del := (y - lo8) &^ y & hi8 // a byte 0x7f
		if ctl|del|x&refuse != 0 && !fieldBytes(w, refuse != 0) {
			return false
		}
	}
	return fieldBytes(v, refuse != 0)
}

// fieldBytes checks v byte by byte, for fieldValue.
func fieldBytes[T string | []byte](v T, asciiOnly bool) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < ' ' && c != '\t' || c == 0x7f || asciiOnly && c >= 0x80 {
			return false
		}
	}
	return true
}

// IsTokenByte reports whether c may appear in a token.
func IsTokenByte(c byte) bool { return tokenChar[c] }

// tokenChar marks the bytes of tokens; a table of 256, so that a byte
// indexes it without a bounds check.
var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// HasToken reports whether one of the comma-separated lists in values
// (the lines of one field, such as Connection) holds token, ignoring case
// and the optional whitespace around members.
func HasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(TrimOWS(t), token) {
				return true
			}
		}
	}
	return false
}

// AppendFieldValue appends the field value v with any CR or LF replaced
// by a space (as net/http writes values), so that a value can never end
// its field line or the head early.
func AppendFieldValue(b []byte, v string) []byte {
	if strings.IndexByte(v, '\r') < 0 && strings.IndexByte(v, '\n') < 0 {
		return append(b, v...) // the usual value: two vector searches
	}
	i := len(b)
	b = append(b, v...)
	for ; i < len(b); i++ {
		if b[i] == '\r' || b[i] == '\n' {
			b[i] = ' '
		}
	}
	return b
}

// TrailerAllowed reports whether the field of canonical name key may be
// passed on as a trailer field. RFC 9110 section 6.5.1: fields that
// frame the message (Content-Length, Transfer-Encoding), route it (Host),
// modify a request (Expect, Range, TE, If-*...), authenticate (Cookie,
// Set-Cookie, Authorization...), control caching or the response's
// context (Cache-Control, Location, Vary...) or describe the content's
// format (Content-Type, Content-Encoding), and the hop-by-hop fields,
// have to be known before the content and never come from a trailer
// section. The list holds those of net/http's HTTP/2 server
// (httpguts.ValidTrailerHeader) and more.
func TrailerAllowed(key string) bool {
	if strings.HasPrefix(key, "If-") {
		return false
	}
	switch key {
	case "Age", "Authorization", "Cache-Control", "Connection", "Content-Encoding",
		"Content-Length", "Content-Range", "Content-Type", "Cookie", "Date", "Expect",
		"Expires", "Host", "Keep-Alive", "Location", "Max-Forwards", "Pragma",
		"Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "Range", "Realm",
		"Retry-After", "Set-Cookie", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Vary",
		"Www-Authenticate":
		return false
	}
	return true
}

// AcceptsTrailers reports whether the client of a request of HTTP version
// major.minor, with te the values of its TE fields, can receive the
// trailer fields of a chunked answer: an HTTP/2 client always; an
// HTTP/1.1 client when te lists "trailers" (RFC 9110 section 10.1.4); an
// HTTP/1.0 client never. TE is hop-by-hop: it is read here, on the
// inbound request, and never passed on as the client wrote it.
func AcceptsTrailers(major, minor int, te []string) bool {
	switch {
	case major >= 2:
		return true
	case major == 1 && minor >= 1:
		return HasToken(te, "trailers")
	}
	return false
}

// ParseContentLength parses a Content-Length value (RFC 9110 section
// 8.6): decimal digits only, no sign, no spaces, at most 18 of them (a
// longer length is refused rather than risk an overflow).
func ParseContentLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
