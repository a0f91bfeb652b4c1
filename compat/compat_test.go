package compat

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// conf wraps server options and a host body into a configuration that
// loads every extension whose elements the cases use. Server lines start
// on line 11; without them the host body starts at 12:5.
func conf(server, body string) string {
	return `<ocsigen>
  <server>
    <port>8080</port>
    <extension findlib-package="ocsigenserver.ext.revproxy"/>
    <extension findlib-package="ocsigenserver.ext.redirectmod"/>
    <extension findlib-package="ocsigenserver.ext.rewritemod"/>
    <extension findlib-package="ocsigenserver.ext.accesscontrol"/>
    <extension findlib-package="ocsigenserver.ext.outputfilter"/>
    <extension findlib-package="ocsigenserver.ext.staticmod"/>
    <extension findlib-package="ocsigenserver.ext.extendconfiguration"/>
` + server + `    <host>
    ` + body + `
    </host>
  </server>
</ocsigen>
`
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		server  string // lines 11 and after, before <host>
		body    string // starts at 12:5 when server is empty
		version int
		want    []string // "line:col version substring of the message"
	}{
		{
			name:    "clean",
			body:    `<revproxy suburl="app/(.*)" dest="http://127.0.0.1:8081/\1"/><if><ip value="10.0.0.0/8"/><then><allow-forward-for/></then></if>`,
			version: 7,
		},
		{
			name:    "revproxy regexp=",
			body:    `<revproxy regexp="http://x/(.*)" dest="http://127.0.0.1:8081/\1"/>`,
			version: 6,
			want:    []string{`12:5 6.0 <revproxy regexp="http://x/(.*)">: regexp= was removed`},
		},
		{
			name:    "redirect regexp=",
			body:    `<redirect regexp="old" dest="http://x/new"/>`,
			version: 6,
			want:    []string{`12:5 6.0 tries the sub-path, then the full URL`},
		},
		{
			name:    "user and group",
			server:  "    <user>www-data</user>\n    <group>nogroup</group>\n",
			body:    `<revproxy suburl="(.*)" dest="http://127.0.0.1:8081/\1"/>`,
			version: 6,
			want: []string{
				`11:5 6.0 <user>www-data</user> is ignored there`,
				`12:5 6.0 <group>nogroup</group> is ignored there`,
			},
		},
		{
			name:    "lookahead",
			body:    `<revproxy suburl="(?!admin/)(.*)" dest="http://127.0.0.1:8081/\1"/>`,
			version: 6,
			want:    []string{`12:5 6.0 the lookahead "(?!" is not in the syntax of ocaml-re`},
		},
		{
			name:    "lookbehind in a header condition",
			body:    `<if><header name="X" regexp=".*(?&lt;=b)"/><then><forbidden/></then></if>`,
			version: 6,
			want:    []string{`12:9 6.0 the lookbehind "(?<="`},
		},
		{
			name:    "back-reference in a rewrite",
			body:    `<rewrite regexp="(a+)/\1/(.*)" url="/\2"/>`,
			version: 6,
			want:    []string{`12:5 6.0 the back-reference "\\1"`},
		},
		{
			name:    "named back-reference in a static regexp",
			body:    `<static regexp="(?&lt;d>[a-z]+)/\k&lt;d>" dest="/srv/\1"/>`,
			version: 7,
			want:    []string{`12:5 6.0 the back-reference "\\k"`},
		},
		{
			name:    "inline option in a hidefile regexp",
			body:    `<hidefile><regexp regexp="(?i)\.bak"/></hidefile>`,
			version: 6,
			want:    []string{`12:15 6.0 the inline option "(?i"`},
		},
		{
			name:    "ip after allow-forward-for",
			body:    `<allow-forward-for/><if><ip value="203.0.113.0/24"/><then><forbidden/></then></if>`,
			version: 7,
			want:    []string{`12:29 7.0 <ip value="203.0.113.0/24"> after <allow-forward-for/> (f.conf:12)`},
		},
		{
			name:    "ip after allow-forward-for is a 7.0 change only",
			body:    `<allow-forward-for/><if><ip value="203.0.113.0/24"/><then><forbidden/></then></if>`,
			version: 6,
		},
		{
			name:    "ip in the other branch",
			body:    `<if><port value="8080"/><then><allow-forward-for/></then><else><if><ip value="10.0.0.1"/><then><forbidden/></then></if></else></if>`,
			version: 7,
		},
		{
			name:    "maxdetachedcomputationsqueued",
			server:  "    <maxdetachedcomputationsqueued>10</maxdetachedcomputationsqueued>\n",
			body:    `<revproxy suburl="(.*)" dest="http://127.0.0.1:8081/\1"/>`,
			version: 7,
			want:    []string{`11:5 7.0 <maxdetachedcomputationsqueued> was removed`},
		},
		{
			name:    "maxdetachedcomputationsqueued stays on 6.0",
			server:  "    <maxdetachedcomputationsqueued>10</maxdetachedcomputationsqueued>\n",
			body:    `<revproxy suburl="(.*)" dest="http://127.0.0.1:8081/\1"/>`,
			version: 6,
		},
		{
			name:    "listdirs",
			body:    `<listdirs value="true"/><static dir="/srv"/>`,
			version: 7,
			want:    []string{`12:5 7.0 a directory without an index is listed there`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := conf(tt.server, tt.body)
			cfg, err := xmlconf.Parse("f.conf", []byte(src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			notes, err := Check(cfg, tt.version)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			var got []string
			for _, n := range notes {
				got = append(got, fmt.Sprintf("%d:%d %s %s", n.Pos.Line, n.Pos.Col, n.Version, n.Msg))
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d notes, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, w := range tt.want {
				f := strings.SplitN(w, " ", 3)
				if !strings.HasPrefix(got[i], f[0]+" "+f[1]+" ") || !strings.Contains(got[i], f[2]) {
					t.Errorf("note %d = %q, want position %s, version %s and %q", i, got[i], f[0], f[1], f[2])
				}
			}
		})
	}
}

func TestCheckVersion(t *testing.T) {
	cfg, err := xmlconf.Parse("f.conf", []byte(conf("", `<revproxy suburl="(.*)" dest="http://127.0.0.1:8081/\1"/>`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{5, 8, 0} {
		if _, err := Check(cfg, v); err == nil || !strings.HasPrefix(err.Error(), "compat: ") {
			t.Errorf("Check(%d) error = %v, want a compat: error", v, err)
		}
	}
}

// TestReProblems pins which constructs are reported. The refused ones
// were checked against ocaml-re's parser (Re.Pcre.regexp), which raises
// Parse_error or Not_supported for each.
func TestReProblems(t *testing.T) {
	tests := []struct {
		re   string
		want []string
	}{
		{`a(?=b)`, []string{`the lookahead "(?="`}},
		{`a(?!b)`, []string{`the lookahead "(?!"`}},
		{`(?<=a)b`, []string{`the lookbehind "(?<="`}},
		{`(?<!a)b`, []string{`the lookbehind "(?<!"`}},
		{`(a)\1`, []string{`the back-reference "\\1"`}},
		{`(?<n>a)\k<n>`, []string{`the back-reference "\\k"`}},
		{`(?P<n>a)(?P=n)`, []string{`the named group "(?P<"`, `the back-reference "(?P="`}},
		{`(?'n'a)`, []string{`the named group "(?'"`}},
		{`(?i)a`, []string{`the inline option "(?i"`}},
		{`(?>a)`, []string{`the atomic group "(?>"`}},
		{`(?(1)a)`, []string{`the conditional "(?("`}},
		{`\p{L}`, []string{`the escape "\\p"`}},
		{`[\x41]`, []string{`the escape "\\x" in a character class`}},
		{`[\1]`, []string{`the octal escape "\\1" in a character class`}},
		// Taken by ocaml-re.
		{`x(?:y)`, nil},
		{`a(?#c)b`, nil},
		{`(?<name>a)`, nil},
		{`\d+\.\w\s\b\t`, nil},
		{`[[:alpha:]]+`, nil},
		{`[]a(?=]`, nil},
		{`[^](?=]`, nil},
		{`\-\/\_\\1`, nil},
		{`(.*)`, nil},
		{`\(?=x\)`, nil},
	}
	for _, tt := range tests {
		if got := ReProblems(tt.re); !slices.Equal(got, tt.want) {
			t.Errorf("ReProblems(%q) = %q, want %q", tt.re, got, tt.want)
		}
	}
}
