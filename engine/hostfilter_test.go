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
