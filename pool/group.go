package pool

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
	"github.com/ocsiproxy/ocsiproxy/wire"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Balance is the policy by which a group chooses the server of a request
// (balance="..." on <upstream name=...>).
type Balance uint8

const (
	// RoundRobin is smooth weighted round robin (nginx's): over any run
	// of requests, each server gets its share of the weights, spread
	// out rather than in bursts. It is the default.
	RoundRobin Balance = iota
	// LeastConn sends to the server with the fewest requests in flight
	// (a request is in flight until its response body is closed)
	// relative to its weight; ties go round.
	LeastConn
	// RandomTwo picks two servers at random and sends to the one with
	// fewer requests in flight relative to its weight (the power of two
	// choices).
	RandomTwo
	// First sends to the first server in document order that is up.
	First
	// IPHash hashes the client address (the address access control
	// established, after <allow-forward-for>) on the consistent ring,
	// as nginx's ip_hash: of an IPv4 address its first three octets
	// (the clients of one /24 go to one server), of an IPv6 address
	// all of it.
	IPHash
	// HashURI hashes the request target sent to the backend (path and
	// query) on the consistent ring.
	HashURI
	// HashHeader hashes the value of the header Group.HashName.
	HashHeader
	// HashCookie hashes the value of the cookie Group.HashName.
	HashCookie
)

var balanceNames = []string{"round_robin", "least_conn", "random_two", "first", "ip_hash", "hash:uri", "hash:header", "hash:cookie"}

func (b Balance) String() string {
	if int(b) < len(balanceNames) {
		return balanceNames[b]
	}
	return "balance(" + strconv.Itoa(int(b)) + ")"
}

// hashed reports whether b chooses by a key on the consistent ring.
func (b Balance) hashed() bool { return b >= IPHash }

// Group is an <upstream name="api"> element: several servers behind one
// name. A request whose URL host is the name, without a port, goes to one
// of them (a dest, a route upstream, an <upstream url="http://api">).
type Group struct {
	// Name is the name attribute in lower case: a host name.
	Name string
	// Balance chooses the server (default RoundRobin); HashName is the
	// header or cookie name of HashHeader and HashCookie.
	Balance  Balance
	HashName string
	// Retries is the most times a request is sent again, each time to
	// another server, after a failure that allows it (default 1; see
	// the package documentation).
	Retries int
	// TryDuration is the time after which no new try starts, counted
	// from the first (default 0: no bound but Retries).
	TryDuration time.Duration
	// FailStatus are the response statuses counted as failures by
	// passive health (default none: a 5xx answer is an answer).
	FailStatus []int
	// Servers are the <server> children, in document order.
	Servers []*Server
	// Health is the <health> child, nil when there is none: then only
	// passive health takes servers out.
	Health *Health
	Pos    xmlconf.Pos
}

// Server is a <server url=...> child of a group.
type Server struct {
	// URL is the url attribute as written; Key is its
	// "scheme://host:port" (host in lower case, port always present).
	URL, Key string
	// Weight is the server's share of the requests (default 1).
	Weight int
	// Backup servers get requests only when no other server of the
	// group is up (default false).
	Backup bool
	// MaxFails failures within FailTimeout take the server out for
	// FailTimeout (defaults 1 and 10 s, as nginx's); 0 turns passive
	// health off.
	MaxFails    int
	FailTimeout time.Duration
	// Settings are the settings of the server's connections: those of
	// the <upstream url=> with the server's Key if there is one, else
	// those of the group (the <pool> defaults, then an <upstream
	// url="http://name"> without port, then the group's own attributes).
	Settings Settings
	// Declared reports that the server's settings come from its own
	// <upstream url=>.
	Declared bool
	// Host is the host of URL in lower case, without port (nor brackets).
	Host string
	// Resolve is how often Host is resolved again (resolve=, default 0:
	// never; the pool then dials Host as it is). With it, the server
	// stands for all the addresses Host resolves to, each with its own
	// pool: see [Pool.SetResolver].
	Resolve time.Duration
	Pos     xmlconf.Pos
	tls     *tls.Config // https servers
}

