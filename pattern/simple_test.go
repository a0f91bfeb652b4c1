package pattern

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSimple(t *testing.T) {
	tests := []struct {
		expr string
		ok   bool
		want simple
	}{
		{`(.*)`, true, simple{rest: true, group: true}},
		{`app/(.*)`, true, simple{lit: "app/", rest: true, group: true}},
		{`old\.html`, true, simple{lit: "old.html"}},
		{`a\/b.+`, true, simple{lit: "a/b", rest: true, nonEmpty: true}},
		{`x(.+)`, true, simple{lit: "x", rest: true, nonEmpty: true, group: true}},
		{`.*`, true, simple{rest: true}},
		{``, true, simple{}},
		{`a #b`, true, simple{lit: "a #b"}},
		{`a.*b`, false, simple{}},
		{`a(.*)b`, false, simple{}},
		{`ab?`, false, simple{}},
		{`a{2}`, false, simple{}},
		{`a|b(.*)`, false, simple{}},
		{`\d(.*)`, false, simple{}},
		{`(?i)a(.*)`, false, simple{}},
		{`é(.*)`, false, simple{}},
		{`(.*)$`, false, simple{}},
		{`^(.*)`, false, simple{}},
		{`(.*)(.*)`, false, simple{}},
		{`((.*))`, false, simple{}},
		{`a\`, false, simple{}},
	}
	for _, tt := range tests {
		got, ok := parseSimple(tt.expr)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseSimple(%q) = %+v, %v; want %+v, %v", tt.expr, got, ok, tt.want, tt.ok)
		}
	}
}

// TestSimpleAsRegexp2 checks that the simple matcher decides and groups
// exactly as regexp2 does, on random patterns of the simple shapes and
// random subjects (line feeds, carriage returns, prefixes, non-ASCII and
// invalid UTF-8 included).
func TestSimpleAsRegexp2(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "/", ".", "?", "=", "%2F", "\n", "\r", "é", "\xff", " ", "#"}
	word := func(max int) string {
		var b strings.Builder
		for n := rng.IntN(max + 1); n > 0; n-- {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	quote := func(lit string) string {
		var b strings.Builder
		for _, c := range []byte(lit) {
			switch {
			case c == '.' || c == '?':
				b.WriteByte('\\') // must be escaped
			case (c == '/' || c == '#' || c == '=') && rng.IntN(2) == 0:
				b.WriteByte('\\') // may be
			}
			b.WriteByte(c)
		}
		return b.String()
	}
	tails := []string{"", ".*", ".+", "(.*)", "(.+)"}
	tpl, n := 0, 0
	for range 400 {
		lit := strings.NewReplacer("\n", "", "\r", "", "é", "", "\xff", "").Replace(word(4))
		expr := quote(lit) + tails[rng.IntN(len(tails))]
		re, err := Compile(expr, true, 0)
		if err != nil {
			t.Fatalf("Compile(%q): %v", expr, err)
		}
		if re.simple == nil {
			t.Fatalf("%q not recognised as simple", expr)
		}
		// The same pattern, matched by regexp2 alone.
		slow := &Regexp{compiled: re.compiled, source: re.source, timeout: re.timeout, groups: re.groups, prefix: re.prefix}
		template, err := ParseTemplate(`x\0y`+map[bool]string{true: `\1`}[re.NumGroups() == 1]+`z`, re)
		if err != nil {
			t.Fatal(err)
		}
		tpl++
		for range 60 {
			in := word(3) + lit + word(5)
			if rng.IntN(3) == 0 {
				in = lit + word(5)
			}
			fast, fok, ferr := re.MatchGroups(in, nil)
			want, wok, werr := slow.MatchGroups(in, nil)
			if ferr != nil || werr != nil {
				t.Fatalf("%q on %q: errors %v, %v", expr, in, ferr, werr)
			}
			if fok != wok || !reflect.DeepEqual(fast, want) {
				t.Fatalf("%q on %q: simple %q %v, regexp2 %q %v", expr, in, fast, fok, want, wok)
			}
			if got, _ := re.MatchString(in); got != wok {
				t.Fatalf("%q on %q: MatchString %v, regexp2 %v", expr, in, got, wok)
			}
			if wok {
				m, _ := slow.Match(in)
				if got, want := template.ExpandGroups(fast), template.Expand(m); got != want {
					t.Fatalf("%q on %q: ExpandGroups %q, Expand %q", expr, in, got, want)
				}
				n++
			}
		}
	}
	if n < 1000 {
		t.Errorf("only %d matching cases of %d patterns", n, tpl)
	}
}

// TestMatchGroupsNumbering checks MatchGroups on patterns regexp2 runs:
// PCRE numbering, named groups in place, groups that did not take part.
func TestMatchGroupsNumbering(t *testing.T) {
	tests := []struct {
		re, in string
		want   []string
	}{
		{`(?P<a>x)(y)`, "xy", []string{"xy", "x", "y"}},
		{`(y)(?<a>x)`, "yx", []string{"yx", "y", "x"}},
		{`(z)(z)?(q)?`, "zz", []string{"zz", "z", "z", ""}},
		{`a/(\d+)`, "a/12", []string{"a/12", "12"}},
	}
	for _, tt := range tests {
		re, err := Compile(tt.re, true, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := re.MatchGroups(tt.in, nil)
		if !ok || err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q on %q = %q, %v, %v; want %q", tt.re, tt.in, got, ok, err, tt.want)
		}
	}
	re, _ := Compile(`a/(\d+)`, true, 0)
	if got, ok, err := re.MatchGroups("a/x", nil); ok || err != nil || len(got) != 0 {
		t.Errorf("no match = %q, %v, %v", got, ok, err)
	}
}

// TestSpuriousTimeout checks when a regexp2 timeout is taken for a jump of
// its clock (and the match run again) rather than a slow match.
func TestSpuriousTimeout(t *testing.T) {
	re, err := Compile(`a+b`, true, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tt := range []struct {
		start time.Time
		try   int
		want  bool
	}{
		{now, 0, true},  // fired at once: the clock jumped
		{now, 2, true},  // still within the attempts
		{now, 3, false}, // attempts exhausted
		{now.Add(-60 * time.Millisecond), 0, true},   // fired before the limit: a jump
		{now.Add(-100 * time.Millisecond), 0, false}, // the limit spent: real
	} {
		if got := re.spurious(tt.start, tt.try); got != tt.want {
			t.Errorf("spurious(now-%v, %d) = %v, want %v", now.Sub(tt.start), tt.try, got, tt.want)
		}
	}
}

// TestPrefixFilterAsRegexp2 checks, on random patterns (groups,
// alternations at every depth, classes, quantifiers, inline options,
// comments) and random subjects, that refusing a subject without the
// pattern's literal prefix before running regexp2 decides as regexp2
// alone does.
func TestPrefixFilterAsRegexp2(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	atoms := []string{"a", "b", "/", `\.`, ".", "[ab]", "[|(]", `\(`, `\|`, "(?i)", "(?#(|)", "(?i:a|b)", "|"}
	var gen func(depth int) string
	gen = func(depth int) string {
		var b strings.Builder
		for n := rng.IntN(5); n > 0; n-- {
			switch k := rng.IntN(10); {
			case k < 6:
				b.WriteString(atoms[rng.IntN(len(atoms))])
			case k < 8 && depth < 2:
				b.WriteString("(" + gen(depth+1) + "|" + gen(depth+1) + ")")
			default:
				b.WriteString([]string{"?", "*", "+", ""}[rng.IntN(4)])
			}
		}
		return b.String()
	}
	subjects := []string{"", "a", "b", "ab", "a/b", "a.b", "aab/", "|", "(", "A", "ba/.", "a|b", "a(b"}
	patterns, prefixed := 0, 0
	for range 5000 {
		expr := []string{"a", "ab", "a/", "", "ab/"}[rng.IntN(5)] + gen(0)
		re, err := Compile(expr, true, 0)
		if err != nil {
			continue
		}
		patterns++
		if re.prefix != "" {
			prefixed++
		}
		for _, base := range subjects {
			in := base
			if rng.IntN(2) == 0 {
				in = re.prefix + base
			}
			m, err := re.Match(in)
			want, werr := re.backtracker().FindStringMatch(in)
			if err != nil || werr != nil {
				t.Fatalf("%q on %q: errors %v, %v", expr, in, err, werr)
			}
			if (m != nil) != (want != nil) {
				t.Fatalf("%q (prefix %q) on %q: filtered match %v, regexp2 %v", expr, re.prefix, in, m != nil, want != nil)
			}
		}
	}
	if patterns < 1000 || prefixed < 300 {
		t.Errorf("weak test: %d patterns, %d with a prefix", patterns, prefixed)
	}
}
