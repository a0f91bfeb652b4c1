package accesscontrol

import (
	"context"
	"fmt"
	"iter"
	"net/netip"
	"strings"

	"github.com/ocsiproxy/ocsiproxy/forward"
	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// forwardForStage is <allow-forward-for [check-equal-ip=] [proxies=]/>.
type forwardForStage struct {
	pos          xmlconf.Pos
	checkEqualIP bool
	proxies      []netip.Prefix
}

// compileForwardFor compiles <allow-forward-for/>. check-equal-ip is
// "true" or "false" (default false); proxies lists addresses and CIDR
// prefixes separated by spaces or commas (default none: the right-most
// entry is the client).
func compileForwardFor(c stage.Compiler, e *xmlconf.Element) stage.Stage {
	errs := c.Errors()
	if !checkLeaf(errs, e, nil, []string{"check-equal-ip", "proxies"}) {
		return nil
	}
	s := &forwardForStage{pos: e.Pos}
	ok := true
	if v, present := e.Attr("check-equal-ip"); present {
		switch v {
		case "true":
			s.checkEqualIP = true
		case "false":
		default:
			errs.Add(e.Pos, "<allow-forward-for>: check-equal-ip must be \"true\" or \"false\", not %q", v)
			ok = false
		}
	}
	if v, present := e.Attr("proxies"); present {
		for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == ',' }) {
			p, err := ParsePrefix(f)
			if err != nil {
				errs.Add(e.Pos, "<allow-forward-for>: proxies: bad address or prefix %q", f)
				ok = false
				continue
			}
			s.proxies = append(s.proxies, p)
		}
	}
	if !ok {
		return nil
	}
	return s
}

func (s *forwardForStage) Run(_ context.Context, st *stage.State) (stage.Result, error) {
	var buf [4]string
	lines := st.Fields().AppendValues(buf[:0], forward.HeaderXForwardedFor)
	w := walk(lines, st.Peer, s.checkEqualIP, s.proxies)
	if !w.ok {
		if st.Trace != nil {
			st.Tracef(s.pos, "allow-forward-for: %s; client stays %s", w.reason, addrString(st.Client))
		}
		return stage.Next, nil
	}
	st.Client = w.client
	st.Forwarded = w.accepted
	if st.Trace != nil {
		st.Tracef(s.pos, "allow-forward-for: client %s (accepted %d %s)", w.client, len(w.accepted), plural(len(w.accepted), "entry", "entries"))
	}
	return stage.Next, nil
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	return a.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// WalkForwardedFor finds the client address in the X-Forwarded-For header
// lines, trusting only the listed proxies, the way nginx's real_ip module
// does with real_ip_recursive on.
//
// The lines are joined and split on commas; spaces and tabs around an
// entry are trimmed, and empty entries are skipped (RFC 9110 5.6.1 list
// syntax). The entries are then walked from the right: the right-most
// entry is the client unless it lies in one of proxies, in which case the
// walk goes on leftwards. When every entry walked is a proxy, the
// left-most one is the client (as in nginx). Entries left of the client
// are never looked at, so whatever a client puts there cannot matter.
//
// With checkEqualIP the right-most entry must be the peer's own address
// (as Ocsigen's check-equal-ip expects from a proxy that appends itself):
// when it is not, or when it is the only entry, the header is ignored.
// The walk then starts one entry further left, and that right-most entry
// is not among the accepted ones (the server adds the peer itself).
//
// An entry is an IPv4 or IPv6 address, optionally with a port
// ("192.0.2.1:4711", "[2001:db8::1]:4711") or in brackets
// ("[2001:db8::1]"), as some proxies write them; ports and zones are
// dropped and IPv4-mapped IPv6 addresses are unmapped. An IPv6 address
// with a port needs the brackets: "2001:db8::1:4711" is read as an
// address. Any other entry
// walked over ("unknown", "_hidden", garbage) ends the walk and the whole
// header is ignored.
//
// On success, client is the client address and accepted lists the client
// and the forwarded proxies to its right, in header order, each in
// canonical form. ok is false when the header is absent, empty or
// ignored; the caller then keeps the peer as the client. It never panics.
func WalkForwardedFor(lines []string, peer netip.Addr, checkEqualIP bool, proxies []netip.Prefix) (client netip.Addr, accepted []string, ok bool) {
	w := walk(lines, peer, checkEqualIP, proxies)
	return w.client, w.accepted, w.ok
}

type walkResult struct {
	client   netip.Addr
	accepted []string
	ok       bool
	reason   string // why the header was ignored, for traces
}

// walk is WalkForwardedFor, with the reason a header was ignored.
func walk(lines []string, peer netip.Addr, checkEqualIP bool, proxies []netip.Prefix) walkResult {
	if len(lines) == 0 {
		return walkResult{reason: "no X-Forwarded-For"}
	}
	var buf [8]netip.Addr
	walked := buf[:0] // right to left
	var tbuf [8]string
	texts := tbuf[:0] // the entries of walked whose text is canonical, else ""
	n := 0
	for e := range entriesFromRight(lines) {
		n++
		a, ok := parseEntry(e)
		if checkEqualIP && n == 1 {
			switch {
			case !ok:
				return walkResult{reason: "header ignored: its last entry is not an IP address"}
			case !peer.IsValid() || a != canon(peer):
				return walkResult{reason: fmt.Sprintf("header ignored: its last entry %s is not the peer %s", a, addrString(peer))}
			}
			continue
		}
		if !ok {
			return walkResult{reason: fmt.Sprintf("header ignored: entry %d from the right is not an IP address", n)}
		}
		walked = append(walked, a)
		if a.Is4() && digitsAndDots(e) {
			// The entry is dotted IPv4 text that parsed (no port, no
			// brackets, not mapped), and netip.ParseAddr accepts such
			// text only in canonical form (no leading zeros): no need to
			// build it again.
			texts = append(texts, e)
		} else {
			texts = append(texts, "")
		}
		if !inPrefixes(a, proxies) {
			break
		}
	}
	// The walk ends at the first entry that is not a proxy, or else at
	// the left-most entry.
	switch {
	case n == 0:
		return walkResult{reason: "X-Forwarded-For has no entries"}
	case len(walked) == 0:
		return walkResult{reason: "header ignored: it holds only the peer's address"}
	}
	accepted := make([]string, len(walked))
	for j, a := range walked {
		text := texts[j]
		if text == "" {
			text = a.String()
		}
		accepted[len(walked)-1-j] = text
	}
	return walkResult{client: walked[len(walked)-1], accepted: accepted, ok: true}
}

// entriesFromRight yields the entries of the header lines, right-most
// first: the lines are one comma-separated list, entries are trimmed of
// spaces and tabs, and empty entries are skipped.
func entriesFromRight(lines []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := len(lines) - 1; i >= 0; i-- {
			l := lines[i]
			for {
				j := strings.LastIndexByte(l, ',')
				if e := httpsyntax.TrimOWS(l[j+1:]); e != "" && !yield(e) {
					return
				}
				if j < 0 {
					break
				}
				l = l[:j]
			}
		}
	}
}

