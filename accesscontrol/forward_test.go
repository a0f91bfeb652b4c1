package accesscontrol

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		p, err := ParsePrefix(x)
		if err != nil {
			panic(err)
		}
		out = append(out, p)
	}
	return out
}

func TestWalkForwardedFor(t *testing.T) {
	const peer = "192.0.2.7"
	tests := []struct {
		name    string
		lines   []string
		peer    string // default peer
		check   bool
		proxies []string
		client  string // "" means ok == false
		accept  string // accepted entries joined with ", "
	}{
		// No proxies: the right-most entry is the client.
		{name: "absent", lines: nil},
		{name: "empty line", lines: []string{""}},
		{name: "only commas", lines: []string{" , ,, "}},
		{name: "single", lines: []string{"198.51.100.1"}, client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "spoofed left", lines: []string{"6.6.6.6, 198.51.100.1"}, client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "spoofed garbage left", lines: []string{"<script>, unknown, 198.51.100.1"}, client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "spaces and tabs", lines: []string{" \t198.51.100.1 \t"}, client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "no spaces", lines: []string{"1.1.1.1,198.51.100.1"}, client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "trailing comma", lines: []string{"198.51.100.1,"}, client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "empty entries", lines: []string{"1.1.1.1,, ,198.51.100.1"}, client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "garbage last", lines: []string{"198.51.100.1, unknown"}},
		{name: "hostname last", lines: []string{"client.example.com"}},
		{name: "bad address", lines: []string{"198.51.100.300"}},
		{name: "leading zeros", lines: []string{"010.0.0.1"}},

		// Several lines are one list, in order.
		{name: "two lines", lines: []string{"6.6.6.6", "198.51.100.1"}, client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "two lines proxies", lines: []string{"203.0.113.9, 10.0.0.1", "10.0.0.2"}, proxies: []string{"10.0.0.0/8"},
			client: "203.0.113.9", accept: "203.0.113.9, 10.0.0.1, 10.0.0.2"},
		{name: "empty line between", lines: []string{"203.0.113.9", "", "10.0.0.2"}, proxies: []string{"10.0.0.0/8"},
			client: "203.0.113.9", accept: "203.0.113.9, 10.0.0.2"},

		// Proxies: walk left while the entry is a listed proxy.
		{name: "proxy chain", lines: []string{"6.6.6.6, 203.0.113.9, 10.0.0.1, 10.0.0.2"}, proxies: []string{"10.0.0.0/8"},
			client: "203.0.113.9", accept: "203.0.113.9, 10.0.0.1, 10.0.0.2"},
		{name: "proxy list of several", lines: []string{"203.0.113.9, 172.16.0.1, 10.0.0.2"}, proxies: []string{"10.0.0.0/8", "172.16.0.1"},
			client: "203.0.113.9", accept: "203.0.113.9, 172.16.0.1, 10.0.0.2"},
		{name: "non-proxy stops", lines: []string{"203.0.113.9, 172.16.0.2, 10.0.0.2"}, proxies: []string{"10.0.0.0/8", "172.16.0.1"},
			client: "172.16.0.2", accept: "172.16.0.2, 10.0.0.2"},
		{name: "all proxies: left-most", lines: []string{"10.0.0.3, 10.0.0.1, 10.0.0.2"}, proxies: []string{"10.0.0.0/8"},
			client: "10.0.0.3", accept: "10.0.0.3, 10.0.0.1, 10.0.0.2"},
		{name: "long proxy chain", lines: []string{"203.0.113.9, 10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4, 10.0.0.5, 10.0.0.6", "10.0.0.7, 10.0.0.8, 10.0.0.9, 10.0.0.10"},
			proxies: []string{"10.0.0.0/8"},
			client:  "203.0.113.9", accept: "203.0.113.9, 10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4, 10.0.0.5, 10.0.0.6, 10.0.0.7, 10.0.0.8, 10.0.0.9, 10.0.0.10"},
		{name: "single proxy entry", lines: []string{"10.0.0.3"}, proxies: []string{"10.0.0.0/8"},
			client: "10.0.0.3", accept: "10.0.0.3"},
		{name: "garbage in proxy walk", lines: []string{"203.0.113.9, unknown, 10.0.0.2"}, proxies: []string{"10.0.0.0/8"}},
		{name: "garbage left of client", lines: []string{"unknown, 203.0.113.9, 10.0.0.2"}, proxies: []string{"10.0.0.0/8"},
			client: "203.0.113.9", accept: "203.0.113.9, 10.0.0.2"},
		{name: "all proxies then garbage", lines: []string{"garbage, 10.0.0.1"}, proxies: []string{"10.0.0.0/8"}},
		{name: "client not a proxy first", lines: []string{"10.0.0.1, 203.0.113.9"}, proxies: []string{"10.0.0.0/8"},
			client: "203.0.113.9", accept: "203.0.113.9"},

		// Address forms.
		{name: "ipv6", lines: []string{"2001:db8::1"}, client: "2001:db8::1", accept: "2001:db8::1"},
		{name: "ipv6 canonical", lines: []string{"2001:DB8:0:0::1"}, client: "2001:db8::1", accept: "2001:db8::1"},
		{name: "ipv6 brackets", lines: []string{"[2001:db8::1]"}, client: "2001:db8::1", accept: "2001:db8::1"},
		{name: "ipv6 port", lines: []string{"[2001:db8::1]:4711"}, client: "2001:db8::1", accept: "2001:db8::1"},
		{name: "ipv4 port", lines: []string{"198.51.100.1:4711"}, client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "ipv4 brackets", lines: []string{"[198.51.100.1]"}},
		{name: "ipv4 brackets port", lines: []string{"[198.51.100.1]:80"}},
		{name: "ipv6 bad port", lines: []string{"[2001:db8::1]:99999"}},
		{name: "ipv6 port no brackets", lines: []string{"2001:db8::1:4711"}, client: "2001:db8::1:4711", accept: "2001:db8::1:4711"},
		{name: "empty brackets", lines: []string{"[]"}},
		{name: "mapped", lines: []string{"::ffff:198.51.100.1"}, client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "mapped brackets port", lines: []string{"[::ffff:198.51.100.1]:80"}, client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "mapped proxy", lines: []string{"203.0.113.9, ::ffff:10.0.0.1"}, proxies: []string{"10.0.0.0/8"},
			client: "203.0.113.9", accept: "203.0.113.9, 10.0.0.1"},
		{name: "mapped prefix", lines: []string{"203.0.113.9, 10.0.0.1"}, proxies: []string{"::ffff:10.0.0.0/104"},
			client: "203.0.113.9", accept: "203.0.113.9, 10.0.0.1"},
		{name: "zone dropped", lines: []string{"fe80::1%eth0"}, client: "fe80::1", accept: "fe80::1"},
		{name: "v6 proxy", lines: []string{"203.0.113.9, 2001:db8::1"}, proxies: []string{"2001:db8::/32"},
			client: "203.0.113.9", accept: "203.0.113.9, 2001:db8::1"},

		// check-equal-ip: the last entry must be the peer; the walk starts left of it.
		{name: "check equal", lines: []string{"6.6.6.6, 198.51.100.1, 192.0.2.7"}, check: true,
			client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "check not equal", lines: []string{"198.51.100.1, 192.0.2.8"}, check: true},
		{name: "check only peer", lines: []string{"192.0.2.7"}, check: true},
		{name: "check garbage last", lines: []string{"198.51.100.1, x"}, check: true},
		{name: "check garbage client", lines: []string{"x, 192.0.2.7"}, check: true},
		{name: "check mapped peer", lines: []string{"198.51.100.1, 192.0.2.7"}, peer: "::ffff:192.0.2.7", check: true,
			client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "check mapped entry", lines: []string{"198.51.100.1, ::ffff:192.0.2.7"}, check: true,
			client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "check peer port", lines: []string{"198.51.100.1, 192.0.2.7:80"}, check: true,
			client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "check invalid peer", lines: []string{"198.51.100.1, 192.0.2.7"}, peer: "invalid", check: true},
		{name: "check v6 peer", lines: []string{"198.51.100.1, 2001:db8::7"}, peer: "2001:db8::7", check: true,
			client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "check with proxies", lines: []string{"203.0.113.9, 10.0.0.1, 192.0.2.7"}, check: true, proxies: []string{"10.0.0.0/8"},
			client: "203.0.113.9", accept: "203.0.113.9, 10.0.0.1"},
		{name: "check peer is not walked", lines: []string{"203.0.113.9, 192.0.2.7"}, check: true, proxies: []string{"192.0.2.0/24"},
			client: "203.0.113.9", accept: "203.0.113.9"},
		{name: "check across lines", lines: []string{"198.51.100.1", "192.0.2.7"}, check: true,
			client: "198.51.100.1", accept: "198.51.100.1"},
		{name: "without check peer is client", lines: []string{"198.51.100.1, 192.0.2.7"},
			client: "192.0.2.7", accept: "192.0.2.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := netip.Addr{}
			switch tt.peer {
			case "":
				p = netip.MustParseAddr(peer)
			case "invalid":
			default:
				p = netip.MustParseAddr(tt.peer)
			}
			client, accepted, ok := WalkForwardedFor(tt.lines, p, tt.check, prefixes(tt.proxies...))
			if tt.client == "" {
				if ok || client.IsValid() || accepted != nil {
					t.Errorf("WalkForwardedFor(%q) = (%v, %q, %v), want header ignored", tt.lines, client, accepted, ok)
				}
				return
			}
			if !ok || client.String() != tt.client || strings.Join(accepted, ", ") != tt.accept {
				t.Errorf("WalkForwardedFor(%q) = (%v, %q, %v), want (%s, %q, true)", tt.lines, client, accepted, ok, tt.client, tt.accept)
			}
		})
	}
}

