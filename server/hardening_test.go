package server

import "testing"

func TestValidHost(t *testing.T) {
	for _, h := range []string{"h", "h:80", "h:", "Example.COM", "127.0.0.1:8080", "[::1]", "[::1]:80", "[2001:db8::1]:443", "a-b_c~d", "xn--bcher-kva.example", "h%41"} {
		if !validHost(h) {
			t.Errorf("validHost(%q) = false, want true", h)
		}
	}
	for _, h := range []string{"h:80:80", "h:8o", "[::1", "::1", "[::1]x", "[127.0.0.1]", "[fe80::1%25eth0]", "h h", "h/x", "user@h", "h\x00", "h:123456", "h%4", "h\\x", "h#"} {
		if validHost(h) {
			t.Errorf("validHost(%q) = true, want false", h)
		}
	}
}
