package engine

import "testing"

// TestGlob checks host name patterns, the usual ones (taken without the
// general walk) and the others, against the general walk's answers.
func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "", true},
		{"*", "a.example", true},
		{"a.example", "a.example", true},
		{"a.example", "b.example", false},
		{"a.example", "", false},
		{"*.example", "a.example", true},
		{"*.example", "example", false},
		{"*.example", ".example", true},
		{"*.example", "a.example.org", false},
		{"a.*", "a.example", true},
		{"a.*", "b.example", false},
		{"*a*", "bab", true},
		{"*a*", "bbb", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxcyyb", false},
		{"**", "x", true},
		{"*.*", "x", false},
	}
	for _, tt := range tests {
		if got := glob(tt.pattern, tt.name); got != tt.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

// FuzzGlob checks that the usual patterns' shortcuts answer as the
// general walk does.
func FuzzGlob(f *testing.F) {
	f.Add("*.example", "a.example")
	f.Add("*", "x")
	f.Add("a", "a")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if got, want := glob(pattern, name), globWalk(pattern, name); got != want {
			t.Fatalf("glob(%q, %q) = %v, the general walk says %v", pattern, name, got, want)
		}
	})
}

func TestHostName(t *testing.T) {
	tests := []struct{ host, name string }{
		{"", ""},
		{"example.com", "example.com"},
		{"Example.COM:8080", "example.com"},
		{"127.0.0.1:18701", "127.0.0.1"},
		{"[::1]:80", "::1"},
		{"[::1]", "::1"},
		{"a:b:c", "a:b:c"}, // too many colons: no port
		{"host:", "host"},
		{"host:x", "host"},
		{"ÉTÉ.example:1", "été.example"},
	}
	for _, tt := range tests {
		if name := hostName(tt.host); name != tt.name {
			t.Errorf("hostName(%q) = %q, want %q", tt.host, name, tt.name)
		}
	}
}

// FuzzHostName checks hostName's look-ups against hostNameFull, the
// split by net.SplitHostPort and strings.ToLower.
func FuzzHostName(f *testing.F) {
	for _, h := range []string{"", "a", "A:1", "[::1]:2", "a:b:c", "x]:1", "Ä:3", ":", "a:99999999999999999999"} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if name, want := hostName(h), hostNameFull(h); name != want {
			t.Fatalf("hostName(%q) = %q; hostNameFull: %q", h, name, want)
		}
	})
}
