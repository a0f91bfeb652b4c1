package adversarial

import (
	"strings"
)

// Path tricks against the rule that forbids /admin. A backend reads the
// target it receives in its own way; a case passes when the proxy refuses
// the request (403, 400, ...) or forwards a target that the backend's way
// of reading does not take to /admin. The readings, from strict to lax:
//
//   - readRFC: RFC 3986: percent-encoded unreserved characters decoded,
//     dot-segments removed (section 5.2.4, 6.2.2);
//   - readNginx: what nginx, Apache and most static file servers do:
//     every escape decoded (%2F too), runs of slashes merged, then
//     dot-segments removed;
//   - readTomcat: Java servlet containers: ";parameters" dropped from
//     each segment, then RFC 3986;
//   - readIIS: Windows servers: "\" and "%5C" are separators too.
type reading int

const (
	readRFC reading = iota
	readNginx
	readTomcat
	readIIS
	readFragment // a fragment ("#...") dropped, then RFC 3986
)

// reaches reports whether target, read as r, is the path /prefix or
// below it (a string prefix, as the proxies' rules are).
func reaches(target, prefix string, r reading) bool {
	p, _, _ := strings.Cut(target, "?")
	if r == readFragment {
		p, _, _ = strings.Cut(p, "#")
	}
	var segs []string
	decode := func(s string) string { return decodePct(s, r == readNginx || r == readIIS) }
	switch r {
	case readNginx:
		segs = strings.Split(decode(p), "/")
	case readIIS:
		segs = strings.FieldsFunc(decode(strings.ReplaceAll(p, `\`, "/")), func(c rune) bool { return c == '/' || c == '\\' })
		segs = append([]string{""}, segs...)
	default:
		for _, s := range strings.Split(p, "/") {
			if r == readTomcat {
				s, _, _ = strings.Cut(s, ";")
			}
			segs = append(segs, decode(s))
		}
	}
	var out []string
	for i, s := range segs {
		switch {
		case s == "." || s == "":
			if r == readNginx || i == 0 {
				continue
			}
			if s == "" {
				out = append(out, s)
			}
		case s == "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
		}
	}
	return strings.HasPrefix("/"+strings.Join(out, "/"), "/"+prefix)
}

// decodePct decodes the escapes of unreserved characters, or every escape
// when all is set.
func decodePct(s string, all bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHexDigit(s[i+1]) && isHexDigit(s[i+2]) {
			c := unhexByte(s[i+1])<<4 | unhexByte(s[i+2])
			if all || isUnreserved(c) {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhexByte(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0
}

// pathCase sends target and checks that the backend, read as r, did not
// get /admin.
func pathCase(name, rfc, target string, r reading) tcase {
	return tcase{name: name, rfc: rfc, run: func(c *ctx) {
		e := c.ex(get("GET", target, ""), "GET")
		for _, br := range c.reqs() {
			if reaches(br.Target, "admin", r) {
				c.fail("answered %s; the backend received %q, which it reads as /admin", e.first(), br.Target)
			}
		}
	}}
}

// pathAllowed is a path that is not /admin by any reading: it must be
// served.
func pathAllowed(name, rfc, target string) tcase {
	return answered(name, rfc, get("GET", target, ""), "GET", nil)
}

func init() {
	r524 := "RFC 3986 5.2.4: dot-segments are removed before matching"
	r622 := "RFC 3986 6.2.2.2: %XX of an unreserved character is that character"
	nginx := "RFC 3986 2.2: %2F is data, but nginx-style backends decode it: the proxy must not forward what they read as /admin"
	tomcat := "RFC 3986 3.3: \";\" is data, but servlet containers drop path parameters"
	iis := "RFC 3986 2: \"\\\" is not a separator, but Windows servers take it for one"
	register("path",
		pathCase("plain", "baseline: the rule forbids /admin", "/admin", readRFC),
		pathCase("below", "baseline", "/admin/x", readRFC),
		pathCase("with query", "RFC 3986 3.4: the query is not the path", "/admin?x=1", readRFC),
		pathCase("double slash", "RFC 3986 3.3 (empty segments), nginx merge_slashes", "//admin", readNginx),
		pathCase("triple slash", "RFC 3986 3.3, nginx merge_slashes", "///admin/x", readNginx),
		pathCase("dot segment", r524, "/./admin", readRFC),
		pathCase("dot-dot segment", r524, "/x/../admin", readRFC),
		pathCase("dot then dot-dot", r524, "/x/./../admin", readRFC),
		pathCase("dot-dot above the root", r524+" (a path above the root is refused or clamped)", "/../admin", readRFC),
		pathCase("two dot-dots above the root", r524, "/x/../../admin", readRFC),
		pathCase("encoded dot", r524+", "+r622, "/%2e/admin", readRFC),
		pathCase("encoded dot-dot lower", r524+", "+r622, "/x/%2e%2e/admin", readRFC),
		pathCase("encoded dot-dot upper", r524+", "+r622, "/x/%2E%2E/admin", readRFC),
		pathCase("half-encoded dot-dot", r524+", "+r622, "/x/.%2e/admin", readRFC),
		pathCase("half-encoded dot-dot 2", r524+", "+r622, "/x/%2e./admin", readRFC),
		pathCase("encoded letter", r622, "/%61dmin", readRFC),
		pathCase("encoded letter inside", r622, "/adm%69n/x", readRFC),
		pathCase("all letters encoded", r622, "/%61%64%6d%69%6e", readRFC),
		pathCase("double encoding", "RFC 3986 2.4: decode once", "/%2561dmin", readRFC),
		pathCase("encoded slash before", nginx, "/%2Fadmin", readNginx),
		pathCase("encoded slash lower case", nginx, "/%2fadmin", readNginx),
		pathCase("encoded slash and dot-dot", nginx, "/x/..%2Fadmin", readNginx),
		pathCase("encoded slashes around dot-dot", nginx, "/x%2F..%2Fadmin", readNginx),
		pathCase("encoded slash dot-dot encoded", nginx, "/x%2f%2e%2e%2fadmin", readNginx),
		pathCase("encoded slash after", nginx, "/admin%2Fx", readNginx),
		pathCase("backslash dot-dot", iis, `/x/..\admin`, readIIS),
		pathCase("backslashes", iis, `/x\..\admin`, readIIS),
		pathCase("encoded backslash", iis, "/x/..%5Cadmin", readIIS),
		pathCase("leading backslash", iis, `/\admin`, readIIS),
		pathCase("dot-dot with parameter", tomcat, "/x/..;/admin", readTomcat),
		pathCase("dot with parameter", tomcat, "/.;/admin", readTomcat),
		pathCase("parameter segment", tomcat, "/;x/admin", readTomcat),
		pathCase("parameter on admin", tomcat, "/admin;jsessionid=1", readTomcat),
		pathCase("encoded parameter dot-dot", tomcat, "/x/%2e%2e;/admin", readTomcat),
		pathCase("NUL after", "RFC 3986 2.1: %00 is refused", "/admin%00", readRFC),
		pathCase("absolute-form with encoded dots", r524, "http://h/x/%2e%2e/admin", readRFC),
		pathAllowed("admin in the query", "RFC 3986 3.4: a query naming admin is not the path", "/x?p=/admin"),
		pathAllowed("dot-dot in the query", "RFC 3986 3.4: dot-segments are a path thing", "/x?y=/../admin"),
		pathAllowed("a path outside the rule", "control: what the rule does not forbid is served", "/adm/x"),
	)
}
