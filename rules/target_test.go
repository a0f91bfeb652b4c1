package rules

import "testing"

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
	}
}
