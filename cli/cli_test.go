package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "update golden files")

// golden compares got with the golden file, or rewrites it with -update.
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./cli -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestDryRunMigration runs --dry-run on the realistic migration config for
// a dozen URLs and compares the traces with golden files.
func TestDryRunMigration(t *testing.T) {
	t.Chdir("..")
	cases := []struct {
		name string
		args []string
	}{
		{"bare-domain-redirect", []string{"http://example.com/foo?x=1"}},
		{"admin-forbidden", []string{"--from", "203.0.113.5", "http://www.example.com/admin/users"}},
		{"admin-allowed", []string{"--from", "192.168.1.10", "http://www.example.com/admin/users"}},
		{"admin-spoofed-xff", []string{"--from", "10.0.0.3", "--header", "X-Forwarded-For: 192.168.1.10, 203.0.113.9", "http://www.example.com/admin/"}},
		{"admin-via-balancer", []string{"--from", "10.0.0.3", "--header", "X-Forwarded-For: 203.0.113.9, 192.168.1.10", "--header", "X-Forwarded-Proto: https", "http://www.example.com/admin/"}},
		{"api-v1-rewrite", []string{"http://www.example.com/api/v1/items?limit=5"}},
		{"api-spoofed-client-headers", []string{"--from", "203.0.113.5", "--header", "X-Real-IP: 192.168.1.10", "--header", "X-Forwarded-Host: evil.example",
			"--header", "True-Client-IP: 192.168.1.10", "--header", "Forwarded: for=192.168.1.10", "http://www.example.com/api/v2/items"}},
		{"api-site-redirect", []string{"http://www.example.com:8080/api"}},
		{"static-cdn", []string{"http://www.example.com/static/css/site.css"}},
		{"static-other-keephost", []string{"http://www.example.com/static/secret.txt"}},
		{"legacy-temporary", []string{"http://www.example.com/legacy/page?id=3"}},
		{"org-subdomain", []string{"http://blog.example.org/post/1"}},
		{"org-debug-header", []string{"--header", "X-Debug: yes", "http://blog.example.org/post/1"}},
		{"other-host-health", []string{"http://other.example.net/health"}},
		{"other-host-404", []string{"http://other.example.net/"}},
		{"path-above-root", []string{"http://www.example.com/a/../../etc/passwd"}},
		{"encoded-dots", []string{"--from", "203.0.113.5", "http://www.example.com/static/%2e%2e/admin/x"}},
		{"post-method", []string{"--method", "POST", "http://www.example.com/api/v2/orders"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-c", "testdata/migration.conf", "--dry-run"}, tc.args...)
			code, out, errs := run(t, args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, errs)
			}
			golden(t, filepath.Join("testdata", "dryrun", tc.name+".golden"), []byte(out))
		})
	}
}

func TestDryRunJSON(t *testing.T) {
	t.Chdir("..")
	code, out, errs := run(t, "-c", "testdata/migration.conf", "--dry-run", "--json",
		"http://www.example.com/api/v1/items", "http://example.com/", "http://other.example.net/")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d JSON lines, want 3:\n%s", len(lines), out)
	}
	want := []struct{ action, url, location string }{
		{"proxy", "http://10.1.0.6:8000/items", ""},
		{"redirect", "", "https://www.example.com/"},
		{"status", "", ""},
	}
	for i, l := range lines {
		var r struct {
			Trace    []struct{ Pos, Msg string }
			Decision struct{ Action, URL, Location string }
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		d := r.Decision
		if d.Action != want[i].action || d.URL != want[i].url || d.Location != want[i].location {
			t.Errorf("line %d: decision %+v, want %+v", i, d, want[i])
		}
		if len(r.Trace) == 0 || r.Trace[0].Pos == "" {
			t.Errorf("line %d: trace without positions: %+v", i, r.Trace)
		}
	}
	golden(t, "testdata/dryrun/json.golden", []byte(out))
}

// TestConfigErrors checks that every broken config in testdata/errors is
// refused with exit status 1 and exactly its golden messages.
func TestConfigErrors(t *testing.T) {
	t.Chdir("..")
	files, err := filepath.Glob("testdata/errors/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, out, errs := run(t, "-c", f, "--dry-run", "/")
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if out != "" {
				t.Errorf("stdout not empty: %q", out)
			}
			for _, line := range strings.Split(strings.TrimSpace(errs), "\n") {
				if !strings.HasPrefix(line, f+":") {
					t.Errorf("message without position: %q", line)
				}
			}
			golden(t, strings.TrimSuffix(f, ".conf")+".golden", []byte(errs))
		})
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{[]string{"--version"}, 0, "ocsiproxy ", ""},
		{[]string{"--help"}, 0, "--dry-run", ""},
		{[]string{"-help"}, 0, "--config", ""},
		{[]string{"--bogus"}, 2, "", "unknown flag: --bogus"},
		{[]string{"-c"}, 2, "", "flag needs an argument"},
		{[]string{"-c", "testdata/does-not-exist.conf"}, 1, "", "does-not-exist.conf"},
		{[]string{"-c", "x.conf", "stray"}, 2, "", "unexpected arguments"},
	}
	for _, tt := range tests {
		code, out, errs := run(t, tt.args...)
		if code != tt.code || !strings.Contains(out, tt.inStdout) || !strings.Contains(errs, tt.inStderr) {
			t.Errorf("%q: exit %d stdout %q stderr %q; want exit %d, stdout with %q, stderr with %q",
				tt.args, code, out, errs, tt.code, tt.inStdout, tt.inStderr)
		}
	}
}

// TestServes: only a command line that starts the server is told so (main
// then keeps the runtime's monitor thread awake); the ones that only print
// are not.
func TestServes(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"-c", "x.conf", "-v"}, true},
		{[]string{"-d", "-p", "pid"}, true},
		{[]string{"--reverse-proxy", "http://127.0.0.1:8081", "--port", "8080"}, true},
		{[]string{"--dry-run", "http://h/"}, false},
		{[]string{"-t"}, false},
		{[]string{"--version"}, false},
		{[]string{"--help"}, false},
		{[]string{"--compare", "old.conf"}, false},
		{[]string{"--no-such-flag"}, false},
	} {
		if got := Serves(tt.args); got != tt.want {
			t.Errorf("Serves(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}
