package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartFailureLogged checks where the errors that stop a start go:
// errors.log when there is a <logdir>, and stderr unless -s (under -s,
// stderr only when there is no log to take them).
func TestStartFailureLogged(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	revproxy := `<extension findlib-package="ocsigenserver.ext.revproxy"/>` + "\n"
	badRule := `<host><revproxy suburl="(" dest="http://127.0.0.1:9/"/></host>`
	goodRule := `<host><revproxy suburl=".*" dest="http://127.0.0.1:9/"/></host>`
	cases := []struct {
		name     string
		silent   bool
		logdir   bool
		port     string
		rule     string
		want     string // in the error (after the file name for a position)
		inStderr bool
		inLog    bool
	}{
		{"silent, bad rule", true, true, "127.0.0.1:0", badRule, ":3:7: <revproxy>: suburl: bad regexp", false, true},
		{"silent, busy port", true, true, busy.Addr().String(), goodRule, ":1:18: listening on " + busy.Addr().String(), false, true},
		{"bad rule", false, true, "127.0.0.1:0", badRule, ":3:7: <revproxy>: suburl: bad regexp", true, true},
		{"silent, no logdir", true, false, "127.0.0.1:0", badRule, ":3:7: <revproxy>: suburl: bad regexp", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := filepath.Join(dir, "c.conf")
			logdir := ""
			if tc.logdir {
				logdir = "<logdir>" + dir + "</logdir>"
			}
			os.WriteFile(conf, []byte("<ocsigen><server><port>"+tc.port+"</port>"+logdir+"\n"+revproxy+tc.rule+"</server></ocsigen>"), 0o644)
			args := []string{"-c", conf}
			if tc.silent {
				args = append(args, "-s")
			}
			code, out, errs := run(t, args...)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, errs)
			}
			if out != "" {
				t.Errorf("stdout: %q", out)
			}
			if got := strings.Contains(errs, conf+tc.want); got != tc.inStderr {
				t.Errorf("stderr %q: has %q = %v, want %v", errs, conf+tc.want, got, tc.inStderr)
			}
			if tc.silent && !tc.inStderr && errs != "" {
				t.Errorf("stderr under -s: %q", errs)
			}
			log, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
			if got := strings.Contains(string(log), "error: ") && strings.Contains(string(log), conf+tc.want); got != tc.inLog {
				t.Errorf("errors.log %q: has an error line with %q = %v, want %v", log, conf+tc.want, got, tc.inLog)
			}
		})
	}
}