// TestAllowForwardFor checks the stage: it sets Client and Forwarded,
// which later conditions see, and leaves them alone when it ignores the
// header.
func TestAllowForwardFor(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		headers   []string
		client    string
		forwarded []string
	}{
		{"accepted", `<allow-forward-for/>`, []string{"X-Forwarded-For: 6.6.6.6, 198.51.100.1"}, "198.51.100.1", []string{"198.51.100.1"}},
		{"lines", `<allow-forward-for proxies="10.0.0.0/8, 172.16.0.0/12"/>`,
			[]string{"X-Forwarded-For: 6.6.6.6, 198.51.100.1", "x-forwarded-for: 172.16.5.5", "X-Forwarded-For: 10.1.1.1"},
			"198.51.100.1", []string{"198.51.100.1", "172.16.5.5", "10.1.1.1"}},
		{"absent", `<allow-forward-for/>`, nil, "192.0.2.7", nil},
		{"ignored", `<allow-forward-for/>`, []string{"X-Forwarded-For: unknown"}, "192.0.2.7", nil},
		{"check equal", `<allow-forward-for check-equal-ip="true"/>`, []string{"X-Forwarded-For: 198.51.100.1, 192.0.2.7"}, "198.51.100.1", []string{"198.51.100.1"}},
		{"check equal false", `<allow-forward-for check-equal-ip="false"/>`, []string{"X-Forwarded-For: 198.51.100.1, 192.0.2.7"}, "192.0.2.7", []string{"192.0.2.7"}},
		{"check not equal", `<allow-forward-for check-equal-ip="true"/>`, []string{"X-Forwarded-For: 198.51.100.1, 192.0.2.8"}, "192.0.2.7", nil},
		{"under if", `<if><ip value="192.0.2.0/24"/><then><allow-forward-for/></then></if>`,
			[]string{"X-Forwarded-For: 198.51.100.1"}, "198.51.100.1", []string{"198.51.100.1"}},
		{"untrusted peer", `<if><ip value="10.0.0.0/8"/><then><allow-forward-for/></then></if>`,
			[]string{"X-Forwarded-For: 198.51.100.1"}, "192.0.2.7", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newState(tt.headers...)
			stages := compile(t, tt.src+`<if><ip value="`+tt.client+`"/><then><mark name="client"/></then></if>`)
			o := run(st, stages)
			if o.err != nil {
				t.Fatal(o.err)
			}
			if st.Client.String() != tt.client || !slices.Equal(st.Forwarded, tt.forwarded) {
				t.Errorf("client %v, forwarded %q; want %s, %q", st.Client, st.Forwarded, tt.client, tt.forwarded)
			}
			if !slices.Equal(o.marks, []string{"client"}) {
				t.Errorf("<ip> did not see the client %s; trace %q", tt.client, o.trace)
			}
		})
	}
}