// Health is the <health> child of a group: active health checks. Each
// server is probed every Interval with a GET of Path, on a connection of
// its own opened for the probe (never one of the server's pool, so that
// probes are not client traffic and never wait behind a client
// request), and closed after it. A server is down after Fall failed
// probes in a row (no answer within Timeout, or a status outside Status)
// and up again after Rise good ones; down by probes, it gets no request,
// as when passive health takes it out. Servers start up.
type Health struct {
	// Path is the request target of the probes (required).
	Path string
	// Host is the Host header of the probes (default: the server's
	// host and port).
	Host string
	// Interval is the time between two probes of a server (default 5 s);
	// Timeout bounds one probe (default 2 s).
	Interval, Timeout time.Duration
	// Status are the ranges of statuses that pass (default 200-399).
	Status [][2]int
	// Rise good probes in a row bring a server down by probes back up
	// (default 2); Fall failed ones in a row take it down (default 3).
	Rise, Fall int
	Pos        xmlconf.Pos
}

var groupAttrs = append([]string{"balance", "retries", "try_duration", "fail_status"}, settingAttrs...)

var serverAttrs = []string{"weight", "backup", "max_fails", "fail_timeout", "resolve"}

var healthAttrs = []string{"interval", "timeout", "status", "rise", "fall", "host"}

// parseGroups reads the <upstream name=...> elements, after the other
// <upstream> elements (c.Upstreams) were read.
func (c *Config) parseGroups(elems []*xmlconf.Element, errs *xmlconf.ErrorList) {
	byName := map[string]*Group{}
	// The first server of each key, and its group: a server in several
	// groups has one pool of connections, so its connection settings
	// must agree (its weight, backup, max_fails and fail_timeout are
	// each group's own).
	type firstServer struct {
		s     *Server
		group string
	}
	byKey := map[string]firstServer{}
	for _, e := range elems {
		if _, hasURL := e.Attr("url"); hasURL {
			errs.Add(e.Pos, "<upstream>: give url (one upstream) or name (a group of servers), not both")
			continue
		}
		if !e.CheckAttrs(errs, []string{"name"}, groupAttrs) {
			continue
		}
		raw, _ := e.Attr("name")
		name := strings.ToLower(raw)
		if !validGroupName(name) {
			errs.Add(e.Pos, "<upstream>: name=%q: want a host name without port (letters, digits, \"-\", \".\", \"_\")", raw)
			continue
		}
		if prev := byName[name]; prev != nil {
			errs.Add(e.Pos, "<upstream>: group %q is already defined at %s", name, prev.Pos)
			continue
		}
		g := &Group{Name: name, Retries: 1, Pos: e.Pos}
		byName[name] = g
		ok := parseGroupAttrs(e, g, errs)
		// The settings of the servers that have no <upstream> of their
		// own.
		base := c.Defaults
		for _, u := range c.Upstreams {
			if u.portless && strings.TrimPrefix(strings.TrimPrefix(u.Key, "http://"), "https://") == name+":"+defaultPort(u.Key) {
				u.group = name
				base = u.Settings
			}
		}
		applySettings(e, &base, errs)
		seen := map[string]*Server{}
		for _, ch := range e.Children {
			switch ch.Name {
			case "server":
				s := c.parseServer(ch, base, errs)
				if s == nil {
					ok = false
					continue
				}
				if prev := seen[s.Key]; prev != nil {
					errs.Add(ch.Pos, "<server>: %s is already in group %q at %s", s.Key, name, prev.Pos)
					ok = false
					continue
				}
				seen[s.Key] = s
				if prev, found := byKey[s.Key]; !found {
					byKey[s.Key] = firstServer{s, name}
				} else if !s.Declared && !sameSettings(prev.s.Settings, s.Settings, strings.HasPrefix(s.Key, "https:")) {
					errs.Add(ch.Pos, "<server>: %s is also in group %q at %s, with other connection settings (%s): a server has one pool of connections; give its settings in an <upstream url=%q>",
						s.Key, prev.group, prev.s.Pos, settingsDiff(s.Settings, prev.s.Settings, strings.HasPrefix(s.Key, "https:")), s.Key)
					ok = false
					continue
				}
				g.Servers = append(g.Servers, s)
			case "health":
				if g.Health != nil {
					errs.Add(ch.Pos, "<health>: only one is allowed in a group (the first is at %s)", g.Health.Pos)
					ok = false
					continue
				}
				if g.Health = parseHealth(ch, errs); g.Health == nil {
					ok = false
				}
			default:
				errs.Add(ch.Pos, "<upstream name=%q>: unknown element <%s> (want <server> or <health>)", name, ch.Name)
				ok = false
			}
		}
		if len(g.Servers) == 0 && ok {
			errs.Add(e.Pos, "<upstream name=%q>: no <server>", name)
			continue
		}
		primaries := 0
		for _, s := range g.Servers {
			if !s.Backup {
				primaries++
			}
		}
		if primaries == 0 && len(g.Servers) > 0 {
			errs.Add(e.Pos, "<upstream name=%q>: every <server> is a backup: at least one must not be", name)
			continue
		}
		if ok {
			c.Groups = append(c.Groups, g)
		}
	}
}

