package accesscontrol

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/stage"
)

// TestActions runs the actions and blocks, before and after an answer.
func TestActions(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		status   int // the status the request starts with (0: 404)
		result   stage.Result
		answered bool // an answer remains
		dropped  bool // the answer made was dropped
		want     int  // st.Status afterwards
		marks    string
	}{
		{name: "notfound", src: `<notfound/><mark name="a"/>`, result: stage.StopAll, want: 404},
		{name: "forbidden", src: `<forbidden/><mark name="a"/>`, result: stage.StopAll, want: 403},
		{name: "forbidden after answer", src: `<answer status="200"/><forbidden/><mark name="a"/>`,
			result: stage.StopAll, dropped: true, want: 403},
		{name: "notfound after answer", src: `<answer status="200"/><notfound/>`,
			result: stage.StopAll, dropped: true, want: 404},
		{name: "forbidden overrides status", src: `<forbidden/>`, status: 500, result: stage.StopAll, want: 403},

		{name: "nextsite", src: `<nextsite/><mark name="a"/>`, result: stage.StopSite, want: 404},
		{name: "nexthost", src: `<nexthost/><mark name="a"/>`, result: stage.StopHost, want: 404},
		{name: "stop", src: `<stop/><mark name="a"/>`, result: stage.StopAll, want: 404},
		{name: "stop resets status", src: `<stop/>`, status: 403, result: stage.StopAll, want: 404},
		{name: "nextsite answered", src: `<answer status="200"/><nextsite/><mark name="a"/>`,
			result: stage.StopAll, answered: true, want: 404},
		{name: "nexthost answered", src: `<answer status="200"/><nexthost/><mark name="a"/>`,
			result: stage.StopAll, answered: true, want: 404},
		{name: "stop answered", src: `<answer status="200"/><stop/><mark name="a"/>`,
			result: stage.StopAll, answered: true, want: 404},

		{name: "iffound unanswered", src: `<iffound><mark name="in"/></iffound><mark name="after"/>`,
			result: stage.Next, want: 404, marks: "after"},
		{name: "iffound answered", src: `<answer status="200"/><iffound><mark name="in"/></iffound><mark name="after"/>`,
			result: stage.Next, answered: true, want: 404, marks: "in after"},
		{name: "iffound forbidden", src: `<answer status="200"/><iffound><forbidden/></iffound><mark name="after"/>`,
			result: stage.StopAll, dropped: true, want: 403},
		{name: "iffound empty", src: `<answer status="200"/><iffound/><mark name="after"/>`,
			result: stage.Next, answered: true, want: 404, marks: "after"},

		{name: "ifnotfound unanswered", src: `<ifnotfound><mark name="in"/></ifnotfound><mark name="after"/>`,
			result: stage.Next, want: 404, marks: "in after"},
		{name: "ifnotfound answered", src: `<answer status="200"/><ifnotfound><mark name="in"/></ifnotfound><mark name="after"/>`,
			result: stage.Next, answered: true, want: 404, marks: "after"},
		{name: "ifnotfound code match", src: `<ifnotfound code="40[34]"><mark name="in"/></ifnotfound>`,
			status: 403, result: stage.Next, want: 403, marks: "in"},
		{name: "ifnotfound code no match", src: `<ifnotfound code="40[34]"><mark name="in"/></ifnotfound>`,
			status: 500, result: stage.Next, want: 500},
		{name: "ifnotfound code anchored", src: `<ifnotfound code="4"><mark name="in"/></ifnotfound>`,
			result: stage.Next, want: 404},
		{name: "ifnotfound code alternation anchored", src: `<ifnotfound code="40|50"><mark name="in"/></ifnotfound>`,
			result: stage.Next, want: 404},
		{name: "ifnotfound code default status", src: `<ifnotfound code="404"><mark name="in"/></ifnotfound>`,
			result: stage.Next, want: 404, marks: "in"},
		{name: "ifnotfound code answered", src: `<answer status="200"/><ifnotfound code=".*"><mark name="in"/></ifnotfound>`,
			result: stage.Next, answered: true, want: 404},
		{name: "ifnotfound code from setstatus", src: `<setstatus code="403"/><ifnotfound code="403"><answer status="200"/></ifnotfound><iffound><mark name="found"/></iffound>`,
			result: stage.Next, answered: true, want: 403, marks: "found"},

		{name: "if then forbidden", src: `<if><ip value="192.0.2.0/24"/><then><forbidden/></then></if><mark name="after"/>`,
			result: stage.StopAll, want: 403},
		{name: "if else nextsite", src: `<if><ssl/><then/><else><nextsite/></else></if><mark name="after"/>`,
			result: stage.StopSite, want: 404},
		{name: "if without else", src: `<if><ssl/><then><forbidden/></then></if><mark name="after"/>`,
			result: stage.Next, want: 404, marks: "after"},
		{name: "if runs after answer", src: `<answer status="200"/><if><and/><then><mark name="in"/></then></if>`,
			result: stage.Next, answered: true, want: 404, marks: "in"},
		{name: "nested if", src: `<if><and/><then><mark name="1"/><if><or/><then/><else><mark name="2"/><stop/></else></if><mark name="3"/></then></if><mark name="4"/>`,
			result: stage.StopAll, want: 404, marks: "1 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stages := compile(t, tt.src)
			st := newState()
			if tt.status != 0 {
				st.Status = tt.status
			}
			answerClosed = nil
			o := run(st, stages)
			if o.err != nil {
				t.Fatalf("error: %v", o.err)
			}
			if o.result != tt.result {
				t.Errorf("result %v, want %v", o.result, tt.result)
			}
			if got := st.Answer != nil; got != tt.answered {
				t.Errorf("answered %v, want %v", got, tt.answered)
			}
			if got := answerClosed != nil && *answerClosed; got != tt.dropped {
				t.Errorf("answer body closed %v, want %v", got, tt.dropped)
			}
			if st.Status != tt.want {
				t.Errorf("status %d, want %d", st.Status, tt.want)
			}
			if got := strings.Join(o.marks, " "); got != tt.marks {
				t.Errorf("marks %q, want %q\ntrace: %q", got, tt.marks, o.trace)
			}
		})
	}
}