func TestAllowForwardProto(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		secure  bool // initially
		want    bool
	}{
		{"https", []string{"X-Forwarded-Proto: https"}, false, true},
		{"HTTPS", []string{"X-Forwarded-Proto: HTTPS"}, false, true},
		{"spaces", []string{"X-Forwarded-Proto:  https "}, false, true},
		{"http", []string{"X-Forwarded-Proto: http"}, true, false},
		{"Http", []string{"X-Forwarded-Proto: Http"}, true, false},
		{"absent keeps plain", nil, false, false},
		{"absent keeps secure", nil, true, true},
		{"other", []string{"X-Forwarded-Proto: wss"}, false, false},
		{"version", []string{"X-Forwarded-Proto: HTTP/1.1"}, true, true},
		{"list", []string{"X-Forwarded-Proto: https, http"}, false, false},
		{"two lines", []string{"X-Forwarded-Proto: https", "X-Forwarded-Proto: https"}, false, false},
		{"empty", []string{"X-Forwarded-Proto:"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newState(tt.headers...)
			st.Secure = tt.secure
			o := run(st, compile(t, `<allow-forward-proto/><if><ssl/><then><mark name="ssl"/></then></if>`))
			if o.err != nil {
				t.Fatal(o.err)
			}
			if st.Secure != tt.want {
				t.Errorf("secure %v, want %v", st.Secure, tt.want)
			}
			if got := len(o.marks) == 1; got != tt.want {
				t.Errorf("<ssl/> gave %v, want %v", got, tt.want)
			}
		})
	}
}

