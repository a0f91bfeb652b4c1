// Package urlpath normalises the path of a request target before any rule
// matches it, so that one resource has one spelling and no encoding trick
// can reach a path that an access rule forbids (SPEC section 4).
//
// Input is the path exactly as the client sent it: the request target up
// to, not including, the first "?" (take it from the raw request target,
// e.g. http.Request.RequestURI, not from the decoded URL.Path). Output is
// still percent-encoded, in this canonical form:
//
//   - Percent-encoded unreserved characters (ALPHA DIGIT "-" "." "_" "~")
//     are decoded: "/%61dmin" is "/admin" (RFC 3986 section 6.2.2.2).
//   - Every other percent-encoding is kept, with upper-case hex digits
//     ("%2f" becomes "%2F"). In particular "%2F" is not a separator: it
//     stays encoded inside its segment. Reserved characters are not
//     decoded, because "a%3Bb" and "a;b" mean different things to a
//     backend. "%25" stays "%25", so "%252e" is never taken for a dot.
//   - Bytes that may not appear raw in a path (controls, space, non-ASCII,
//     `"` "#" "<" ">" "?" "[" "\" "]" "^" "`" "{" "|" "}") are
//     percent-encoded, so the raw and encoded spellings of such a byte
//     normalise to the same string. The backslash is not a separator; it
//     is just data, always written "%5C".
//   - Runs of slashes are merged into one, as nginx does with
//     merge_slashes on: "//admin" and "/a//b" are "/admin" and "/a/b".
//     Otherwise "//admin" would slip past a rule written for "admin"
//     while most backends still serve /admin for it. Slashes are merged
//     before dot-segments are removed, so "/a//../b" is "/b", as in nginx.
//   - Dot-segments are removed as in RFC 3986 section 5.2.4, after the
//     decoding above, so "%2e", "%2E", ".%2E" and the like count as "."
//     and "..". A segment that merely contains dots ("..%2F..", "..;x")
//     is an ordinary segment. A path that climbs above the root ("/..",
//     "/a/../../b") is an error (ErrAboveRoot), not silently clamped.
//   - A trailing slash is kept, and a final dot-segment leaves one:
//     "/a/b/" stays, "/a/b/." is "/a/b/", "/a/.." is "/".
//   - Path parameters (";x") are ordinary segment data and kept as is.
//     Beware that some backends (Tomcat) strip them and read "..;" as "..".
//
// Malformed percent-encoding ("%", "%4", "%G1") and NUL, raw or "%00", are
// errors. Every error is one of the Err values of this package; a server
// answers any of them with 400.
//
// Normalize is idempotent, and after it no segment is "." or "..", no
// "//" remains and no unreserved character is percent-encoded. A path
// already in canonical form (the common case) is returned unchanged
// without allocating.
package urlpath

import (
	"errors"
	"strings"
)

// Errors returned by Normalize.
var (
	ErrEmpty       = errors.New("urlpath: empty path")
	ErrNotAbsolute = errors.New(`urlpath: path does not begin with "/"`)
	ErrBadEscape   = errors.New("urlpath: malformed percent-encoding")
	ErrNUL         = errors.New("urlpath: null byte in path")
	ErrAboveRoot   = errors.New("urlpath: path climbs above the root")
)

const upperHex = "0123456789ABCDEF"

// unreserved marks RFC 3986 unreserved characters: decoded when
// percent-encoded.
var unreserved = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
		t[c+'a'-'A'] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~" {
		t[c] = true
	}
	return
}()

// rawOK marks the bytes that stay raw inside a segment: unreserved,
// sub-delims, ":" and "@" (RFC 3986 pchar without pct-encoded). "/" and
// "%" are handled apart and are not in the table.
var rawOK = func() (t [256]bool) {
	t = unreserved
	for _, c := range "!$&'()*+,;=:@" {
		t[c] = true
	}
	return
}()

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// Normalize returns the canonical form of rawPath (see the package
// documentation), or an error for a path that must be refused.
func Normalize(rawPath string) (string, error) {
	if rawPath == "" {
		return "", ErrEmpty
	}
	if rawPath[0] != '/' {
		return "", ErrNotAbsolute
	}
	if isNormal(rawPath) {
		return rawPath, nil
	}
	return normalize(rawPath)
}