// sameSettings reports whether a and b give the connections to a server
// the same settings (its TLS settings only matter for https).
func sameSettings(a, b Settings, https bool) bool {
	if !https {
		a.TLS, b.TLS = TLS{}, TLS{}
	}
	return reflect.DeepEqual(a, b)
}

// settingsDiff names the first setting, in the order --dry-run shows
// them, where a differs from b: "workers=8 here, workers=4 there"; "TLS
// settings" when their description does not show the difference (a
// password).
func settingsDiff(a, b Settings, https bool) string {
	fa, fb := strings.Fields(a.describe(https)), strings.Fields(b.describe(https))
	name := func(f string) string { n, _, _ := strings.Cut(f, "="); return n }
	other := func(fs []string, n string) string {
		for _, f := range fs {
			if name(f) == n {
				return f
			}
		}
		return "no " + n
	}
	for _, f := range fa {
		if o := other(fb, name(f)); o != f {
			return f + " here, " + o + " there"
		}
	}
	for _, f := range fb {
		if o := other(fa, name(f)); o != f {
			return o + " here, " + f + " there"
		}
	}
	return "TLS settings"
}

// defaultPort returns the port of an upstream key.
func defaultPort(key string) string {
	return key[strings.LastIndexByte(key, ':')+1:]
}

// hasNoPort reports whether an upstream URL is written without a port.
func hasNoPort(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Port() == ""
}

// validGroupName reports whether name (in lower case) may name a group:
// a host name, since it stands for one in URLs.
func validGroupName(name string) bool {
	if name == "" || len(name) > 253 || name[0] == '.' || name[len(name)-1] == '.' || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '-', b == '.', b == '_':
		default:
			return false
		}
	}
	return true
}

// parseGroupAttrs reads the group's own attributes (the pool settings
// are read by applySettings). It returns false if it reported a problem.
func parseGroupAttrs(e *xmlconf.Element, g *Group, errs *xmlconf.ErrorList) bool {
	ok := true
	for _, a := range e.Attrs {
		bad := func(want string) {
			errs.Add(e.Pos, "<upstream name=%q>: %s=%q: want %s", g.Name, a.Name, a.Value, want)
			ok = false
		}
		switch a.Name {
		case "balance":
			b, name, err := parseBalance(a.Value)
			if err != nil {
				bad(err.Error())
				continue
			}
			g.Balance, g.HashName = b, name
		case "retries":
			if n, good := intIn(a.Value, 0, 100); good {
				g.Retries = n
			} else {
				bad("a number of retries from 0 to 100")
			}
		case "try_duration":
			d, good := xmlconf.ParseDuration(a.Value)
			if !good {
				bad(`a duration ("5000" milliseconds, "5s") or "infinity"`)
				continue
			}
			if d == Never {
				d = 0
			}
			g.TryDuration = d
		case "fail_status":
			for _, f := range strings.FieldsFunc(a.Value, func(r rune) bool { return r == ' ' || r == ',' }) {
				n, good := intIn(f, 500, 599)
				if !good {
					bad("a list of 5xx statuses (\"502 503\")")
					break
				}
				g.FailStatus = append(g.FailStatus, n)
			}
		}
	}
	return ok
}

// parseBalance reads a balance attribute.
func parseBalance(v string) (Balance, string, error) {
	want := fmt.Errorf("round_robin, least_conn, random_two, first, ip_hash, hash:uri, hash:header:NAME or hash:cookie:NAME")
	switch v {
	case "round_robin":
		return RoundRobin, "", nil
	case "least_conn":
		return LeastConn, "", nil
	case "random_two":
		return RandomTwo, "", nil
	case "first":
		return First, "", nil
	case "ip_hash":
		return IPHash, "", nil
	case "hash:uri":
		return HashURI, "", nil
	}
	if name, found := strings.CutPrefix(v, "hash:header:"); found {
		if !isToken(name) {
			return 0, "", fmt.Errorf("a header name after hash:header:")
		}
		return HashHeader, name, nil
	}
	if name, found := strings.CutPrefix(v, "hash:cookie:"); found {
		if !isToken(name) {
			return 0, "", fmt.Errorf("a cookie name after hash:cookie:")
		}
		return HashCookie, name, nil
	}
	return 0, "", want
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b <= ' ' || b >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, b) >= 0 {
			return false
		}
	}
	return true
}

