package pattern

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLinearSyntax(t *testing.T) {
	for _, expr := range []string{`(a+)+b`, `(.*)/(\d+)`, `(?P<x>a|b)c`, `(?<y>a)`, `(?i)abc`, `(?i:a)b`, `[a-z]\.html`, `a{2,3}`, `\x41\s\w\b`, `[\w-]+`, `[-\w.]+`, `[^\w-]`, `[a-z\d]`, `a$`, `^a`, `a*?b+?c??`} {
		if !linearSyntax(expr) {
			t.Errorf("linearSyntax(%q) = false, want true", expr)
		}
	}
	for _, expr := range []string{`(a)\1`, `(?=a)`, `(?!a)`, `(?<=a)b`, `(?<!a)b`, `(?>a)`, `(?#c)a`, `(?s)a`, `(?m)a$`, `\Qa\E`, `\Z`, `\G`, `[[:alpha:]]`, `[a-z-[aeiou]]`, `a{,2}`, `\k<x>`, `é`, `\u0041`, `a\`, `0{01}`, `a{1,02}`, `a{00}`, `(?P<1>a)(b)`, `(a)(?<2>b)`, `(a)\<1>`, `(a)\'1'`, `(?i)(\x{17F})`, `(?i)([^\W_]+)\.html`, `\PP|\PC`, `\pL`, `[ -\-]`, `[\--0]`, `[a-\d]`} {
		if linearSyntax(expr) {
			t.Errorf("linearSyntax(%q) = true, want false", expr)
		}
	}
	// The pathological pattern of the ReDoS test is linear and answers
	// at once.
	re, err := Compile(`(a+)+b`, true, time.Millisecond)
	if err != nil || re.linear == nil {
		t.Fatalf("Compile: %v, linear %v", err, re.linear != nil)
	}
	if ok, err := re.MatchString(strings.Repeat("a", 5000) + "c"); ok || err != nil {
		t.Errorf("MatchString = %v, %v; want false, nil", ok, err)
	}
}

// regexp2Groups is MatchGroups by regexp2 alone.
func regexp2Groups(r *Regexp, s string) ([]string, bool, error) {
	m, err := r.Match(s)
	if err != nil || m == nil {
		return nil, false, err
	}
	var out []string
	for _, n := range r.groups {
		v := ""
		if g := m.GroupByNumber(n); n >= 0 && g != nil && len(g.Captures) > 0 {
			v = g.String()
		}
		out = append(out, v)
	}
	return out, true, nil
}

// TestLinearAsRegexp2 checks on random patterns and subjects that the
// linear engine decides and groups exactly as regexp2 does.
func TestLinearAsRegexp2(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	atoms := []string{"a", "b", "/", `\.`, ".", `\d`, `\w`, "[ab]", "[^a]", "[a-c/]", "1", "-", `\/`, "A", `\b`, `\B`, "^", "$", `\s`, `\W`, "_"}
	quants := []string{"", "", "", "*", "+", "?", "{1,2}", "{2}", "*?", "+?", "??"}
	var gen func(depth int) string
	gen = func(depth int) string {
		var b strings.Builder
		for n := 1 + rng.IntN(3); n > 0; n-- {
			switch k := rng.IntN(10); {
			case k < 6 || depth > 2:
				b.WriteString(atoms[rng.IntN(len(atoms))])
			case k < 8:
				open := []string{"(", "(?:", "(?P<n" + string(rune('a'+depth)) + string(rune('a'+n)) + ">"}[rng.IntN(3)]
				b.WriteString(open + gen(depth+1))
				if rng.IntN(3) == 0 {
					b.WriteString("|" + gen(depth+1))
				}
				b.WriteString(")")
			default:
				b.WriteString(gen(depth+1) + "|" + gen(depth+1))
			}
			b.WriteString(quants[rng.IntN(len(quants))])
		}
		return b.String()
	}
	alphabet := []string{"a", "b", "A", "/", "1", ".", "-", "c", " ", "_"}
	compared, linear, alike := 0, 0, 0
	for range 4000 {
		expr := gen(0)
		if rng.IntN(8) == 0 {
			expr = "(?i)" + expr
		}
		re, err := Compile(expr, true, time.Second)
		if err != nil || re.linear == nil {
			continue
		}
		linear++
		if re.linearGroups {
			alike++
		}
		for range 30 {
			var sb strings.Builder
			for n := rng.IntN(8); n > 0; n-- {
				sb.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			s := sb.String()
			got, ok, err := re.MatchGroups(s, nil)
			want, wok, werr := regexp2Groups(re, s)
			if werr != nil {
				// regexp2 itself backtracks past the limit (random
				// patterns can): the linear engine must then have
				// refused the subject, or met the same timeout.
				if ok {
					t.Fatalf("%q on %q: regexp2 %v, linear matched", expr, s, werr)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%q on %q: error %v", expr, s, err)
			}
			if ok != wok || ok && !reflect.DeepEqual(got, want) {
				t.Fatalf("%q on %q: linear %v %q, regexp2 %v %q", expr, s, ok, got, wok, want)
			}
			if m, _ := re.MatchString(s); m != wok {
				t.Fatalf("%q on %q: MatchString %v, regexp2 %v", expr, s, m, wok)
			}
			compared++
		}
	}
	t.Logf("%d linear patterns (%d grouped by Go's regexp), %d subjects compared", linear, alike, compared)
	if linear < 500 || alike < 300 {
		t.Errorf("only %d random patterns were linear, %d grouped by Go's regexp", linear, alike)
	}
}

func TestGroupsAlike(t *testing.T) {
	for _, c := range []struct {
		expr  string
		alike bool
	}{
		{`(.*)\.html`, true},
		{`svc1/(v1|v2)/(.*)`, true},
		{`([^/]+)/(\d+)\.html`, true},
		{`((?:[^/]+/)*)(.*)`, true},
		{`(?:ab)+/([^/]*)`, true},
		{`(/.*)?`, false},
		{`(a+)+b`, false},
		{`(?:(a|B+)+){2}`, false},
		{`(?:([^/]+/?)+){2}`, false},
		{`(?:ab)*(c*?)`, true},
		{`a{2,3}(b{0,2}c)`, true},
		{`(a?)+`, false},
		{`(a*)*`, false},
		{`(a|)+`, false},
		{`(a*)?`, false},
		{`(?:\b)*(a)`, false},
		{`((?:x|y*)){2}`, false},
		{`(?:a?b?){1,3}(c)`, false},
	} {
		re, err := Compile(c.expr, true, time.Second)
		if err != nil || re.linear == nil {
			t.Fatalf("Compile(%q): %v, linear %v", c.expr, err, re != nil && re.linear != nil)
		}
		if re.linearGroups != c.alike {
			t.Errorf("%q: groups by Go's regexp %v, want %v", c.expr, re.linearGroups, c.alike)
		}
	}
}

// FuzzLinearGroups checks that a pattern decided in linear time matches
// and groups a subject as regexp2 does.
func FuzzLinearGroups(f *testing.F) {
	for _, c := range [][2]string{
		{`svc1/(v1|v2)/(.*)`, "svc1/v2/a/b"},
		{`([^/]+)/(\d+)\.html`, "news/42.html"},
		{`(a|ab)(c|bcd)(d*)`, "abcd"},
		{`(a?)+`, "a"},
		{`(?i)(?P<x>a+?)(a*)`, "AaA"},
		{`(?i)([^\W_]+)\.html`, "index.html"},
		{`(?P<1>a)(b)`, "ab"},
		{`(a)\'1'`, "a'1'"},
		{`(?:([^/]+/?)+){2}`, "aaa/aa"},
		{`p/(?:(a|B+)+){2}`, "p/aBB"},
		{`00{00}`, "0"},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, expr, s string) {
		if len(expr) > 64 || len(s) > 64 || !linearSubject(s) {
			return
		}
		re, err := Compile(expr, true, 50*time.Millisecond)
		if err != nil || re.linear == nil {
			return
		}
		want, wok, werr := regexp2Groups(re, s)
		if werr != nil {
			return // regexp2 backtracked past its limit
		}
		got, ok, err := re.MatchGroups(s, nil)
		if err != nil || ok != wok || ok && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q on %q: linear (groups %v) %v %q %v, regexp2 %v %q", expr, s, re.linearGroups, ok, got, err, wok, want)
		}
	})
}

// TestBacktrackerOnFirstNeed checks that a pattern Go's regexp matches
// and groups keeps no regexp2 form until a subject needs one, and that
// the one compiled then, by concurrent matches, matches as the eager one.
func TestBacktrackerOnFirstNeed(t *testing.T) {
	for _, c := range []struct {
		expr string
		lazy bool
	}{
		{`svc1/(v1|v2)/(.*)`, true},
		{`app/(.*)`, true},     // simple
		{`(a?)+(b)`, false},    // groups chosen differently
		{`(a)\1`, false},       // back-reference
		{`x/(?=y)(.*)`, false}, // lookahead
	} {
		re, err := Compile(c.expr, true, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := re.re.Load() == nil; got != c.lazy {
			t.Errorf("%q: regexp2 form left for later %v, want %v", c.expr, got, c.lazy)
		}
	}
	re, err := Compile(`svc1/(v1|v2)/(.*)`, true, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if groups, ok, err := re.MatchGroups("svc1/v2/item", nil); !ok || err != nil || !reflect.DeepEqual(groups, []string{"svc1/v2/item", "v2", "item"}) {
		t.Fatalf("ASCII subject: %q %v %v", groups, ok, err)
	}
	if re.re.Load() != nil {
		t.Fatal("an ASCII subject compiled the regexp2 form")
	}
	done := make(chan []string)
	for range 4 {
		go func() {
			groups, ok, err := re.MatchGroups("svc1/v1/café\x01", nil)
			if !ok || err != nil {
				groups = nil
			}
			done <- groups
		}()
	}
	for range 4 {
		if groups := <-done; !reflect.DeepEqual(groups, []string{"svc1/v1/café\x01", "v1", "café\x01"}) {
			t.Errorf("non-ASCII subject: %q", groups)
		}
	}
	if re.re.Load() == nil || re.re.Load().MatchTimeout != time.Second {
		t.Errorf("regexp2 form after a non-ASCII subject: %v", re.re.Load())
	}
}

// BenchmarkMatchGroups measures a rule's match with its groups by Go's
// regexp and by regexp2 alone.
func BenchmarkMatchGroups(b *testing.B) {
	re, err := Compile(`svc1/(v1|v2)/(.*)`, true, 0)
	if err != nil || !re.linearGroups {
		b.Fatalf("Compile: %v, grouped by Go's regexp %v", err, re != nil && re.linearGroups)
	}
	slow := &Regexp{compiled: re.compiled, source: re.source, timeout: re.timeout, groups: re.groups, prefix: re.prefix}
	for _, c := range []struct {
		name string
		re   *Regexp
	}{{"go", re}, {"regexp2", slow}} {
		b.Run(c.name, func(b *testing.B) {
			var dst []string
			b.ReportAllocs()
			for b.Loop() {
				var ok bool
				dst, ok, _ = c.re.MatchGroups("svc1/v2/item/42", dst[:0])
				if !ok || dst[2] != "item/42" {
					b.Fatalf("groups %q", dst)
				}
			}
		})
	}
}
