package rules

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ocsiproxy/ocsiproxy/forward"
	"github.com/ocsiproxy/ocsiproxy/pattern"
)

// ParseTarget parses an expanded revproxy destination: "http://" or
// "https://" (scheme case-insensitive), a host, an optional port and an
// optional path ("/" when absent); the query starts at the first "?".
// Bytes that may not appear raw in a request target are percent-encoded,
// so the request line sent to the backend is always well formed.
func ParseTarget(dest string) (*forward.Target, error) {
	t, err := parseTarget(dest)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// parseTarget splits an expanded destination into scheme, host and
// request target.
func parseTarget(dest string) (forward.Target, error) {
	i := strings.Index(dest, "://")
	if i < 0 {
		return forward.Target{}, fmt.Errorf("destination %q is not an http:// or https:// URL", dest)
	}
	scheme := strings.ToLower(dest[:i])
	if scheme != "http" && scheme != "https" {
		return forward.Target{}, fmt.Errorf("destination %q: scheme must be http or https", dest)
	}
	rest := dest[i+3:]
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	host, rest := rest[:end], rest[end:]
	if err := checkHostPort(host); err != nil {
		return forward.Target{}, fmt.Errorf("destination %q: %v", dest, err)
	}
	t := forward.Target{Scheme: scheme, Host: host}
	setPathQuery(&t, rest)
	return t, nil
}

// setPathQuery sets the path and query of t from rest, the part of a
// destination after the host.
func setPathQuery(t *forward.Target, rest string) {
	path, query := rest, ""
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		path, query = rest[:q], rest[q+1:]
		t.RawQuery = EscapeTarget(query)
		t.HasQuery = true
	}
	if path == "" {
		t.Path = "/"
		return
	}
	t.Path = EscapeTarget(path)
	if t.Path == path && t.RawQuery == query {
		t.URI = rest // nothing escaped or added: rest is the request target
	}
}

// targetParser parses the expansions of one destination template. When
// the template's scheme and host are literal (the groups come after
// them, as in "http://b:8080/\\1"), they are parsed once, at load time,
// and only the rest of each expansion is parsed; a template without
// groups is parsed once for all.
type targetParser struct {
	fixed  *forward.Target // the whole target of a constant template
	scheme string
	host   string
	n      int // length of the "scheme://host" prefix; 0: parse it all
}

// newTargetParser prepares the parsing of t's expansions: a constant
// destination is parsed once, a literal prefix is checked once.
func newTargetParser(t *pattern.Template) targetParser {
	lit, constant := t.LiteralPrefix()
	if constant {
		if ft, err := ParseTarget(lit); err == nil {
			return targetParser{fixed: ft}
		}
		return targetParser{}
	}
	i := strings.Index(lit, "://")
	if i < 0 {
		return targetParser{}
	}
	end := strings.IndexAny(lit[i+3:], "/?")
	if end < 0 {
		return targetParser{}
	}
	// ParseTarget of any expansion finds this same "://" and this same
	// end of the host: both lie in the literal prefix.
	n := i + 3 + end
	ft, err := ParseTarget(lit[:n])
	if err != nil {
		return targetParser{}
	}
	return targetParser{scheme: ft.Scheme, host: ft.Host, n: n}
}

// parse returns ParseTarget(dest), dest being an expansion of the
// parser's template. The target is returned by value, so that it need
// not be allocated.
func (p *targetParser) parse(dest string) (forward.Target, error) {
	switch {
	case p.fixed != nil:
		return *p.fixed, nil
	case p.n == 0:
		return parseTarget(dest)
	}
	t := forward.Target{Scheme: p.scheme, Host: p.host}
	setPathQuery(&t, dest[p.n:])
	return t, nil
}

// checkHostPort checks the host[:port] of a destination.
func checkHostPort(hp string) error {
	if hp == "" {
		return errors.New("no host")
	}
	host, port := hp, ""
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return errors.New("unclosed [ in host")
		}
		a, err := netip.ParseAddr(hp[1:end])
		if err != nil || !a.Is6() {
			return fmt.Errorf("bad IPv6 address %q", hp[1:end])
		}
		host, port = "", hp[end+1:]
		if port != "" && port[0] != ':' {
			return fmt.Errorf("bad host %q", hp)
		}
	} else if c := strings.LastIndexByte(hp, ':'); c >= 0 {
		host, port = hp[:c], hp[c:]
	}
	if port != "" {
		n, err := strconv.Atoi(port[1:])
		if err != nil || n < 1 || n > 65535 || port[1] == '+' || port[1] == '-' {
			return fmt.Errorf("bad port %q", port[1:])
		}
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(isAlnum(c) || strings.IndexByte("-._~%", c) >= 0) {
			return fmt.Errorf("bad character %q in host", c)
		}
	}
	if strings.HasPrefix(hp, "[") {
		return nil
	}
	if host == "" {
		return errors.New("no host")
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// EscapeTarget percent-encodes the bytes a request target may not hold
// raw (RFC 3986 pchar, "/" and "?" are kept; a "%" that starts no valid
// escape is encoded).
func EscapeTarget(s string) string {
	need := false
	for i := 0; i < len(s); i++ {
		if !targetByteOK(s, i) {
			need = true
			break
		}
	}
	if !need {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if targetByteOK(s, i) {
			b.WriteByte(s[i])
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[s[i]>>4])
		b.WriteByte(hex[s[i]&15])
	}
	return b.String()
}

// targetByteOK reports whether s[i] may stay as it is in a request
// target: an unreserved or sub-delim character, ':', '@', '/', '?', or
// the '%' of a well-formed escape.
func targetByteOK(s string, i int) bool {
	c := s[i]
	if c == '%' {
		return i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2])
	}
	return targetChar[c]
}

// targetChar marks the bytes a request target keeps as they are ('%'
// apart): a table, as the check runs on every byte of every target.
var targetChar = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = isAlnum(byte(c)) || strings.IndexByte("-._~!$&'()*+,;=:@/?", byte(c)) >= 0
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
