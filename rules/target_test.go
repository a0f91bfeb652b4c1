package rules

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/forward"
	"github.com/ocsiproxy/ocsiproxy/pattern"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		dest, want string // want is Target.URL(), or "" for an error
		host       string
	}{
		{"http://b:8080/x/y", "http://b:8080/x/y", "b:8080"},
		{"http://b", "http://b/", "b"},
		{"HTTP://B:80", "http://B:80/", "B:80"},
		{"https://api.example/v1?a=b&c", "https://api.example/v1?a=b&c", "api.example"},
		{"http://b/x?", "http://b/x?", "b"},
		{"http://b?q=1", "http://b/?q=1", "b"},
		{"http://b/a?x?y", "http://b/a?x?y", "b"},
		{"http://[::1]:8080/p", "http://[::1]:8080/p", "[::1]:8080"},
		{"http://[::1]/p", "http://[::1]/p", "[::1]"},
		{"http://b/a b", "http://b/a%20b", "b"},
		{"http://b/é", "http://b/%C3%A9", "b"},
		{"http://b/100%", "http://b/100%25", "b"},
		{"http://b/%41", "http://b/%41", "b"},
		{"ftp://b/", "", ""},
		{"b:8080/x", "", ""},
		{"http:///x", "", ""},
		{"http://b:0/", "", ""},
		{"http://b:70000/", "", ""},
		{"http://b:x/", "", ""},
		{"http://b:+80/", "", ""},
		{"http://user@b/", "", ""},
		{"http://[::1/", "", ""},
		{"http://[zz]/", "", ""},
		{"http://b c/", "", ""},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.dest)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseTarget(%q) = %q, want an error", tt.dest, got.URL())
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", tt.dest, err)
			continue
		}
		if got.URL() != tt.want || got.Host != tt.host {
			t.Errorf("ParseTarget(%q) = %q host %q, want %q host %q", tt.dest, got.URL(), got.Host, tt.want, tt.host)
		}
		checkURI(t, tt.dest, got)
	}
	// URI is set when the destination needed no escaping and had a path.
	for dest, want := range map[string]string{"http://b/x?y": "/x?y", "http://b/x": "/x", "http://b": "", "http://b?q": "", "http://b/a b": ""} {
		if got, _ := ParseTarget(dest); got.URI != want {
			t.Errorf("ParseTarget(%q).URI = %q, want %q", dest, got.URI, want)
		}
	}
}

// checkURI checks that a target's URI, when set, is its path and query.
func checkURI(t *testing.T, dest string, got *forward.Target) {
	t.Helper()
	want := got.Path
	if got.HasQuery {
		want += "?" + got.RawQuery
	}
	if got.URI != "" && got.URI != want {
		t.Errorf("%q: URI %q, want %q", dest, got.URI, want)
	}
}

// TestTargetParser checks that parsing only what follows a literal
// scheme and host gives ParseTarget's result, on random templates and
// group values.
func TestTargetParser(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	heads := []string{"http://b:8080/", "HTTPS://api.example", "http://[::1]:81?", "http://b", "http://b/x/", "http://", "", "http://b:8080/a?x=", "ftp://b/"}
	bits := []string{"/", "?", ":", "@", " ", "%", "%2F", "a", "é", "#", "b:90"}
	re, err := pattern.Compile(`(.*)\|(.*)`, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	prefixed := 0
	for range 3000 {
		tpl := heads[rng.IntN(len(heads))]
		for n := rng.IntN(3); n > 0; n-- {
			tpl += []string{`\1`, `\2`, "/p", "?q=", "&"}[rng.IntN(5)]
		}
		tp, err := pattern.ParseTemplate(tpl, re)
		if err != nil {
			t.Fatal(err)
		}
		p := newTargetParser(tp)
		if p.n > 0 || p.fixed != nil {
			prefixed++
		}
		for range 10 {
			var g [2]string
			for i := range g {
				for n := rng.IntN(4); n > 0; n-- {
					g[i] += bits[rng.IntN(len(bits))]
				}
			}
			dest := tp.ExpandGroups([]string{g[0] + "|" + g[1], g[0], g[1]})
			want, werr := ParseTarget(dest)
			got, gerr := p.parse(dest)
			if (werr != nil) != (gerr != nil) {
				t.Fatalf("%q -> %q: ParseTarget error %v, parser error %v", tpl, dest, werr, gerr)
			}
			if werr == nil && got != *want {
				t.Fatalf("%q -> %q: parser %+v, ParseTarget %+v", tpl, dest, got, *want)
			}
			if werr == nil {
				checkURI(t, dest, &got)
			}
		}
	}
	if prefixed < 1000 {
		t.Errorf("weak test: %d templates with a literal scheme and host", prefixed)
	}
}

func TestEscapeTarget(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/a/b?c=d&e", "/a/b?c=d&e"},
		{"/-._~!$&'()*+,;=:@/?", "/-._~!$&'()*+,;=:@/?"},
		{"/a%20b", "/a%20b"}, // a well-formed escape stays
		{"/a%2", "/a%252"},   // a broken one is escaped
		{"/a%zz", "/a%25zz"}, // so is one with no hex digits
		{"/a b\"<>\\^`{|}", "/a%20b%22%3C%3E%5C%5E%60%7B%7C%7D"},
		{"/caf\xc3\xa9", "/caf%C3%A9"},  // bytes over 0x7f
		{"/\x00\x1f\x7f", "/%00%1F%7F"}, // controls
		{"", ""},
	}
	for _, tt := range tests {
		if got := EscapeTarget(tt.in); got != tt.want {
			t.Errorf("EscapeTarget(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestTargetChar checks the table against RFC 3986's sets: unreserved,
// sub-delims, ':', '@', '/' and '?' stay; every other byte is escaped.
func TestTargetChar(t *testing.T) {
	const keep = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + "-._~" + "!$&'()*+,;=" + ":@/?"
	for c := 0; c < 256; c++ {
		if want := strings.IndexByte(keep, byte(c)) >= 0; targetChar[c] != want {
			t.Errorf("targetChar[%#x] = %v, want %v", c, targetChar[c], want)
		}
	}
}