// parseServer reads a <server> element; base are the group's settings.
// It returns nil if it reported a problem.
func (c *Config) parseServer(e *xmlconf.Element, base Settings, errs *xmlconf.ErrorList) *Server {
	if !e.CheckAttrs(errs, []string{"url"}, serverAttrs) {
		return nil
	}
	for _, ch := range e.Children {
		errs.Add(ch.Pos, "<server>: unknown element <%s> (a server's TLS settings are those of its <upstream url=>, or of the group's)", ch.Name)
		return nil
	}
	raw, _ := e.Attr("url")
	key, host, prefix, err := upstreamKey(raw)
	if err == nil && prefix != "" {
		err = fmt.Errorf("want no path: a server is a scheme, a host and a port")
	}
	if err != nil {
		errs.Add(e.Pos, "<server>: url %q: %v", raw, err)
		return nil
	}
	s := &Server{URL: raw, Key: key, Host: host, Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second, Settings: base, Pos: e.Pos}
	for _, u := range c.Upstreams {
		if u.Key == key {
			s.Settings, s.Declared, s.tls = u.Settings, true, u.tls
		}
	}
	if strings.HasPrefix(key, "https:") && !s.Declared {
		// The TLS settings were checked where they were given.
		if s.tls, err = buildTLS(&s.Settings.TLS); err != nil {
			errs.Add(e.Pos, "<server>: %v", err)
			return nil
		}
		setServerName(s.tls, &s.Settings.TLS, host)
	}
	ok := true
	for _, a := range e.Attrs {
		bad := func(want string) { errs.Add(e.Pos, "<server>: %s=%q: want %s", a.Name, a.Value, want); ok = false }
		switch a.Name {
		case "weight":
			if n, good := intIn(a.Value, 1, 1000); good {
				s.Weight = n
			} else {
				bad("a weight from 1 to 1000")
			}
		case "backup":
			switch a.Value {
			case "true":
				s.Backup = true
			case "false":
				s.Backup = false
			default:
				bad(`"true" or "false"`)
			}
		case "max_fails":
			if n, good := intIn(a.Value, 0, 1000); good {
				s.MaxFails = n
			} else {
				bad("a number of failures from 0 (passive health off) to 1000")
			}
		case "fail_timeout":
			d, good := xmlconf.ParseDuration(a.Value)
			if !good || d <= 0 {
				bad(`a duration ("10s", "10000" milliseconds)`)
				continue
			}
			s.FailTimeout = d
		case "resolve":
			d, good := parseResolve(a.Value)
			if !good {
				bad(`a period: seconds ("30") or a duration ("30s", "500ms")`)
				continue
			}
			if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
				bad(fmt.Sprintf("a host name to resolve, not the address %s", host))
				continue
			}
			s.Resolve = d
		}
	}
	if !ok {
		return nil
	}
	return s
}

// parseResolve reads a resolve attribute: seconds when bare (as
// SPEC's resolve="S"), else a Go duration; more than zero.
func parseResolve(v string) (time.Duration, bool) {
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, n > 0 && n <= 86400
	}
	d, err := time.ParseDuration(v)
	return d, err == nil && d > 0
}

// parseHealth reads a <health> element. It returns nil if it reported a
// problem.
func parseHealth(e *xmlconf.Element, errs *xmlconf.ErrorList) *Health {
	if !e.CheckAttrs(errs, []string{"path"}, healthAttrs) {
		return nil
	}
	h := &Health{Interval: 5 * time.Second, Timeout: 2 * time.Second, Status: [][2]int{{200, 399}}, Rise: 2, Fall: 3, Pos: e.Pos}
	ok := true
	for _, a := range e.Attrs {
		bad := func(want string) { errs.Add(e.Pos, "<health>: %s=%q: want %s", a.Name, a.Value, want); ok = false }
		switch a.Name {
		case "path":
			if !strings.HasPrefix(a.Value, "/") || httpsyntax.HasSpaceOrCRLF(a.Value) || strings.ContainsAny(a.Value, "#") {
				bad(`a request target beginning with "/"`)
				continue
			}
			h.Path = a.Value
		case "host":
			if a.Value == "" || httpsyntax.HasSpaceOrCRLF(a.Value) || strings.ContainsAny(a.Value, "/?#@") {
				bad("a host[:port]")
				continue
			}
			h.Host = a.Value
		case "interval", "timeout":
			d, good := xmlconf.ParseDuration(a.Value)
			if !good || d <= 0 || d == Never {
				bad(`a duration ("5s", "5000" milliseconds)`)
				continue
			}
			if a.Name == "interval" {
				h.Interval = d
			} else {
				h.Timeout = d
			}
		case "rise", "fall":
			n, good := intIn(a.Value, 1, 100)
			if !good {
				bad("a number of probes from 1 to 100")
				continue
			}
			if a.Name == "rise" {
				h.Rise = n
			} else {
				h.Fall = n
			}
		case "status":
			rs, err := parseStatusRanges(a.Value)
			if err != nil {
				bad(`statuses or ranges ("200-399", "200 204")`)
				continue
			}
			h.Status = rs
		}
	}
	if !ok {
		return nil
	}
	return h
}

