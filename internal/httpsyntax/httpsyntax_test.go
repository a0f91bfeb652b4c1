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

func TestFieldValue(t *testing.T) {
	tests := []struct {
		v            string
		valid, ascii bool
	}{
		{"", true, true},
		{"text/plain; charset=utf-8", true, true},
		{"a\tb", true, true},
		{"0123456\t89abcdef", true, true}, // a tab in a word flagged for the slow path
		{"é", true, false},                // obs-text
		{"0123456789abcdé", true, false},
		{"\x00", false, false},
		{"0123456789abcde\x7f", false, false},
		{"0123456789\r\nEvil", false, false},
		{"01234567\x1f", false, false}, // in the tail after the words
		{"\x1f01234567", false, false},
		{"\x80\x20\x20\x20\x20\x20\x20\x20", true, false},
		{" ~~~~~~~ ~~~~~~~", true, true},
	}
	for _, tt := range tests {
		if got := ValidFieldValue(tt.v); got != tt.valid {
			t.Errorf("ValidFieldValue(%q) = %v, want %v", tt.v, got, tt.valid)
		}
		if got := ValidFieldValue([]byte(tt.v)); got != tt.valid {
			t.Errorf("ValidFieldValue([]byte(%q)) = %v, want %v", tt.v, got, tt.valid)
		}
		if got := ASCIIFieldValue(tt.v); got != tt.ascii {
			t.Errorf("ASCIIFieldValue(%q) = %v, want %v", tt.v, got, tt.ascii)
		}
	}
}

// FuzzFieldValue checks the word-at-a-time checks against their
// definition, one byte at a time.
func FuzzFieldValue(f *testing.F) {
	for _, s := range []string{"", "abc", "a\tb\x7fc", "0123456789abcdef\x00", "\x80\x80\x80\x80\x80\x80\x80\x80\x1f", "\x20\x20\x20\x20\x20\x20\x20\x20\x19"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		valid, ascii := true, true
		for _, c := range []byte(s) {
			if c < ' ' && c != '\t' || c == 0x7f {
				valid = false
			}
			if c >= 0x80 {
				ascii = false
			}
		}
		ascii = ascii && valid
		if got := ValidFieldValue(s); got != valid {
			t.Fatalf("ValidFieldValue(%q) = %v, want %v", s, got, valid)
		}
		if got := ValidFieldValue([]byte(s)); got != valid {
			t.Fatalf("ValidFieldValue([]byte(%q)) = %v, want %v", s, got, valid)
		}
		if got := ASCIIFieldValue(s); got != ascii {
			t.Fatalf("ASCIIFieldValue(%q) = %v, want %v", s, got, ascii)
		}
		b := []byte("X: ")
		want := append(bytes.Clone(b), strings.NewReplacer("\r", " ", "\n", " ").Replace(s)...)
		if got := AppendFieldValue(b, s); !bytes.Equal(got, want) {
			t.Fatalf("AppendFieldValue(%q) = %q, want %q", s, got, want)
		}
	})
}

func BenchmarkFieldValue(b *testing.B) {
	v := "text/html; charset=utf-8, more text of a usual length"
	for b.Loop() {
		if !ValidFieldValue(v) {
			b.Fatal("refused")
		}
	}
}

// FuzzWordChecks checks IsToken, and HasSpaceOrCRLF, which looks at
// eight bytes at a time, against their definitions one byte at a time.
func FuzzWordChecks(f *testing.F) {
	for _, s := range []string{"", "Content-Type", "X-Forwarded-For", "x_y.z~", "GET", "Content-Type:", "ab cdefgh", "abcdefgh\x00", "abcdefg@", "ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789", "\x80abcdefg", "/p?q=1\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		token := s != ""
		space := false
		for _, c := range []byte(s) {
			if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) && !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				token = false
			}
			if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
				space = true
			}
		}
		if got := IsToken(s); got != token {
			t.Fatalf("IsToken(%q) = %v, want %v", s, got, token)
		}
		if got := HasSpaceOrCRLF(s); got != space {
			t.Fatalf("HasSpaceOrCRLF(%q) = %v, want %v", s, got, space)
		}
	})
}

func BenchmarkIsToken(b *testing.B) {
	for b.Loop() {
		if !IsToken("X-Forwarded-For") || !IsToken("Content-Type") {
			b.Fatal("refused")
		}
	}
}

func BenchmarkHasSpaceOrCRLF(b *testing.B) {
	for b.Loop() {
		if HasSpaceOrCRLF("127.0.0.1:18600") || HasSpaceOrCRLF("/some/path/of/a/site?q=1") {
			b.Fatal("found")
		}
	}
}

func BenchmarkSpaceOrCRLF(b *testing.B) {
	for b.Loop() {
		if spaceOrCRLF("127.0.0.1:18600") || spaceOrCRLF("/some/path/of/a/site?q=1") {
			b.Fatal("found")
		}
	}
}