// parseEntry parses one X-Forwarded-For entry: an address, "[v6]",
// "v4:port" or "[v6]:port". The result is unmapped and without zone.
func parseEntry(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return canon(a), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return canon(a), true
		}
		return netip.Addr{}, false
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return canon(ap.Addr()), true
	}
	return netip.Addr{}, false
}

func digitsAndDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func inPrefixes(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardProtoStage is <allow-forward-proto/>.
type forwardProtoStage struct {
	pos xmlconf.Pos
}

// Run sets st.Secure from X-Forwarded-Proto. The header must be a single
// line whose value, trimmed, is "http" or "https" (case-insensitive);
// anything else (several lines, a list, another scheme) is ignored, as
// Ocsigen ignores values it does not know.
func (s *forwardProtoStage) Run(_ context.Context, st *stage.State) (stage.Result, error) {
	var buf [2]string
	lines := st.Fields().AppendValues(buf[:0], forward.HeaderXForwardedProto)
	switch {
	case len(lines) == 0:
		if st.Trace != nil {
			st.Tracef(s.pos, "allow-forward-proto: no X-Forwarded-Proto")
		}
		return stage.Next, nil
	case len(lines) > 1:
		if st.Trace != nil {
			st.Tracef(s.pos, "allow-forward-proto: several X-Forwarded-Proto lines, ignored")
		}
		return stage.Next, nil
	}
	switch v := httpsyntax.TrimOWS(lines[0]); {
	case strings.EqualFold(v, "https"):
		st.Secure = true
		if st.Trace != nil {
			st.Tracef(s.pos, "allow-forward-proto: https -> secure")
		}
	case strings.EqualFold(v, "http"):
		st.Secure = false
		if st.Trace != nil {
			st.Tracef(s.pos, "allow-forward-proto: http -> not secure")
		}
	default:
		if st.Trace != nil {
			st.Tracef(s.pos, "allow-forward-proto: X-Forwarded-Proto is neither http nor https, ignored")
		}
	}
	return stage.Next, nil
}