// parseStatusRanges reads "200-399" or "200 204 301-302".
func parseStatusRanges(v string) ([][2]int, error) {
	var rs [][2]int
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' }) {
		lo, hi, isRange := strings.Cut(f, "-")
		if !isRange {
			hi = lo
		}
		a, ok1 := intIn(lo, 100, 599)
		b, ok2 := intIn(hi, 100, 599)
		if !ok1 || !ok2 || a > b {
			return nil, fmt.Errorf("bad status %q", f)
		}
		rs = append(rs, [2]int{a, b})
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("no status")
	}
	return rs, nil
}

// GroupName returns the group a request to host (a URL's host[:port])
// goes to: the name of a group when host is one, without a port; "" when
// it is not a group.
func (c *Config) GroupName(host string) string {
	if len(c.Groups) == 0 || strings.IndexByte(host, ':') >= 0 {
		return ""
	}
	host = strings.ToLower(host)
	for _, g := range c.Groups {
		if g.Name == host {
			return g.Name
		}
	}
	return ""
}

// describeGroups returns the --dry-run lines of the groups: one per
// group, then one per server, indented.
func (c *Config) describeGroups() []string {
	var lines []string
	for _, g := range c.Groups {
		b := g.Balance.String()
		if g.HashName != "" {
			b += ":" + g.HashName
		}
		try := "infinity"
		if g.TryDuration > 0 {
			try = g.TryDuration.String()
		}
		line := fmt.Sprintf("group %s (%s): balance=%s retries=%d try_duration=%s", g.Name, g.Pos.Short(), b, g.Retries, try)
		if len(g.FailStatus) > 0 {
			line += " fail_status=" + strings.Trim(fmt.Sprint(g.FailStatus), "[]")
		}
		if h := g.Health; h != nil {
			line += fmt.Sprintf(" health: path=%s interval=%s timeout=%s rise=%d fall=%d", h.Path, h.Interval, h.Timeout, h.Rise, h.Fall)
			if h.Host != "" {
				line += " host=" + h.Host
			}
		}
		lines = append(lines, line)
		for _, s := range g.Servers {
			line := fmt.Sprintf("  server %s (%s): weight=%d", s.Key, s.Pos.Short(), s.Weight)
			if s.Backup {
				line += " backup"
			}
			line += fmt.Sprintf(" max_fails=%d fail_timeout=%s ", s.MaxFails, s.FailTimeout)
			if s.Resolve > 0 {
				line += fmt.Sprintf("resolve=%s ", s.Resolve)
			}
			if s.Declared {
				line += "(its <upstream>) "
			}
			lines = append(lines, line+s.Settings.describe(strings.HasPrefix(s.Key, "https:")))
		}
	}
	return lines
}

// HashedServer returns the url (as written) of the server that req goes
// to in the group name when every server is up, for a group balanced by a
// hash policy (--dry-run shows it). ok is false for an unknown group,
// another policy, or a request without a key (which is balanced round
// robin). For ip_hash, the client address is req.ClientAddr.
func (c *Config) HashedServer(name string, req *wire.Request) (url string, ok bool) {
	var gc *Group
	for _, g := range c.Groups {
		if strings.EqualFold(g.Name, name) {
			gc = g
			break
		}
	}
	if gc == nil || !gc.Balance.hashed() {
		return "", false
	}
	g := &group{cfg: gc}
	for i, s := range gc.Servers {
		g.members = append(g.members, &member{srv: s, si: i, key: s.Key})
	}
	key, hasKey := g.hashKey(req)
	if !hasKey {
		return "", false
	}
	g.placeMembers()
	i := g.ring.walk(key, len(g.members), func(int) bool { return true })
	if i < 0 {
		return "", false
	}
	return gc.Servers[i].URL, true
}
