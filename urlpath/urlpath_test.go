package urlpath

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

var normalizeCases = []struct {
	in, want string
	err      error
}{
	// Already normal: returned unchanged.
	{"/", "/", nil},
	{"/a", "/a", nil},
	{"/a/b/", "/a/b/", nil},
	{"/a/b/c.html", "/a/b/c.html", nil},
	{"/.well-known/acme", "/.well-known/acme", nil},
	{"/a/.b/..c/c../...", "/a/.b/..c/c../...", nil},
	{"/a;b=c/d;e", "/a;b=c/d;e", nil},
	{"/!$&'()*+,;=:@-._~", "/!$&'()*+,;=:@-._~", nil},
	{"/my%20file", "/my%20file", nil},
	{"/a%2Fb", "/a%2Fb", nil},
	{"/%C3%A9t%C3%A9", "/%C3%A9t%C3%A9", nil},

	// Errors.
	{"", "", ErrEmpty},
	{"*", "", ErrNotAbsolute},
	{"a/b", "", ErrNotAbsolute},
	{"http://h/a", "", ErrNotAbsolute},
	{"/%", "", ErrBadEscape},
	{"/a%", "", ErrBadEscape},
	{"/%4", "", ErrBadEscape},
	{"/%4/", "", ErrBadEscape},
	{"/%G1", "", ErrBadEscape},
	{"/%1G", "", ErrBadEscape},
	{"/%%41", "", ErrBadEscape},
	{"/%-1", "", ErrBadEscape},
	{"/% 1", "", ErrBadEscape},
	{"/a/../%zz", "", ErrBadEscape},
	{"/\x00", "", ErrNUL},
	{"/a\x00b", "", ErrNUL},
	{"/%00", "", ErrNUL},
	{"/a%00.html", "", ErrNUL},
	{"/..", "", ErrAboveRoot},
	{"/../", "", ErrAboveRoot},
	{"/../a", "", ErrAboveRoot},
	{"/./..", "", ErrAboveRoot},
	{"/a/../..", "", ErrAboveRoot},
	{"/a/../../b", "", ErrAboveRoot},
	{"/a/b/../../../c", "", ErrAboveRoot},
	{"/%2e%2e", "", ErrAboveRoot},
	{"/%2e%2e/", "", ErrAboveRoot},
	{"/%2E%2E/etc/passwd", "", ErrAboveRoot},
	{"/.%2e/", "", ErrAboveRoot},
	{"/%2e./", "", ErrAboveRoot},
	{"//../a", "", ErrAboveRoot},
	{"/a//../../b", "", ErrAboveRoot},

	// Unreserved characters decoded, mixed-case hex.
	{"/%61dmin", "/admin", nil},
	{"/%41%42%43", "/ABC", nil},
	{"/%7e%7E%2d%2D%5f%5F%2e%2Ex", "/~~--__..x", nil},
	{"/%30%39%7A%7a", "/09zz", nil},

	// Other escapes kept, hex upper-cased.
	{"/a%2fb", "/a%2Fb", nil},
	{"/a%2Fb", "/a%2Fb", nil},
	{"/%c3%a9", "/%C3%A9", nil},
	{"/%3b%3B", "/%3B%3B", nil},
	{"/%25", "/%25", nil},
	{"/%252e", "/%252e", nil},
	{"/%252E%252E/x", "/%252E%252E/x", nil},
	{"/%25%32%65", "/%252e", nil},
	{"/%5c", "/%5C", nil},
	{"/%3f%23", "/%3F%23", nil},
	{"/%20", "/%20", nil},
	{"/%ff%Fe", "/%FF%FE", nil},

	// Bytes not allowed raw are encoded.
	{"/a b", "/a%20b", nil},
	{"/a\\b", "/a%5Cb", nil},
	{"/..\\..\\etc", "/..%5C..%5Cetc", nil},
	{"/a\\..\\b", "/a%5C..%5Cb", nil},
	{"/\"<>^`{|}", "/%22%3C%3E%5E%60%7B%7C%7D", nil},
	{"/[x]#y?z", "/%5Bx%5D%23y%3Fz", nil},
	{"/\t\r\n\x7f\x01", "/%09%0D%0A%7F%01", nil},
	{"/été", "/%C3%A9t%C3%A9", nil},
	{"/\xff", "/%FF", nil},

	// Dot-segments.
	{"/.", "/", nil},
	{"/./", "/", nil},
	{"/./a", "/a", nil},
	{"/a/.", "/a/", nil},
	{"/a/./", "/a/", nil},
	{"/a/./b", "/a/b", nil},
	{"/a/..", "/", nil},
	{"/a/../", "/", nil},
	{"/a/b/.", "/a/b/", nil},
	{"/a/b/..", "/a/", nil},
	{"/a/b/../", "/a/", nil},
	{"/a/b/../c", "/a/c", nil},
	{"/a/b/c/./../../g", "/a/g", nil},
	{"/mid/content=5/../6", "/mid/6", nil},
	{"/a/./b/./c/.", "/a/b/c/", nil},
	{"/a/../b/../c/../d", "/d", nil},
	{"/a/b/../../c", "/c", nil},
	{"/a/%2E%2E/b", "/b", nil},
	{"/a/%2e%2e/b", "/b", nil},
	{"/a/%2e%2E/b", "/b", nil},
	{"/a/.%2E/b", "/b", nil},
	{"/a/%2e./b", "/b", nil},
	{"/a/%2e/b", "/a/b", nil},
	{"/a/%2E", "/a/", nil},
	{"/admin/%2e%2e/public", "/public", nil},
	{"/public/%2e%2e/admin", "/admin", nil},
	{"/a/..%2F..", "/a/..%2F..", nil},
	{"/a/..%2f../b", "/a/..%2F../b", nil},
	{"/a/%2e%2e%2f", "/a/..%2F", nil},
	{"/a/..;/b", "/a/..;/b", nil},
	{"/a/.;x/b", "/a/.;x/b", nil},
	{"/a/...", "/a/...", nil},
	{"/a/%2e%2e%2e", "/a/...", nil},
	{"/a/.%20", "/a/.%20", nil},

	// Slashes merged, trailing slash kept.
	{"//", "/", nil},
	{"///", "/", nil},
	{"//admin", "/admin", nil},
	{"//admin//", "/admin/", nil},
	{"/a//b", "/a/b", nil},
	{"/a///b////", "/a/b/", nil},
	{"/a//../b", "/b", nil},
	{"/a/.//b", "/a/b", nil},
	{"/a/..//", "/", nil},
	{"/a%2F%2Fb", "/a%2F%2Fb", nil},

	// Several tricks at once.
	{"//%61dmin/./x/..//y%2f", "/admin/y%2F", nil},
	{"/static/..%2f..%2fadmin", "/static/..%2F..%2Fadmin", nil},
	{"/static/%2e%2e/%2e%2e/admin", "", ErrAboveRoot},
	{"/x/static/%2e%2e/%2e%2e/admin", "/admin", nil},
}

