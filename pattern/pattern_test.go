package pattern

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dlclark/regexp2"
)

// TestTemplateOcsigen checks the rows of Ocsigen's own global_replace,
// measured against ocsigenserver 5.0.1 with ^(z)(z)?(q)?$ on "zz"
// (LIBRARIES.md section 1.4).
func TestTemplateOcsigen(t *testing.T) {
	re, err := Compile(`(z)(z)?(q)?`, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := re.Match("zz")
	if err != nil || m == nil {
		t.Fatalf("Match = %v, %v", m, err)
	}
	tests := []struct{ tpl, want string }{
		{`\1`, "z"},
		{`\0`, "zz"},
		{`\12`, "z2"},
		{`\3`, ""},
		{`\\1`, `\1`},
		{`\\`, `\`},
		{`a\b`, "ab"},
		{`\$`, "$"},
		{`$1`, "$1"},
		{`$$`, "$$"},
		{`\\\1`, `\z`},
		{`x\é`, "xé"},
		{`plain`, "plain"},
		{``, ""},
	}
	for _, tt := range tests {
		tpl, err := ParseTemplate(tt.tpl, re)
		if err != nil {
			t.Errorf("ParseTemplate(%q): %v", tt.tpl, err)
			continue
		}
		if got := tpl.Expand(m); got != tt.want {
			t.Errorf("Expand(%q) = %q, want %q", tt.tpl, got, tt.want)
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	re, err := Compile(`(a)`, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tpl := range []string{`x\`, `\9`, `\2`, `a\1\`} {
		if _, err := ParseTemplate(tpl, re); err == nil {
			t.Errorf("ParseTemplate(%q) succeeded, want an error", tpl)
		}
	}
	if _, err := ParseTemplate(`\1`, nil); err == nil {
		t.Errorf("ParseTemplate(`\\1`, nil) succeeded, want an error (no groups)")
	}
}

func TestAnchoring(t *testing.T) {
	tests := []struct {
		re, in string
		want   bool
	}{
		{`foo|bar`, "foo", true},
		{`foo|bar`, "bar", true},
		{`foo|bar`, "foox", false}, // Ocsigen's ^foo|bar$ would match
		{`foo|bar`, "xbar", false},
		{`a/(.*)`, "a/b/c", true},
		{`a/(.*)`, "xa/b", false},
		{`a$`, "a\n", false}, // "$" only at the very end
		{`\d+`, "٣", false},  // ASCII \d
		{`\w+`, "é", false},  // ASCII \w
		{`(?P<x>a)b`, "ab", true},
	}
	for _, tt := range tests {
		re, err := Compile(tt.re, true, 0)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.re, err)
		}
		got, err := re.MatchString(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("%q on %q = %v, %v; want %v", tt.re, tt.in, got, err, tt.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	// "a)(b" would compile inside ^(?:...)$ and change meaning: refused.
	for _, re := range []string{`a)(b`, `(a`, `[a`, `*`, `a{2,1}`} {
		if _, err := Compile(re, true, 0); err == nil {
			t.Errorf("Compile(%q) succeeded, want an error", re)
		}
	}
}

func TestUnanchoredReplaceAll(t *testing.T) {
	re, err := Compile(`http://backend(:\d+)?/`, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := ParseTemplate(`https://www.example.com/`, re)
	if err != nil {
		t.Fatal(err)
	}
	got, err := re.ReplaceAll("http://backend:8080/a http://backend/b", tpl)
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://www.example.com/a https://www.example.com/b"; got != want {
		t.Errorf("ReplaceAll = %q, want %q", got, want)
	}
}

func TestTimeoutHidesInput(t *testing.T) {
	re, err := Compile(`(a+)+$`, true, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.Repeat("a", 40) + "!secret"
	_, err = re.Match(secret)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Match error = %v, want ErrTimeout", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q echoes the input", err)
	}
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{`\1`, `\\1`, `a\`, `\0\9`, `$1\$`, `http://b/\1?x=\2`, "\\\xff"} {
		f.Add(s, "zz")
	}
	re, err := Compile(`(z)(z)?(q)?`, true, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tpl, in string) {
		tp, err := ParseTemplate(tpl, re)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "template ") {
				t.Fatalf("error %q lacks its prefix", err)
			}
			return
		}
		m, _ := re.Match(in)
		out := tp.Expand(m)
		if !strings.ContainsRune(tpl, '\\') && out != tpl {
			t.Fatalf("template without backslash %q expanded to %q", tpl, out)
		}
	})
}

