package urlpath

import "testing"

func TestAmbiguous(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"/", false},
		{"/admin", false},
		{"/a/b/", false},
		{"/a%2Fb", false},
		{"/files/dir%2F", false},
		{"/a;v=1/b", false},
		{"/a/b;jsessionid=1", false},
		{"/;jsessionid=1", false},
		{"/a%5Cb", false},
		{"/%2Fadmin", true},
		{"/a%2F%2Fb", true},
		{"/x/..%2Fadmin", true},
		{"/x%2F..%2Fadmin", true},
		{"/x%2F.%2Fadmin", true},
		{"/x/..%5Cadmin", true},
		{"/%5Cadmin", true},
		{"/x/..;/admin", true},
		{"/.;/admin", true},
		{"/;x/admin", true},
		{"/x/..;a=b/admin", true},
		{"/proxy/http:%2F%2Fexample.com", true},
	}
	for _, tt := range tests {
		if got := Ambiguous(tt.in); got != tt.want {
			t.Errorf("Ambiguous(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzAmbiguous checks that Ambiguous never panics and that a path it
// accepts has no dot-segment and no inner empty segment however it is
// read.
func FuzzAmbiguous(f *testing.F) {
	for _, s := range []string{"/x/..%2Fadmin", "/a;b/c", "/%5C", "/a%2F", "/..;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := Normalize(in)
		if err != nil {
			return
		}
		if Ambiguous(p) {
			return
		}
		for _, seg := range Segments(p) {
			if seg == "." || seg == ".." {
				t.Fatalf("Normalize(%q) = %q has segment %q", in, p, seg)
			}
		}
	})
}