// splitEntries joins the header lines and splits them into trimmed,
// non-empty entries, left to right.
func splitEntries(lines []string) []string {
	var entries []string
	for _, line := range lines {
		for e := range strings.SplitSeq(line, ",") {
			if e = strings.Trim(e, " \t"); e != "" {
				entries = append(entries, e)
			}
		}
	}
	return entries
}

// referenceWalk is the walk written the obvious way, by index over the
// whole list, as the specification states it.
func referenceWalk(lines []string, peer netip.Addr, checkEqualIP bool, proxies []netip.Prefix) (netip.Addr, []string, bool) {
	e := splitEntries(lines)
	i := len(e) - 1
	if i < 0 {
		return netip.Addr{}, nil, false
	}
	if checkEqualIP {
		last, ok := parseEntry(e[i])
		if !ok || !peer.IsValid() || last != peer.Unmap().WithZone("") || i == 0 {
			return netip.Addr{}, nil, false
		}
		i--
	}
	var accepted []string
	for ; i >= 0; i-- {
		a, ok := parseEntry(e[i])
		if !ok {
			return netip.Addr{}, nil, false
		}
		accepted = append([]string{a.String()}, accepted...)
		if i == 0 || !inPrefixes(a, proxies) {
			return a, accepted, true
		}
	}
	panic("unreachable")
}