// isNormal reports whether p (which begins with "/") is already in
// canonical form: only raw-allowed bytes and canonical escapes, no empty
// segment except a final one, no dot-segment.
func isNormal(p string) bool {
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			switch i - segStart {
			case 0:
				if i != len(p) {
					return false // "//"
				}
			case 1:
				if p[segStart] == '.' {
					return false
				}
			case 2:
				if p[segStart] == '.' && p[segStart+1] == '.' {
					return false
				}
			}
			segStart = i + 1
			continue
		}
		c := p[i]
		if c == '%' {
			if i+2 >= len(p) {
				return false
			}
			h, lo := p[i+1], p[i+2]
			hv, ok1 := unhex(h)
			lv, ok2 := unhex(lo)
			if !ok1 || !ok2 || h >= 'a' || lo >= 'a' {
				return false // malformed or lower-case hex
			}
			if b := hv<<4 | lv; b == 0 || unreserved[b] {
				return false
			}
			i += 2
			continue
		}
		if !rawOK[c] {
			return false
		}
	}
	return true
}

// normalize is Normalize: it decodes, removes dot-segments and merges
// slashes in one pass.
func normalize(p string) (string, error) {
	var buf [256]byte
	out := buf[:0]
	trailing := false // the result must end with "/"
	n := len(p)
	i := 0
	for i < n {
		// p[i] == '/': skip the whole run.
		for i < n && p[i] == '/' {
			i++
		}
		if i == n {
			trailing = true
			break
		}
		start := len(out)
		out = append(out, '/')
		for i < n && p[i] != '/' {
			c := p[i]
			switch {
			case c == '%':
				if i+2 >= n {
					return "", ErrBadEscape
				}
				hv, ok1 := unhex(p[i+1])
				lv, ok2 := unhex(p[i+2])
				if !ok1 || !ok2 {
					return "", ErrBadEscape
				}
				b := hv<<4 | lv
				switch {
				case b == 0:
					return "", ErrNUL
				case unreserved[b]:
					out = append(out, b)
				default:
					out = append(out, '%', upperHex[b>>4], upperHex[b&15])
				}
				i += 3
				continue
			case c == 0:
				return "", ErrNUL
			case rawOK[c]:
				out = append(out, c)
			default:
				out = append(out, '%', upperHex[c>>4], upperHex[c&15])
			}
			i++
		}
		seg := out[start+1:]
		trailing = false
		switch {
		case len(seg) == 1 && seg[0] == '.':
			out = out[:start]
			trailing = true
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			out = out[:start]
			j := lastSlash(out)
			if j < 0 {
				return "", ErrAboveRoot
			}
			out = out[:j]
			trailing = true
		}
	}
	if len(out) == 0 {
		return "/", nil
	}
	if trailing {
		out = append(out, '/')
	}
	// out != p here: isNormal(p) was false, and every reason for that
	// (merged slash, dot-segment, decoded or re-encoded byte) changes it.
	return string(out), nil
}

func lastSlash(b []byte) int {
	for j := len(b) - 1; j >= 0; j-- {
		if b[j] == '/' {
			return j
		}
	}
	return -1
}

// Segments splits a normalised path into its decoded segments, for site
// matching: split on "/", drop the leading empty segment, percent-decode
// each one. "%2F" decodes to "/" inside its segment. A trailing slash gives
// a final empty segment ("/a/b/" is ["a" "b" ""], "/" is [""]); "" gives
// nil. A malformed escape (impossible after Normalize) is left as is.
// Segments without "%" are substrings of path.
func Segments(path string) []string {
	if path == "" {
		return nil
	}
	if path[0] == '/' {
		path = path[1:]
	}
	segs := make([]string, 0, strings.Count(path, "/")+1)
	for {
		j := strings.IndexByte(path, '/')
		if j < 0 {
			return append(segs, unescape(path))
		}
		segs = append(segs, unescape(path[:j]))
		path = path[j+1:]
	}
}

// unescape decodes every well-formed %XX of s.
func unescape(s string) string {
	k := strings.IndexByte(s, '%')
	if k < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:k]...)
	for i := k; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hv, ok1 := unhex(s[i+1])
			lv, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, hv<<4|lv)
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}