// TestGroupNumbering checks that \N counts capturing groups from left to
// right, named ones included, as PCRE and Ocsigen do (regexp2 alone puts
// named groups after unnamed ones).
func TestGroupNumbering(t *testing.T) {
	tests := []struct{ re, in, tpl, want string }{
		{`(?P<a>x)(y)`, "xy", `\1-\2`, "x-y"},
		{`(y)(?<a>x)`, "yx", `\1-\2`, "y-x"},
		{`(?'a'x)(?:z)(y)`, "xzy", `\1-\2`, "x-y"},
		{`[(](a)\((b)(?#c(d)(?=c)`, "(a(bc", `\1\2`, "ab"},
		{`(?<=^)(a)(?P<n>b)\k<n>`, "abb", `\2\1`, "ba"},
		{`[^]()](x)`, "ax", `\1`, "x"},
	}
	for _, tt := range tests {
		re, err := Compile(tt.re, false, 0)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.re, err)
		}
		tpl, err := ParseTemplate(tt.tpl, re)
		if err != nil {
			t.Fatalf("ParseTemplate(%q) for %q: %v", tt.tpl, tt.re, err)
		}
		m, err := re.Match(tt.in)
		if err != nil || m == nil {
			t.Fatalf("%q on %q: %v, %v", tt.re, tt.in, m, err)
		}
		if got := tpl.Expand(m); got != tt.want {
			t.Errorf("%q on %q: %s = %q, want %q", tt.re, tt.in, tt.tpl, got, tt.want)
		}
	}
}

func TestLiteralPrefix(t *testing.T) {
	tests := []struct{ re, want string }{
		{`app/(.*)`, "app/"},
		{`app\.js`, "app.js"},
		{`a\/b/c`, "a/b/c"},
		{`abc?d`, "ab"},
		{`abc*`, "ab"},
		{`abc{2}`, "ab"},
		{`abc+d`, "abc"},
		{`foo|bar`, ""},
		{`svc12/(v1|v2)/(.*)`, "svc12/"},
		{`ab(c|d)|e`, ""},
		{`ab(c)|e`, ""},
		{`ab[|(]|e`, ""},
		{`ab[(](c|d)`, "ab"},
		{`ab\(|e`, ""},
		{`ab(?#(x)|e`, ""},
		{`ab(?#x|y)e`, "a"},
		{`ab\.(?#c)*`, "ab"},
		{`ab(?x)(c|d)`, ""},
		{`ab(?x:#(
)|e)`, ""},
		{`ab(?i:c|d)`, "a"},
		{`(?i)abc`, ""},
		{`\dabc`, ""},
		{`ab\d`, "ab"},
		{`ab[c]`, "ab"},
		{`http://www\.example\.com/(.*)`, "http://www.example.com/"},
		{`é`, ""},
		{`a b`, "a"},
		{`ab\`, "ab"},
		{`^ab`, ""},
	}
	for _, tt := range tests {
		if got := literalPrefix(tt.re); got != tt.want {
			t.Errorf("literalPrefix(%q) = %q, want %q", tt.re, got, tt.want)
		}
	}
}

// FuzzLiteralPrefix checks the prefix promise: whatever the anchored
// pattern matches starts with its literal prefix.
func FuzzLiteralPrefix(f *testing.F) {
	for _, s := range []string{"app/(.*)", "ab?c", `a\.b`, "x{2}y", "ab+", "a(b)c"} {
		f.Add(s, "abc")
	}
	f.Fuzz(func(t *testing.T, expr, in string) {
		re, err := Compile(expr, true, time.Second)
		if err != nil {
			return
		}
		ok, err := re.MatchString(in)
		if err != nil || !ok {
			return
		}
		if p := re.LiteralPrefix(); !strings.HasPrefix(in, p) {
			t.Fatalf("%q matches %q, which lacks the literal prefix %q", expr, in, p)
		}
	})
}

// TestReplaceAllNeedle checks that refusing a string without the
// pattern's literal prefix changes nothing.
func TestReplaceAllNeedle(t *testing.T) {
	patterns := []string{`http://10\.1\.0\.6:8000/(.*)`, `abc`, `a?bc`, `ab*c`, `a{2}b`, `(a|b)c`, `a|bc`, `\.example\.org`, `ab(?i)c`,
		`a(?#x)*b`, `ab\w`, `^ab`, `ab$`, `(?i)ab`, `a\ b`, `[ab]c`, `x+y`, `domain=old\.example`, `a.b`, `(?x) a b`, `ab(?=c)`, ``}
	inputs := []string{"", "a", "ab", "abc", "aab", "bc", "ABC", "abC", "zzabczz", "ac", "xxy", "a b", "aXb",
		"http://10.1.0.6:8000/users/42", "see http://10.1.0.6:8000/", "path=/; domain=old.example", "db.example.org", "é abc \xff"}
	for _, expr := range patterns {
		re, err := Compile(expr, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		tpl, err := ParseTemplate("<\\0>", re)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range inputs {
			want, err := re.backtracker().ReplaceFunc(in, func(m regexp2.Match) string { return tpl.Expand(&m) }, -1, -1)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := re.ReplaceAll(in, tpl); err != nil || got != want {
				t.Errorf("%q.ReplaceAll(%q) = %q, %v, want %q", expr, in, got, err, want)
			}
		}
	}
}
