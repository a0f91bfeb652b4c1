package accesscontrol

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/pattern"
	"github.com/ocsiproxy/ocsiproxy/stage"
)

// TestConditions runs every condition through <if> with both branches.
func TestConditions(t *testing.T) {
	tests := []struct {
		name  string
		cond  string
		setup func(st *stage.State)
		want  bool
	}{
		// <ip>: the client address.
		{"ip exact", `<ip value="192.0.2.7"/>`, nil, true},
		{"ip exact other", `<ip value="192.0.2.8"/>`, nil, false},
		{"ip prefix", `<ip value="192.0.2.0/24"/>`, nil, true},
		{"ip prefix other", `<ip value="10.0.0.0/8"/>`, nil, false},
		{"ip host bits ignored", `<ip value="10.1.2.3/8"/>`, client("10.200.0.1"), true},
		{"ip v6 prefix", `<ip value="2001:db8::/32"/>`, client("2001:db8::42"), true},
		{"ip v6 prefix other", `<ip value="2001:db8::/32"/>`, client("2001:db9::42"), false},
		{"ip v6 exact", `<ip value="::1"/>`, client("::1"), true},
		{"ip mapped client", `<ip value="10.0.0.0/8"/>`, client("::ffff:10.1.2.3"), true},
		{"ip mapped prefix", `<ip value="::ffff:10.0.0.0/104"/>`, client("10.1.2.3"), true},
		{"ip mapped address", `<ip value="::ffff:10.1.2.3"/>`, client("10.1.2.3"), true},
		{"ip v4 prefix v6 client", `<ip value="0.0.0.0/0"/>`, client("2001:db8::1"), false},
		{"ip v6 any v4 client", `<ip value="::/0"/>`, client("10.1.2.3"), false},
		{"ip zoned client", `<ip value="fe80::/10"/>`, client("fe80::1%eth0"), true},
		{"ip no client", `<ip value="0.0.0.0/0"/>`, func(st *stage.State) { st.Client = netip.Addr{} }, false},
		{"ip uses client not peer", `<ip value="192.0.2.7"/>`, client("198.51.100.1"), false},

		// <port>: the listening port.
		{"port", `<port value="80"/>`, nil, true},
		{"port other", `<port value="8080"/>`, nil, false},
		{"port 8080", `<port value="8080"/>`, func(st *stage.State) { st.LocalPort = 8080 }, true},

		// <ssl/>.
		{"ssl plain", `<ssl/>`, nil, false},
		{"ssl secure", `<ssl/>`, func(st *stage.State) { st.Secure = true }, true},

		// <header>: anchored, any value, a line is one value.
		{"header match", `<header name="User-Agent" regexp="curl/.*"/>`, hdr("User-Agent: curl/8.0"), true},
		{"header anchored start", `<header name="User-Agent" regexp="curl"/>`, hdr("User-Agent: xcurl"), false},
		{"header anchored end", `<header name="User-Agent" regexp="curl"/>`, hdr("User-Agent: curl/8.0"), false},
		{"header alternation anchored", `<header name="X-A" regexp="foo|bar"/>`, hdr("X-A: foobar"), false},
		{"header alternation", `<header name="X-A" regexp="foo|bar"/>`, hdr("X-A: bar"), true},
		{"header name case", `<header name="user-agent" regexp="curl.*"/>`, hdr("User-Agent: curl/8.0"), true},
		{"header absent", `<header name="X-A" regexp=".*"/>`, nil, false},
		{"header empty value", `<header name="X-A" regexp=""/>`, hdr("X-A:"), true},
		{"header any line", `<header name="X-A" regexp="b"/>`, hdr("X-A: a", "X-A: b"), true},
		{"header no line", `<header name="X-A" regexp="c"/>`, hdr("X-A: a", "X-A: b"), false},
		{"header comma line is one value", `<header name="X-A" regexp="b"/>`, hdr("X-A: a, b"), false},
		{"header comma line whole", `<header name="X-A" regexp="a, b"/>`, hdr("X-A: a, b"), true},
		{"header host", `<header name="Host" regexp="www\.example\.com"/>`, nil, true},
		{"header host absent", `<header name="host" regexp=".*"/>`, func(st *stage.State) { st.Host = "" }, false},
		{"header no newline trick", `<header name="X-A" regexp="a"/>`, hdr("X-A: a\nb"), false},

		// <method>: exact.
		{"method", `<method value="GET"/>`, nil, true},
		{"method other", `<method value="POST"/>`, nil, false},
		{"method case-sensitive", `<method value="get"/>`, nil, false},
		{"method extension", `<method value="PROPFIND"/>`, func(st *stage.State) { st.Method = "PROPFIND" }, true},

		// <protocol>.
		{"protocol 1.1", `<protocol value="HTTP/1.1"/>`, nil, true},
		{"protocol 1.0", `<protocol value="HTTP/1.0"/>`, nil, false},
		{"protocol 1.0 request", `<protocol value="HTTP/1.0"/>`, func(st *stage.State) { st.Proto = "HTTP/1.0" }, true},

		// <path>: the sub-path, anchored, no query.
		{"path", `<path regexp="pa.*"/>`, nil, true},
		{"path anchored", `<path regexp="at"/>`, nil, false},
		{"path no leading slash", `<path regexp="/path"/>`, nil, false},
		{"path no site prefix", `<path regexp="sub/path"/>`, nil, false},
		{"path without query", `<path regexp="path"/>`, func(st *stage.State) { st.RawQuery, st.HasQuery = "a=b", true }, true},
		{"path encoded", `<path regexp="a%20b"/>`, func(st *stage.State) { st.SubPath = "a%20b" }, true},
		{"path empty", `<path regexp=""/>`, func(st *stage.State) { st.SubPath = "" }, true},
		{"path dollar end only", `<path regexp="a$"/>`, func(st *stage.State) { st.SubPath = "a\n" }, false},

		// <and>, <or>, <not>.
		{"and empty", `<and/>`, nil, true},
		{"or empty", `<or/>`, nil, false},
		{"and true", `<and><ssl/><port value="443"/></and>`, secure443, true},
		{"and one false", `<and><ssl/><port value="80"/></and>`, secure443, false},
		{"or one true", `<or><port value="80"/><ssl/></or>`, secure443, true},
		{"or all false", `<or><port value="80"/><method value="POST"/></or>`, secure443, false},
		{"not", `<not><ssl/></not>`, nil, true},
		{"not not", `<not><not><ssl/></not></not>`, nil, false},
		{"nested", `<and><or><ip value="10.0.0.0/8"/><ip value="192.0.2.0/24"/></or><not><method value="POST"/></not></and>`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stages := compile(t, `<if>`+tt.cond+`<then><mark name="then"/></then><else><mark name="else"/></else></if><mark name="after"/>`)
			st := newState()
			if tt.setup != nil {
				tt.setup(st)
			}
			o := run(st, stages)
			if o.err != nil || o.result != stage.Next {
				t.Fatalf("got (%v, %v), want (next, nil)", o.result, o.err)
			}
			want := []string{"else", "after"}
			if tt.want {
				want = []string{"then", "after"}
			}
			if !slices.Equal(o.marks, want) {
				t.Errorf("%s: ran %q, want %q\ntrace: %q", tt.cond, o.marks, want, o.trace)
			}
		})
	}
}

