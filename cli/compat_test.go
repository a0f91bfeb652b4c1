package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckOcsigen runs --check-ocsigen through the command line: the
// notes come with their positions among the --dry-run notes, a file
// without any difference gives none, and the flag is refused without
// --dry-run or with a version other than 6 and 7.
func TestCheckOcsigen(t *testing.T) {
	dir := t.TempDir()
	write := func(name, host string) string {
		p := filepath.Join(dir, name)
		src := `<ocsigen>
  <server>
    <port>127.0.0.1:8080</port>
    <extension findlib-package="ocsigenserver.ext.revproxy"/>
    <extension findlib-package="ocsigenserver.ext.accesscontrol"/>
    <host>
      ` + host + `
    </host>
  </server>
</ocsigen>
`
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	later := write("later.conf", `<allow-forward-for/><if><ip value="10.0.0.1"/><then><forbidden/></then></if><revproxy regexp="http://x/(.*)" dest="http://127.0.0.1:8081/\1"/>`)
	clean := write("clean.conf", `<revproxy suburl="(.*)" dest="http://127.0.0.1:8081/\1"/>`)
	tests := []struct {
		name     string
		args     []string
		code     int
		want     []string // lines of stdout
		dontWant string   // text that must not be in stdout
		stderr   string
	}{
		{
			name: "version 7",
			args: []string{"-c", later, "--dry-run", "--check-ocsigen", "7", "http://x/a"},
			want: []string{
				"note: " + later + ":7:31: Ocsigen 7.0: <ip value=\"10.0.0.1\"> after <allow-forward-for/> (" + later + ":7)",
				"note: " + later + ":7:83: Ocsigen 6.0: <revproxy regexp=\"http://x/(.*)\">: regexp= was removed",
				"=> proxy GET http://127.0.0.1:8081/a",
			},
		},
		{
			name:     "version 6",
			args:     []string{"-c", later, "--dry-run", "--check-ocsigen=6"},
			want:     []string{"note: " + later + ":7:83: Ocsigen 6.0: <revproxy regexp="},
			dontWant: "Ocsigen 7.0",
		},
		{
			name:     "nothing to note",
			args:     []string{"-c", clean, "--dry-run", "--check-ocsigen", "7"},
			want:     []string{"ocsigen 7.0: nothing found that behaves differently than on 5.0.1"},
			dontWant: "note:",
		},
		{
			name:     "without the flag",
			args:     []string{"-c", later, "--dry-run", "http://x/a"},
			want:     []string{"=> proxy GET http://127.0.0.1:8081/a"},
			dontWant: "Ocsigen 6.0",
		},
		{name: "without --dry-run", args: []string{"-c", later, "--check-ocsigen", "7"}, code: 2, stderr: "--check-ocsigen goes with --dry-run"},
		{name: "unknown version", args: []string{"-c", later, "--dry-run", "--check-ocsigen", "5"}, code: 2, stderr: "--check-ocsigen 5: want 6 or 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, errs)
			}
			for _, w := range tt.want {
				if !hasLinePrefix(out, w) {
					t.Errorf("stdout has no line starting %q:\n%s", w, out)
				}
			}
			if tt.dontWant != "" && strings.Contains(out, tt.dontWant) {
				t.Errorf("stdout has %q:\n%s", tt.dontWant, out)
			}
			if !strings.Contains(errs, tt.stderr) {
				t.Errorf("stderr = %q, want %q", errs, tt.stderr)
			}
		})
	}
}

// hasLinePrefix reports whether a line of out, without its leading
// spaces, starts with prefix.
func hasLinePrefix(out, prefix string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimLeft(l, " "), prefix) {
			return true
		}
	}
	return false
}
