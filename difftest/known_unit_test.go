package difftest

import "testing"

// TestKnownFixes checks the rewriting rows on hand-made outcomes, without
// any server.
func TestKnownFixes(t *testing.T) {
	sc := &scenario{}
	tests := []struct {
		name     string
		row      string
		req      *request
		ocTarget string
		opTarget string
		ocXFF    string
		want     string // target or X-Forwarded-For after the fix
	}{
		{"query", rowQuery, get("/x?a=1"), "/top/x%3Fa=1", "/top/x?a=1", "", "/top/x?a=1"},
		{"query re-encoded", rowQuery, get("/s?q=a+b&x=%2F"), "/s%3Fq=a%20b&x=/", "/s?q=a+b&x=%2F", "", "/s?q=a+b&x=%2F"},
		{"query, %3F in the path", rowQuery, get("/p%3Fq?a=1"), "/p%3Fq%3Fa=1", "/p%3Fq?a=1", "", "/p%3Fq?a=1"},
		{"query, different", rowQuery, get("/x?a=1"), "/top/x%3Fa=1", "/top/x?a=2", "", "/top/x?a=1"},
		{"twice", rowTwice, get("/app/a%20b"), "/in-app/a%2520b", "", "", "/in-app/a%20b"},
		{"xff peer only", rowXFFOwn, get("/"), "/", "", "127.0.0.2, 127.0.0.1", "127.0.0.2"},
		{"xff accepted", rowXFFOwn, get("/"), "/", "", "203.0.113.7, 198.51.100.1, 127.0.0.1", "203.0.113.7, 198.51.100.1, 127.0.0.2"},
		{"xff equal-ip", rowXFFOwn, get("/"), "/", "", "203.0.113.7, 127.0.0.2, 127.0.0.1", "203.0.113.7, 127.0.0.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oc := &outcome{Backend: []*backendReq{{Target: tt.ocTarget}}}
			if tt.ocXFF != "" {
				oc.Backend[0].Fields = []field{{"X-Forwarded-For", tt.ocXFF}}
			}
			var op *outcome
			if tt.opTarget != "" {
				op = &outcome{Backend: []*backendReq{{Target: tt.opTarget}}}
			}
			x := &exchange{sc: sc, req: tt.req, oc: oc, op: op}
			kd := lookupRow(tt.row)
			if !kd.ocsigen(x) {
				t.Fatalf("row %q does not see the bug in %q / %q", tt.row, tt.ocTarget, tt.ocXFF)
			}
			kd.fix(x)
			got := oc.Backend[0].Target
			if tt.ocXFF != "" {
				got, _ = headerValue(oc.Backend[0].Fields, "X-Forwarded-For")
			}
			if got != tt.want {
				t.Errorf("after the fix: %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDiffLines checks the small LCS diff used in failure messages.
func TestDiffLines(t *testing.T) {
	got := diffLines([]string{"a", "b", "c"}, []string{"a", "x", "c"})
	want := "    a\n  + x\n  - b\n    c\n"
	if got != want {
		t.Errorf("diffLines = %q, want %q", got, want)
	}
}

// TestClientRowFix checks the client-address row on hand-made outcomes:
// from an untrusted peer the client's fields go and X-Forwarded-Host
// becomes its Host; from a trusted one they stay; X-Real-IP is the client.
func TestClientRowFix(t *testing.T) {
	forged := []field{{"X-Real-IP", "192.0.2.9"}, {"True-Client-IP", "192.0.2.9"}, {"Forwarded", "for=192.0.2.9"}, {"X-Forwarded-Host", "evil.example"}}
	tests := []struct {
		name, xff string
		want      map[string]string // "" means absent
	}{
		{"untrusted", clientIP, map[string]string{"X-Real-IP": clientIP, "True-Client-IP": "", "Forwarded": "", "X-Forwarded-Host": defaultHost}},
		{"trusted", "203.0.113.7, " + clientIP, map[string]string{"X-Real-IP": "203.0.113.7", "True-Client-IP": "192.0.2.9", "Forwarded": "for=192.0.2.9", "X-Forwarded-Host": "evil.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := append([]field{{"X-Forwarded-For", tt.xff}}, forged...)
			oc := &outcome{Backend: []*backendReq{{Target: "/", Fields: fields}}}
			x := &exchange{sc: &scenario{}, req: get("/"), oc: oc}
			kd := lookupRow(rowClient)
			if !kd.ocsigen(x) {
				t.Fatalf("row does not see the bug")
			}
			kd.fix(x)
			for n, want := range tt.want {
				got, ok := headerValue(oc.Backend[0].Fields, n)
				if (want == "") == ok || got != want {
					t.Errorf("%s = %q (present %v), want %q", n, got, ok, want)
				}
			}
			if kd.ocsigen(x) {
				t.Errorf("the row still sees the bug after its fix")
			}
		})
	}
}

// TestCharsetRowFix checks the charset row on hand-made outcomes: it sees
// Ocsigen's charset-less type only on requests that declare a charset,
// adds the declared one, and no longer sees the bug afterwards.
func TestCharsetRowFix(t *testing.T) {
	kd := lookupRow(rowXCharset)
	tests := []struct {
		name, ctype string
		charset     string // "" means the request declares none
		sees        bool
		want        string
	}{
		{"text without charset", "text/plain", "koi8-r", true, "text/plain; charset=koi8-r"},
		{"already has one", "text/plain; charset=koi8-r", "koi8-r", false, "text/plain; charset=koi8-r"},
		{"request declares none", "text/plain", "", false, "text/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := get("/page.txt")
			if tt.charset != "" {
				req = req.withCharset(tt.charset)
			}
			oc := &outcome{Status: 200, Fields: []field{{"Content-Type", tt.ctype}}}
			x := &exchange{sc: &scenario{}, req: req, oc: oc}
			if got := kd.ocsigen(x); got != tt.sees {
				t.Fatalf("row sees the bug: %v, want %v", got, tt.sees)
			}
			if tt.sees {
				kd.fix(x)
				if kd.ocsigen(x) {
					t.Errorf("the row still sees the bug after its fix")
				}
			}
			if got := fieldValue(oc, "Content-Type"); got != tt.want {
				t.Errorf("Content-Type %q, want %q", got, tt.want)
			}
		})
	}
}
