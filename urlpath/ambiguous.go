package urlpath

import (
	"errors"
	"strings"
)

// ErrAmbiguous is the error a server gives (400) for a path that
// Ambiguous reports.
var ErrAmbiguous = errors.New(`urlpath: path reads differently to backends that take "%2F" or "%5C" for "/" or drop ";" parameters`)

// Ambiguous reports whether p, a path in canonical form (a result of
// Normalize), names another path to a backend that reads it more loosely
// than RFC 3986 does, in one of three common ways:
//
//   - "%2F" decoded to "/" before the path is split (nginx, Apache with
//     AllowEncodedSlashes, most static file servers), then runs of "/"
//     merged;
//   - "%5C" (a backslash; Normalize writes a raw one so) taken for "/"
//     (Windows servers);
//   - ";parameters" dropped from each segment (Java servlet containers:
//     "/x/..;/admin" is "/admin" to Tomcat).
//
// p is ambiguous when, read any of these ways, one of its segments is
// "." or "..", or empty other than first or last: then the access rules,
// which see p, and the backend would not see the same path. No
// legitimate client needs such a path ("/a/..%2Fb", "/%2Fadmin",
// "/x/..;/y", "/;x/y"); "%2F" and ";" elsewhere ("/a%2Fb", "/a;v=1/b")
// are not ambiguous.
func Ambiguous(p string) bool {
	if !strings.Contains(p, "%2F") && !strings.Contains(p, "%5C") && !strings.Contains(p, ";") {
		return false // the common case: the segments are the ones Normalize checked
	}
	// Pieces between separators ("/", "%2F", "%5C"), each cut at its first
	// ";".
	var pieces []string
	start := 0
	for i := 0; i <= len(p); {
		sep := 0
		switch {
		case i == len(p):
		case p[i] == '/':
			sep = 1
		case strings.HasPrefix(p[i:], "%2F"), strings.HasPrefix(p[i:], "%5C"):
			sep = 3
		default:
			i++
			continue
		}
		piece := p[start:i]
		if j := strings.IndexByte(piece, ';'); j >= 0 {
			piece = piece[:j]
		}
		pieces = append(pieces, piece)
		if sep == 0 {
			break
		}
		i += sep
		start = i
	}
	for k, piece := range pieces {
		switch piece {
		case ".", "..":
			return true
		case "":
			if k != 0 && k != len(pieces)-1 {
				return true
			}
		}
	}
	return false
}