// FuzzWalkForwardedFor checks that the walk never panics, agrees with a
// plain reference implementation, and that what it returns is
// consistent: the client is the first accepted entry, every
// entry right of it is a listed proxy, joining lines changes nothing, and
// entries left of a client that is not a proxy cannot change the result.
func FuzzWalkForwardedFor(f *testing.F) {
	seeds := []struct {
		header string
		peer   string
		check  bool
	}{
		{"198.51.100.1", "192.0.2.7", false},
		{"6.6.6.6, 198.51.100.1, 10.0.0.1", "10.0.0.2", false},
		{"198.51.100.1, 10.0.0.2", "10.0.0.2", true},
		{"10.0.0.3, 10.0.0.1", "10.0.0.2", false},
		{"unknown, 10.0.0.1", "10.0.0.2", false},
		{"[2001:db8::1]:80, ::ffff:10.0.0.1", "::1", false},
		{"fe80::1%eth0,,  ,\t192.0.2.1:8080", "192.0.2.1", true},
		{"[]", "192.0.2.1", false},
		{",,,", "192.0.2.1", true},
		{"[::ffff:1.2.3.4]:0, [1.2.3.4]", "1.2.3.4", true},
		{"", "", false},
	}
	for _, s := range seeds {
		f.Add(s.header, s.peer, s.check)
	}
	proxies := prefixes("10.0.0.0/8", "2001:db8::/32", "::1")
	f.Fuzz(func(t *testing.T, header, peerStr string, check bool) {
		peer, _ := netip.ParseAddr(peerStr)
		lines := strings.Split(header, "\n")
		client, accepted, ok := WalkForwardedFor(lines, peer, check, proxies)
		if !ok {
			if client.IsValid() || accepted != nil {
				t.Fatalf("not ok but (%v, %q)", client, accepted)
			}
		} else {
			if !client.IsValid() || client.Zone() != "" || client.Is4In6() {
				t.Fatalf("bad client %#v", client)
			}
			if len(accepted) == 0 || accepted[0] != client.String() {
				t.Fatalf("client %v, accepted %q", client, accepted)
			}
			for _, a := range accepted[1:] {
				if !inPrefixes(netip.MustParseAddr(a), proxies) {
					t.Fatalf("accepted %q holds %s, not a proxy", accepted, a)
				}
			}
			if n := len(splitEntries(lines)); len(accepted) > n {
				t.Fatalf("%d accepted of %d entries", len(accepted), n)
			}
		}

		// The reference implementation agrees.
		rc, ra, rok := referenceWalk(lines, peer, check, proxies)
		if rc != client || !slices.Equal(ra, accepted) || rok != ok {
			t.Fatalf("reference gives (%v, %q, %v), walk (%v, %q, %v)", rc, ra, rok, client, accepted, ok)
		}

		// Joining the lines gives the same result.
		c2, a2, ok2 := WalkForwardedFor([]string{strings.Join(lines, ",")}, peer, check, proxies)
		if c2 != client || !slices.Equal(a2, accepted) || ok2 != ok {
			t.Fatalf("joined lines differ: (%v, %q, %v) vs (%v, %q, %v)", c2, a2, ok2, client, accepted, ok)
		}

		// A spoofed prefix cannot move a client that is not a proxy.
		if ok && !inPrefixes(client, proxies) {
			c3, a3, ok3 := WalkForwardedFor(append([]string{"6.6.6.6, garbage"}, lines...), peer, check, proxies)
			if c3 != client || !slices.Equal(a3, accepted) || !ok3 {
				t.Fatalf("spoofed prefix changed the result: (%v, %q, %v) vs (%v, %q)", c3, a3, ok3, client, accepted)
			}
		}

		// With check-equal-ip, success means the last entry was the peer.
		if ok && check {
			e := splitEntries(lines)
			last, lok := parseEntry(e[len(e)-1])
			if !lok || last != canon(peer) {
				t.Fatalf("check-equal-ip accepted last entry %q for peer %v", e[len(e)-1], peer)
			}
		}
	})
}
