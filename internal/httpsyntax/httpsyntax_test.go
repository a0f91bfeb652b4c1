package httpsyntax

import (
	"bytes"
	"strings"
	"testing"
)

func TestIsToken(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"GET", true}, {"X-Forwarded-For", true}, {"!#$%&'*+-.^_`|~09azAZ", true},
		{"", false}, {"X Y", false}, {"X-Bad ", false}, {"a:b", false}, {"a,b", false},
		{"(x)", false}, {"a\"b", false}, {"a/b", false}, {"caf\u00e9", false}, {"a\tb", false}, {"\x7f", false},
	} {
		if got := IsToken(tt.s); got != tt.want {
			t.Errorf("IsToken(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestHasToken(t *testing.T) {
	for _, tt := range []struct {
		values []string
		token  string
		want   bool
	}{
		{[]string{"close"}, "close", true},
		{[]string{"Keep-Alive, Upgrade"}, "upgrade", true},
		{[]string{"keep-alive", " \tCLOSE\t "}, "close", true},
		{[]string{"closed", "xclose"}, "close", false},
		{[]string{",,", ""}, "close", false},
		{nil, "close", false},
		{[]string{"a, close ,b"}, "close", true},
	} {
		if got := HasToken(tt.values, tt.token); got != tt.want {
			t.Errorf("HasToken(%q, %q) = %v, want %v", tt.values, tt.token, got, tt.want)
		}
	}
}

func TestAppendFieldValue(t *testing.T) {
	tests := []struct{ prefix, v, want string }{
		{"", "plain", "plain"},
		{"X: ", "a\r\nEvil: yes", "X: a  Evil: yes"},
		{"X: ", "\n", "X:  "},
		{"\r\n", "", "\r\n"}, // bytes already in b are left alone
	}
	for _, tt := range tests {
		if got := string(AppendFieldValue([]byte(tt.prefix), tt.v)); got != tt.want {
			t.Errorf("AppendFieldValue(%q, %q) = %q, want %q", tt.prefix, tt.v, got, tt.want)
		}
	}
}

func TestTrailerAllowed(t *testing.T) {
	for _, tt := range []struct {
		key  string
		want bool
	}{
		{"X-Checksum", true}, {"Grpc-Status", true}, {"Grpc-Message", true}, {"Server-Timing", true},
		{"Authentication-Info", true}, {"Digest", true},
		{"Content-Length", false}, {"Transfer-Encoding", false}, {"Host", false}, {"Trailer", false},
		{"Te", false}, {"Connection", false}, {"Keep-Alive", false}, {"Upgrade", false},
		{"Authorization", false}, {"Proxy-Authenticate", false}, {"Set-Cookie", false},
		{"Location", false}, {"Content-Type", false}, {"Content-Encoding", false},
		{"Cache-Control", false}, {"If-None-Match", false}, {"Range", false},
	} {
		if got := TrailerAllowed(tt.key); got != tt.want {
			t.Errorf("TrailerAllowed(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

// FuzzTrimOWS checks TrimOWS against the library trims it replaces, on
// strings and on byte slices.
func FuzzTrimOWS(f *testing.F) {
	for _, s := range []string{"", " ", "\t", " \t a b \t ", "a", "\ta\t", " \r\n x\v", "é \t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := TrimOWS(s), strings.Trim(s, " \t"); got != want {
			t.Fatalf("TrimOWS(%q) = %q, want %q", s, got, want)
		}
		if got, want := TrimOWS([]byte(s)), bytes.Trim([]byte(s), " \t"); !bytes.Equal(got, want) {
			t.Fatalf("TrimOWS([]byte(%q)) = %q, want %q", s, got, want)
		}
	})
}
