package engine

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// hostPattern is one name of a hostfilter: a lower-case name in which "*"
// is any run of characters, and the listening port it requires (0: any).
type hostPattern struct {
	name string
	port int
}

// parseHostFilter parses the hostfilter attribute of <host>: names
// separated by spaces; "name:N" also requires listening port N, "name:*"
// any port.
func parseHostFilter(s string) ([]hostPattern, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, fmt.Errorf("empty hostfilter")
	}
	var out []hostPattern
	for _, f := range fields {
		name, port := f, ""
		if strings.HasPrefix(f, "[") {
			end := strings.IndexByte(f, ']')
			if end < 0 {
				return nil, fmt.Errorf("hostfilter %q: unclosed [", f)
			}
			name, port = f[1:end], strings.TrimPrefix(f[end+1:], ":")
			if f[end+1:] != "" && !strings.HasPrefix(f[end+1:], ":") {
				return nil, fmt.Errorf("hostfilter %q: bad port", f)
			}
		} else if i := strings.LastIndexByte(f, ':'); i >= 0 {
			name, port = f[:i], f[i+1:]
		}
		p := hostPattern{name: strings.ToLower(name)}
		if port != "" && port != "*" {
			n, err := strconv.Atoi(port)
			if err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("hostfilter %q: bad port %q", f, port)
			}
			p.port = n
		}
		if p.name == "" {
			return nil, fmt.Errorf("hostfilter %q: empty name", f)
		}
		out = append(out, p)
	}
	return out, nil
}

// matches reports whether the request's host name (lower-case, without
// port; "" when the request has no Host) and listening port match p.
func (p hostPattern) matches(name string, port int) bool {
	if p.port != 0 && p.port != port {
		return false
	}
	return glob(p.name, name)
}

// glob matches name against pattern, in which "*" is any run of
// characters. It runs in O(len(pattern)*len(name)) at worst.
func glob(pattern, name string) bool {
	// The usual patterns, "*", a name and "*.example.com", without the
	// general walk.
	switch star := strings.LastIndexByte(pattern, '*'); {
	case pattern == "*":
		return true
	case star < 0:
		return pattern == name
	case star == 0 && strings.IndexByte(pattern[1:], '*') < 0:
		return strings.HasSuffix(name, pattern[1:])
	}
	return globWalk(pattern, name)
}

// globWalk is glob's general case: a walk with one backtracking point.
func globWalk(pattern, name string) bool {
	px, nx := 0, 0
	nextPx, nextNx := -1, -1
	for px < len(pattern) || nx < len(name) {
		if px < len(pattern) {
			c := pattern[px]
			if c == '*' {
				nextPx, nextNx = px, nx+1
				px++
				continue
			}
			if nx < len(name) && name[nx] == c {
				px++
				nx++
				continue
			}
		}
		if nextPx >= 0 && nextNx <= len(name) {
			px, nx = nextPx, nextNx
			continue
		}
		return false
	}
	return true
}

// hostName returns the name in a Host header value, lower-case, without
// its port (IPv6 without brackets).
func hostName(h string) string {
	// The usual Host, ASCII without brackets, without net.SplitHostPort
	// and strings.ToLower: a pass of table look-ups, then vector searches
	// for the colons.
	var class byte
	for i := 0; i < len(h); i++ {
		class |= hostByteClass[h[i]]
	}
	if class&hostByteOther != 0 {
		return hostNameFull(h)
	}
	if i := strings.IndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i+1:], ':') < 0 {
		h = h[:i]
	} // else no port, or more than one colon: SplitHostPort refuses it
	if class&hostByteUpper != 0 {
		h = strings.ToLower(h)
	}
	return h
}

// The classes of hostByteClass.
const (
	hostByteUpper = 1 << iota // an ASCII upper-case letter
	hostByteOther             // a bracket or a byte above 0x7f: hostNameFull
)

// hostByteClass gives each byte's class for hostName.
var hostByteClass = func() (t [256]byte) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = hostByteUpper
	}
	t['['], t[']'] = hostByteOther, hostByteOther
	for c := 0x80; c < 0x100; c++ {
		t[c] = hostByteOther
	}
	return t
}()

// hostNameFull is hostName for any Host: IPv6 in brackets, non-ASCII.
func hostNameFull(h string) string {
	if strings.IndexByte(h, ':') >= 0 { // else no port: SplitHostPort would fail
		if host, _, err := net.SplitHostPort(h); err == nil {
			return strings.ToLower(host)
		}
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
}