func TestNormalize(t *testing.T) {
	for _, c := range normalizeCases {
		got, err := Normalize(c.in)
		if c.err != nil {
			if !errors.Is(err, c.err) || got != "" {
				t.Errorf("Normalize(%q) = %q, %v; want error %v", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", c.in, got, err, c.want)
			continue
		}
		if again, err := Normalize(got); err != nil || again != got {
			t.Errorf("Normalize(Normalize(%q)) = %q, %v; want %q", c.in, again, err, got)
		}
		if msg := checkCanonical(got); msg != "" {
			t.Errorf("Normalize(%q) = %q: %s", c.in, got, msg)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	for _, err := range []error{ErrEmpty, ErrNotAbsolute, ErrBadEscape, ErrNUL, ErrAboveRoot} {
		msg := err.Error()
		if !strings.HasPrefix(msg, "urlpath: ") || msg != strings.ToLower(msg) {
			t.Errorf("error message %q: want lower case with prefix %q", msg, "urlpath: ")
		}
	}
}

// TestUnchangedIsSame checks that a normal input comes back as the very
// same string (same backing array), not a copy.
func TestUnchangedIsSame(t *testing.T) {
	for _, p := range []string{"/", "/a/b/", "/my%20file/x%2Fy", "/a;b/c"} {
		got, err := Normalize(p)
		if err != nil || got != p || unsafe.StringData(got) != unsafe.StringData(p) {
			t.Errorf("Normalize(%q) = %q, %v: not the input string itself", p, got, err)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	for _, p := range []string{
		"/",
		"/index.html",
		"/app/static/css/site.min.css",
		"/api/v1/users/42;jsessionid=x/",
		"/files/my%20document%2Fv2.pdf",
		"/a%2fb", // slow path, short: stack buffer, result differs -> 1 alloc
	} {
		allocs := testing.AllocsPerRun(100, func() { _, _ = Normalize(p) })
		want := 0.0
		if p == "/a%2fb" {
			want = 1
		}
		if allocs != want {
			t.Errorf("Normalize(%q): %v allocations, want %v", p, allocs, want)
		}
	}
}

func TestSegments(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"/", []string{""}},
		{"/a", []string{"a"}},
		{"/a/b/", []string{"a", "b", ""}},
		{"/a%2Fb/c", []string{"a/b", "c"}},
		{"/my%20file", []string{"my file"}},
		{"/%C3%A9", []string{"é"}},
		{"/%252E", []string{"%2E"}},
		{"/a%", []string{"a%"}},
		{"/a%G1", []string{"a%G1"}},
		{"a/b", []string{"a", "b"}},
	} {
		if got := Segments(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Segments(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// checkCanonical returns "" when p has every property Normalize promises,
// or what is wrong with it.
func checkCanonical(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "does not begin with /"
	}
	if strings.Contains(p, "//") {
		return "contains //"
	}
	for i, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return "dot-segment"
		}
		if seg == "" && i != strings.Count(p[1:], "/") {
			return "empty segment"
		}
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
		case c == '%':
			if i+2 >= len(p) || !strings.ContainsRune(upperHex, rune(p[i+1])) ||
				!strings.ContainsRune(upperHex, rune(p[i+2])) {
				return "malformed or lower-case percent-encoding"
			}
			b, _ := unhex(p[i+1])
			l, _ := unhex(p[i+2])
			if b = b<<4 | l; b == 0 || unreserved[b] {
				return "encoded NUL or unreserved character"
			}
			i += 2
		case !rawOK[c]:
			return "byte not allowed raw"
		}
	}
	if !isNormal(p) {
		return "isNormal disagrees"
	}
	return ""
}

// reference resolves rawPath the slow, obvious way, on decoded segments:
// split on runs of "/", decode each segment fully, remove dot-segments.
// It returns what Segments should give for the normalised path.
func reference(rawPath string) ([]string, error) {
	if rawPath == "" {
		return nil, ErrEmpty
	}
	if rawPath[0] != '/' {
		return nil, ErrNotAbsolute
	}
	parts := strings.Split(rawPath[1:], "/")
	var segs []string
	slash := false
	for i, part := range parts {
		if part == "" {
			slash = i == len(parts)-1 || slash
			continue
		}
		slash = false
		var dec []byte
		for j := 0; j < len(part); j++ {
			c := part[j]
			if c == '%' {
				if j+2 >= len(part) {
					return nil, ErrBadEscape
				}
				h, ok1 := unhex(part[j+1])
				l, ok2 := unhex(part[j+2])
				if !ok1 || !ok2 {
					return nil, ErrBadEscape
				}
				c = h<<4 | l
				j += 2
			}
			if c == 0 {
				return nil, ErrNUL
			}
			dec = append(dec, c)
		}
		switch string(dec) {
		case ".":
			slash = true
		case "..":
			if len(segs) == 0 {
				return nil, ErrAboveRoot
			}
			segs = segs[:len(segs)-1]
			slash = true
		default:
			segs = append(segs, string(dec))
		}
	}
	if slash || len(segs) == 0 {
		segs = append(segs, "")
	}
	return segs, nil
}

func TestReference(t *testing.T) {
	for _, c := range normalizeCases {
		checkAgainstReference(t, c.in)
	}
}

func checkAgainstReference(t *testing.T, in string) {
	t.Helper()
	got, err := Normalize(in)
	want, werr := reference(in)
	if werr != nil {
		if !errors.Is(err, werr) {
			t.Fatalf("Normalize(%q) = %q, %v; reference error %v", in, got, err, werr)
		}
		return
	}
	if err != nil {
		t.Fatalf("Normalize(%q) error %v; reference %q", in, err, want)
	}
	if segs := Segments(got); !reflect.DeepEqual(segs, want) {
		t.Fatalf("Segments(Normalize(%q)) = Segments(%q) = %q; reference %q", in, got, segs, want)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, c := range normalizeCases {
		f.Add(c.in)
	}
	for _, s := range []string{
		"/%2e%2e/", "/.%2e/", "/a/%2E%2E/b", "/a/..%2F..", "/%252e", "/A/%2e%2E/%2E./b",
		"/a;x=1/..;/b", "//a//..//..//", "/\\..\\", "/%5c..%5C", "/%c0%ae%c0%ae/",
		"/%u002e%u002e/", "/%%32%65", "/.../....//", "/a/b/c/../../../", "/\x80/\xc0\xae",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := Normalize(in)
		checkAgainstReference(t, in)
		if err != nil {
			if got != "" {
				t.Fatalf("Normalize(%q) = %q with error %v", in, got, err)
			}
			if !strings.HasPrefix(err.Error(), "urlpath: ") {
				t.Fatalf("error %q lacks prefix", err)
			}
			return
		}
		if msg := checkCanonical(got); msg != "" {
			t.Fatalf("Normalize(%q) = %q: %s", in, got, msg)
		}
		again, err := Normalize(got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: Normalize(%q) = %q, Normalize(%q) = %q, %v", in, got, got, again, err)
		}
		if isNormal(in) != (got == in) {
			t.Fatalf("Normalize(%q) = %q but isNormal = %v", in, got, isNormal(in))
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"normal", "/app/static/css/site.min.css"},
		{"normal-escaped", "/files/my%20document%2Fv2.pdf"},
		{"lower-hex", "/files/my%20document%2fv2.pdf"},
		{"dots", "/app/static/../css/./site.min.css"},
		{"encoded-dots", "/app/static/%2e%2e/%2E%2E/app/css/site.min.css"},
		{"slashes", "//app//static///css/site.min.css"},
		{"long", "/" + strings.Repeat("segment/", 60) + "..%2f.."},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Normalize(bc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
