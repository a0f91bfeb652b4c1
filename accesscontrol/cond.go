package accesscontrol

import (
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"

	"github.com/ocsiproxy/ocsiproxy/pattern"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// cond is a compiled <if> condition. String describes it for traces.
type cond interface {
	eval(st *stage.State) (bool, error)
	String() string
}

// compileCond compiles one condition element, reporting problems into
// c.Errors(); it returns nil when e is wrong.
func compileCond(c stage.Compiler, e *xmlconf.Element) cond {
	errs := c.Errors()
	switch e.Name {
	case "ip":
		if !checkLeaf(errs, e, []string{"value"}, nil) {
			return nil
		}
		v, _ := e.Attr("value")
		p, err := ParsePrefix(v)
		if err != nil {
			errs.Add(e.Pos, "<ip>: bad address or prefix %q", v)
			return nil
		}
		return &ipCond{value: v, prefix: p}
	case "port":
		if !checkLeaf(errs, e, []string{"value"}, nil) {
			return nil
		}
		v, _ := e.Attr("value")
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 65535 {
			errs.Add(e.Pos, "<port>: bad port %q", v)
			return nil
		}
		return portCond(n)
	case "ssl":
		if !checkLeaf(errs, e, nil, nil) {
			return nil
		}
		return sslCond{}
	case "header":
		if !checkLeaf(errs, e, []string{"name", "regexp"}, nil) {
			return nil
		}
		name, _ := e.Attr("name")
		expr, _ := e.Attr("regexp")
		ok := true
		if !httpsyntax.IsToken(name) {
			errs.Add(e.Pos, "<header>: bad header name %q", name)
			ok = false
		}
		re, err := pattern.Compile(expr, true, c.MatchTimeout())
		if err != nil {
			errs.Add(e.Pos, "<header>: %v", err)
			ok = false
		}
		if !ok {
			return nil
		}
		return &headerCond{pos: e.Pos, name: http.CanonicalHeaderKey(name), re: re}
	case "method":
		if !checkLeaf(errs, e, []string{"value"}, nil) {
			return nil
		}
		v, _ := e.Attr("value")
		if !httpsyntax.IsToken(v) {
			errs.Add(e.Pos, "<method>: bad method %q", v)
			return nil
		}
		return methodCond(v)
	case "protocol":
		if !checkLeaf(errs, e, []string{"value"}, nil) {
			return nil
		}
		v, _ := e.Attr("value")
		if !protoRE.MatchString(v) {
			errs.Add(e.Pos, "<protocol>: bad protocol %q (expected HTTP/1.0, HTTP/1.1...)", v)
			return nil
		}
		return protoCond(v)
	case "path":
		if !checkLeaf(errs, e, []string{"regexp"}, nil) {
			return nil
		}
		expr, _ := e.Attr("regexp")
		re, err := pattern.Compile(expr, true, c.MatchTimeout())
		if err != nil {
			errs.Add(e.Pos, "<path>: %v", err)
			return nil
		}
		return &pathCond{pos: e.Pos, re: re}
	case "and", "or":
		ok := e.CheckAttrs(errs, nil, nil)
		ok = checkNoText(errs, e) && ok
		subs := make([]cond, 0, len(e.Children))
		for _, ch := range e.Children {
			s := compileCond(c, ch)
			ok = s != nil && ok
			subs = append(subs, s)
		}
		if !ok {
			return nil
		}
		return &listCond{and: e.Name == "and", subs: subs}
	case "not":
		ok := e.CheckAttrs(errs, nil, nil)
		ok = checkNoText(errs, e) && ok
		if len(e.Children) != 1 {
			errs.Add(e.Pos, "<not>: takes exactly one condition, has %d", len(e.Children))
			for _, ch := range e.Children {
				compileCond(c, ch) // report their problems too
			}
			return nil
		}
		s := compileCond(c, e.Children[0])
		if s == nil || !ok {
			return nil
		}
		return notCond{s}
	}
	errs.Add(e.Pos, "<%s>: unknown condition (expected ip, port, ssl, header, method, protocol, path, and, or, not)", e.Name)
	return nil
}

var protoRE = regexp.MustCompile(`^HTTP/[0-9](\.[0-9])?$`)

// ParsePrefix parses the value of <ip> or one entry of proxies=: an
// address ("10.0.0.1", "2001:db8::1", a single-address prefix) or a CIDR
// prefix ("10.0.0.0/8"; host bits are ignored, "10.0.0.1/8" is
// 10.0.0.0/8). An IPv4-mapped IPv6 address or prefix of at least 96 bits
// becomes the IPv4 one ("::ffff:10.0.0.0/104" is 10.0.0.0/8), so that it
// matches the IPv4 clients it names. Zones are refused.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, err
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("address %q has a zone", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// canon returns a in the form prefixes are compared with: IPv4-mapped
// addresses unmapped, zone dropped.
func canon(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

type ipCond struct {
	value  string
	prefix netip.Prefix
}

func (c *ipCond) eval(st *stage.State) (bool, error) {
	return c.prefix.Contains(canon(st.Client)), nil
}
func (c *ipCond) String() string { return fmt.Sprintf("<ip value=%q>", c.value) }

type portCond int

func (c portCond) eval(st *stage.State) (bool, error) { return st.LocalPort == int(c), nil }
func (c portCond) String() string                     { return fmt.Sprintf("<port value=\"%d\">", int(c)) }

type sslCond struct{}

func (sslCond) eval(st *stage.State) (bool, error) { return st.Secure, nil }
func (sslCond) String() string                     { return "<ssl>" }

// headerCond is true when any value of the header matches; each header
// line is one value, so a comma-joined line is matched whole.
type headerCond struct {
	pos  xmlconf.Pos
	name string // canonical
	re   *pattern.Regexp
}

func (c *headerCond) eval(st *stage.State) (bool, error) {
	var buf [2]string
	var values []string
	if c.name == "Host" {
		// Host is not among the fields (as net/http moves it out of the
		// header map).
		if st.Host != "" {
			values = append(buf[:0], st.Host)
		}
	} else {
		values = st.Fields().AppendValues(buf[:0], c.name)
	}
	for _, v := range values {
		m, err := c.re.MatchString(v)
		if err != nil {
			return false, matchError(c.pos, "header", err)
		}
		if m {
			return true, nil
		}
	}
	return false, nil
}
func (c *headerCond) String() string {
	return fmt.Sprintf("<header name=%q regexp=%q>", c.name, c.re)
}

type methodCond string

// eval compares methods exactly: methods are case-sensitive (RFC 9110
// 9.1), as in Ocsigen.
func (c methodCond) eval(st *stage.State) (bool, error) { return st.Method == string(c), nil }
func (c methodCond) String() string                     { return fmt.Sprintf("<method value=%q>", string(c)) }

type protoCond string

func (c protoCond) eval(st *stage.State) (bool, error) { return st.Proto == string(c), nil }
func (c protoCond) String() string                     { return fmt.Sprintf("<protocol value=%q>", string(c)) }

// pathCond matches the sub-path: relative to the innermost site, no
// leading slash, no query.
type pathCond struct {
	pos xmlconf.Pos
	re  *pattern.Regexp
}

func (c *pathCond) eval(st *stage.State) (bool, error) {
	m, err := c.re.MatchString(st.SubPath)
	if err != nil {
		return false, matchError(c.pos, "path", err)
	}
	return m, nil
}
func (c *pathCond) String() string { return fmt.Sprintf("<path regexp=%q>", c.re) }

// listCond is <and> (true when empty) or <or> (false when empty); both
// stop at the first condition that decides.
type listCond struct {
	and  bool
	subs []cond
}

func (c *listCond) eval(st *stage.State) (bool, error) {
	for _, s := range c.subs {
		v, err := s.eval(st)
		if err != nil {
			return false, err
		}
		if v != c.and {
			return v, nil
		}
	}
	return c.and, nil
}

func (c *listCond) String() string {
	if len(c.subs) == 0 {
		if c.and {
			return "<and/>"
		}
		return "<or/>"
	}
	op := " or "
	if c.and {
		op = " and "
	}
	s := make([]string, len(c.subs))
	for i, sub := range c.subs {
		s[i] = sub.String()
	}
	return "(" + strings.Join(s, op) + ")"
}

type notCond struct{ sub cond }

func (c notCond) eval(st *stage.State) (bool, error) {
	v, err := c.sub.eval(st)
	if err != nil {
		return false, err
	}
	return !v, nil
}
func (c notCond) String() string { return "not " + c.sub.String() }

// matchError is the error of a regexp that ran past its time limit: 500,
// naming the rule's position and never the input.
func matchError(pos xmlconf.Pos, name string, err error) error {
	return stage.Errorf(http.StatusInternalServerError, "accesscontrol: %s: <%s> regexp: %w", pos, name, err)
}