// TestConfigErrors checks the messages and positions of bad elements.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // "line:col: message"
	}{
		{"if no condition", `<if/>`, []string{
			"1:1: <if>: missing condition: <if> takes one condition, then <then> and an optional <else>",
			"1:1: <if>: missing <then>"}},
		{"if then first", `<if><then/></if>`, []string{
			"1:1: <if>: missing condition: <if> takes one condition, then <then> and an optional <else>"}},
		{"if no then", `<if><ssl/></if>`, []string{"1:1: <if>: missing <then>"}},
		{"if two conditions", "<if><ssl/>\n<port value=\"80\"/><then/></if>", []string{
			"2:1: <if>: expected <then> after the condition, found <port> (<if> takes exactly one condition; combine several with <and> or <or>)"}},
		{"if else then", `<if><ssl/><else/><then/></if>`, []string{
			"1:11: <if>: expected <then> after the condition, found <else> (<if> takes exactly one condition; combine several with <and> or <or>)"}},
		{"if two elses", `<if><ssl/><then/><else/><else/></if>`, []string{"1:25: <if>: unexpected <else> after the branches"}},
		{"if trailing", `<if><ssl/><then/><mark name="x"/></if>`, []string{"1:18: <if>: unexpected <mark> after the branches"}},
		{"if attribute", `<if x="1"><ssl/><then/></if>`, []string{`1:1: <if>: unknown attribute "x"`}},
		{"then attribute", `<if><ssl/><then x="1"/></if>`, []string{`1:11: <then>: unknown attribute "x"`}},
		{"if text", `<if>hello<ssl/><then/></if>`, []string{`1:1: <if>: unexpected text`}},
		{"unknown condition", `<if><foo/><then/></if>`, []string{
			"1:5: <foo>: unknown condition (expected ip, port, ssl, header, method, protocol, path, and, or, not)"}},
		{"action as condition", `<if><forbidden/><then/></if>`, []string{
			"1:5: <forbidden>: unknown condition (expected ip, port, ssl, header, method, protocol, path, and, or, not)"}},
		{"nested block error", "<if><ssl/><then>\n  <forbidden x=\"1\"/>\n  <bogus/></then></if>", []string{
			`2:3: <forbidden>: unknown attribute "x"`, "3:3: <bogus>: unknown element"}},
		{"else block error", "<if><ssl/><then/><else><stop>x</stop></else></if>", []string{"1:24: <stop>: unexpected text"}},

		{"ip missing value", `<if><ip/><then/></if>`, []string{`1:5: <ip>: missing attribute "value"`}},
		{"ip bad", `<if><ip value="10.0.0.300"/><then/></if>`, []string{`1:5: <ip>: bad address or prefix "10.0.0.300"`}},
		{"ip bad prefix", `<if><ip value="10.0.0.0/33"/><then/></if>`, []string{`1:5: <ip>: bad address or prefix "10.0.0.0/33"`}},
		{"ip name", `<if><ip value="localhost"/><then/></if>`, []string{`1:5: <ip>: bad address or prefix "localhost"`}},
		{"ip extra attribute", `<if><ip value="10.0.0.1" mask="8"/><then/></if>`, []string{`1:5: <ip>: unknown attribute "mask"`}},
		{"ip child", `<if><ip value="10.0.0.1"><ssl/></ip><then/></if>`, []string{`1:26: <ip>: unexpected child <ssl>`}},
		{"port bad", `<if><port value="http"/><then/></if>`, []string{`1:5: <port>: bad port "http"`}},
		{"port range", `<if><port value="70000"/><then/></if>`, []string{`1:5: <port>: bad port "70000"`}},
		{"ssl attribute", `<if><ssl value="true"/><then/></if>`, []string{`1:5: <ssl>: unknown attribute "value"`}},
		{"header missing", `<if><header name="X"/><then/></if>`, []string{`1:5: <header>: missing attribute "regexp"`}},
		{"header bad regexp", `<if><header name="X" regexp="a("/><then/></if>`, []string{`1:5: <header>: bad regexp "a(": `}},
		{"header bad name", `<if><header name="X Y" regexp="a"/><then/></if>`, []string{`1:5: <header>: bad header name "X Y"`}},
		{"method empty", `<if><method value=""/><then/></if>`, []string{`1:5: <method>: bad method ""`}},
		{"protocol bad", `<if><protocol value="http/1.0"/><then/></if>`, []string{
			`1:5: <protocol>: bad protocol "http/1.0" (expected HTTP/1.0, HTTP/1.1...)`}},
		{"path bad regexp", `<if><path regexp="[a"/><then/></if>`, []string{`1:5: <path>: bad regexp "[a": `}},
		{"path unbalanced", `<if><path regexp="a)|(b"/><then/></if>`, []string{`1:5: <path>: bad regexp "a)|(b": `}},
		{"not empty", `<if><not/><then/></if>`, []string{"1:5: <not>: takes exactly one condition, has 0"}},
		{"not two", `<if><not><ssl/><bad/></not><then/></if>`, []string{
			"1:5: <not>: takes exactly one condition, has 2",
			"1:16: <bad>: unknown condition (expected ip, port, ssl, header, method, protocol, path, and, or, not)"}},
		{"and bad child", "<if><and><ssl/>\n<ip value=\"x\"/></and><then/></if>", []string{`2:1: <ip>: bad address or prefix "x"`}},
		{"or attribute", `<if><or x="y"/><then/></if>`, []string{`1:5: <or>: unknown attribute "x"`}},

		{"notfound child", `<notfound><mark name="x"/></notfound>`, []string{"1:11: <notfound>: unexpected child <mark>"}},
		{"forbidden attribute", `<forbidden code="401"/>`, []string{`1:1: <forbidden>: unknown attribute "code"`}},
		{"nextsite attribute", `<nextsite x=""/>`, []string{`1:1: <nextsite>: unknown attribute "x"`}},
		{"nexthost text", `<nexthost>x</nexthost>`, []string{`1:1: <nexthost>: unexpected text`}},
		{"iffound attribute", `<iffound code="200"/>`, []string{`1:1: <iffound>: unknown attribute "code"`}},
		{"ifnotfound bad code", `<ifnotfound code="4(("/>`, []string{`1:1: <ifnotfound>: code: bad regexp "4((": `}},
		{"ifnotfound bad attr", `<ifnotfound status="404"/>`, []string{`1:1: <ifnotfound>: unknown attribute "status"`}},
		{"ifnotfound block error", `<ifnotfound><x/></ifnotfound>`, []string{`1:13: <x>: unknown element`}},

		{"forward-for check-equal-ip", `<allow-forward-for check-equal-ip="yes"/>`, []string{
			`1:1: <allow-forward-for>: check-equal-ip must be "true" or "false", not "yes"`}},
		{"forward-for proxies", `<allow-forward-for proxies="10.0.0.0/8 bad 2001:db8::/129"/>`, []string{
			`1:1: <allow-forward-for>: proxies: bad address or prefix "bad"`,
			`1:1: <allow-forward-for>: proxies: bad address or prefix "2001:db8::/129"`}},
		{"forward-for attribute", `<allow-forward-for trusted="10.0.0.1"/>`, []string{`1:1: <allow-forward-for>: unknown attribute "trusted"`}},
		{"forward-proto attribute", `<allow-forward-proto x="1"/>`, []string{`1:1: <allow-forward-proto>: unknown attribute "x"`}},
		{"forward-proto child", `<allow-forward-proto><ssl/></allow-forward-proto>`, []string{`1:22: <allow-forward-proto>: unexpected child <ssl>`}},

		{"several at once", "<forbidden a=\"1\"/>\n<if><ip value=\"x\"/><then><stop b=\"2\"/></then></if>", []string{
			`1:1: <forbidden>: unknown attribute "a"`,
			`2:5: <ip>: bad address or prefix "x"`,
			`2:26: <stop>: unknown attribute "b"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeCompiler{timeout: time.Second}
			c.Block(parseXML(t, tt.src))
			c.errs.Sort()
			var got []string
			for _, e := range c.errs {
				got = append(got, e.Error())
			}
			ok := len(got) == len(tt.want)
			for i := 0; ok && i < len(got); i++ {
				// A want ending in ": " is a prefix (regexp2's wording follows).
				w := testFile + ":" + tt.want[i]
				ok = got[i] == w || strings.HasSuffix(w, ": ") && strings.HasPrefix(got[i], w)
			}
			if !ok {
				t.Errorf("%s\ngot errors:\n  %s\nwant:\n  %s", tt.src, strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestCompileReturnsNil checks that a wrong element compiles to nil, and
// that an element outside this package is refused.
func TestCompileReturnsNil(t *testing.T) {
	for _, src := range []string{`<if><ssl/></if>`, `<forbidden x="1"/>`, `<revproxy/>`, `<then/>`, `<ip value="1.2.3.4"/>`} {
		c := &fakeCompiler{}
		e := parseXML(t, src)[0]
		if s := Compile(c, e); s != nil {
			t.Errorf("Compile(%s) = %v, want nil", src, s)
		}
		if c.errs.Len() == 0 {
			t.Errorf("Compile(%s) reported nothing", src)
		}
	}
	for _, name := range Elements {
		if !Handles(name) {
			t.Errorf("Handles(%q) = false", name)
		}
	}
	for _, name := range []string{"then", "else", "ip", "and", "revproxy", ""} {
		if Handles(name) {
			t.Errorf("Handles(%q) = true", name)
		}
	}
}

// TestTrace checks the lines --dry-run prints.
func TestTrace(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		setup func(*stage.State)
		want  []string
	}{
		{"if else", `<if><ip value="10.0.0.0/8"/><then/><else/></if>`, nil,
			[]string{`1: if <ip value="10.0.0.0/8">: false -> else`}},
		{"if then", `<if><and><ip value="192.0.2.0/24"/><not><ssl/></not></and><then><forbidden/></then></if>`, nil,
			[]string{`1: if (<ip value="192.0.2.0/24"> and not <ssl>): true -> then`, `1: forbidden -> 403`}},
		{"if no else", `<if><or/><then/></if>`, nil, []string{`1: if <or/>: false (no else)`}},
		{"conditions", `<if><or><port value="8080"/><header name="x-a" regexp="b"/><method value="PUT"/><protocol value="HTTP/1.0"/><path regexp="p"/></or><then/></if>`, nil,
			[]string{`1: if (<port value="8080"> or <header name="X-A" regexp="b"> or <method value="PUT"> or <protocol value="HTTP/1.0"> or <path regexp="p">): false (no else)`}},
		{"notfound answered", "<answer status=\"200\"/>\n<notfound/>", nil, []string{`2: notfound -> 404 (answer dropped)`}},
		{"nextsite", `<nextsite/>`, nil, []string{`1: nextsite: unanswered -> skip the rest of the site`}},
		{"nexthost", `<nexthost/>`, nil, []string{`1: nexthost: unanswered -> skip the rest of the host`}},
		{"stop", `<stop/>`, nil, []string{`1: stop: unanswered -> stop -> 404`}},
		{"stop answered", `<answer status="200"/><stop/>`, nil, []string{`1: stop: answered -> send the answer now`}},
		{"iffound", `<iffound/>`, nil, []string{`1: iffound: unanswered -> skip`}},
		{"ifnotfound", `<ifnotfound code="5.."/><ifnotfound/>`, nil, []string{
			`1: ifnotfound code="5..": status 404 does not match -> skip`, `1: ifnotfound: status 404 -> run`}},
		{"forward-for", `<allow-forward-for/>`, hdr("X-Forwarded-For: 203.0.113.9, 198.51.100.1"), []string{
			`1: allow-forward-for: client 198.51.100.1 (accepted 1 entry)`}},
		{"forward-for proxies", `<allow-forward-for proxies="198.51.100.0/24"/>`, hdr("X-Forwarded-For: 203.0.113.9, 198.51.100.1"), []string{
			`1: allow-forward-for: client 203.0.113.9 (accepted 2 entries)`}},
		{"forward-for none", `<allow-forward-for/>`, nil, []string{
			`1: allow-forward-for: no X-Forwarded-For; client stays 192.0.2.7`}},
		{"forward-for empty", `<allow-forward-for/>`, hdr("X-Forwarded-For: , "), []string{
			`1: allow-forward-for: X-Forwarded-For has no entries; client stays 192.0.2.7`}},
		{"forward-for only peer", `<allow-forward-for check-equal-ip="true"/>`, hdr("X-Forwarded-For: 192.0.2.7"), []string{
			`1: allow-forward-for: header ignored: it holds only the peer's address; client stays 192.0.2.7`}},
		{"forward-for garbage", `<allow-forward-for/>`, hdr("X-Forwarded-For: 1.2.3.4, <script>"), []string{
			`1: allow-forward-for: header ignored: entry 1 from the right is not an IP address; client stays 192.0.2.7`}},
		{"forward-for not peer", `<allow-forward-for check-equal-ip="true"/>`, hdr("X-Forwarded-For: 1.2.3.4, 5.6.7.8"), []string{
			`1: allow-forward-for: header ignored: its last entry 5.6.7.8 is not the peer 192.0.2.7; client stays 192.0.2.7`}},
		{"forward-proto", `<allow-forward-proto/>`, hdr("X-Forwarded-Proto: HTTPS"), []string{`1: allow-forward-proto: https -> secure`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newState()
			if tt.setup != nil {
				tt.setup(st)
			}
			o := run(st, compile(t, tt.src))
			if !slices.Equal(o.trace, tt.want) {
				t.Errorf("trace:\n  %s\nwant:\n  %s", strings.Join(o.trace, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestNoTrace checks that stages run without a trace function.
func TestNoTrace(t *testing.T) {
	st := newState("X-Forwarded-For: 198.51.100.1")
	stages := compile(t, `<allow-forward-for/><if><ip value="198.51.100.1"/><then><forbidden/></then></if>`)
	r, err := stage.RunBlock(t.Context(), st, stages)
	if err != nil || r != stage.StopAll || st.Status != 403 {
		t.Errorf("got (%v, %v, %d), want (stop, nil, 403)", r, err, st.Status)
	}
}