func client(s string) func(*stage.State) {
	return func(st *stage.State) { st.Client = netip.MustParseAddr(s) }
}

func hdr(lines ...string) func(*stage.State) {
	return func(st *stage.State) {
		for _, l := range lines {
			name, value, _ := strings.Cut(l, ":")
			st.In.HTTP.Header.Add(name, strings.TrimSpace(value))
		}
	}
}

func secure443(st *stage.State) { st.Secure, st.LocalPort = true, 443 }

// TestConditionShortCircuit checks that <and>/<or> stop at the first
// deciding condition: a later condition that would time out is not run.
func TestConditionShortCircuit(t *testing.T) {
	slow := `<path regexp="(?=a)(a+)+b"/>` // a lookahead keeps it on the backtracking engine
	for _, src := range []string{
		`<and><ssl/>` + slow + `</and>`,
		`<or><not><ssl/></not>` + slow + `</or>`,
	} {
		c := &fakeCompiler{timeout: time.Millisecond}
		stages := c.Block(parseXML(t, `<if>`+src+`<then/></if>`))
		if c.errs.Len() > 0 {
			t.Fatal(c.errs.Err())
		}
		st := newState()
		st.SubPath = strings.Repeat("a", 40)
		if o := run(st, stages); o.err != nil {
			t.Errorf("%s: %v", src, o.err)
		}
	}
}

// TestRegexpTimeout checks that a regexp running past its limit fails the
// request with 500, naming the rule's position and not the input.
func TestRegexpTimeout(t *testing.T) {
	input := strings.Repeat("a", 40) + "!SECRET"
	tests := []struct {
		name, src string
		setup     func(*stage.State)
		pos       string
	}{
		{"path", "<mark name=\"x\"/>\n<if><path regexp=\"(?=a)(a+)+\"/><then/></if>", func(st *stage.State) { st.SubPath = input }, "test.conf:2:5"},
		{"header", "<if>\n  <or><ssl/><header name=\"X-A\" regexp=\"(?=a)(a+)+\"/></or><then/></if>", hdr("X-A: " + input), "test.conf:2:13"},
		{"ifnotfound", "<ifnotfound code=\"(?=4)(4+)+3\"/>", func(st *stage.State) { st.Status = 4444444444444444444 }, "test.conf:1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeCompiler{timeout: time.Millisecond}
			stages := c.Block(parseXML(t, tt.src))
			if c.errs.Len() > 0 {
				t.Fatal(c.errs.Err())
			}
			st := newState()
			tt.setup(st)
			o := run(st, stages)
			if o.err == nil {
				t.Fatal("no error")
			}
			if got := stage.StatusOf(o.err); got != 500 {
				t.Errorf("status %d, want 500", got)
			}
			if !errors.Is(o.err, pattern.ErrTimeout) {
				t.Errorf("error %v does not wrap pattern.ErrTimeout", o.err)
			}
			msg := o.err.Error()
			if !strings.Contains(msg, tt.pos) {
				t.Errorf("error %q does not name %s", msg, tt.pos)
			}
			if strings.Contains(msg, "SECRET") || strings.Contains(msg, "aaaa") || strings.Contains(msg, "4444") {
				t.Errorf("error %q echoes the input", msg)
			}
		})
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.0.0.1", "10.0.0.1/32"},
		{" 10.0.0.1 ", "10.0.0.1/32"},
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"::ffff:10.1.2.3", "10.1.2.3/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:0:0/96", "0.0.0.0/0"},
		{"::/0", "::/0"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"fe80::1%eth0", "error"},
		{"10.0.0.0/33", "error"},
		{"10.0.0", "error"},
		{"010.0.0.1", "error"},
		{"example.com", "error"},
		{"", "error"},
	}
	for _, tt := range tests {
		p, err := ParsePrefix(tt.in)
		got := p.String()
		if err != nil {
			got = "error"
		}
		if got != tt.want {
			t.Errorf("ParsePrefix(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
