package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckOnly runs -t and --dry-run without URLs, which check what
// start-up checks short of opening the ports, and with a URL, which
// checks the configuration only: every problem is printed, each at its
// position, in one run.
func TestCheckOnly(t *testing.T) {
	dir := t.TempDir()
	logdir := filepath.Join(dir, "log")
	os.Mkdir(logdir, 0o755)
	missing := filepath.Join(dir, "missing")
	revproxy := `<extension findlib-package="ocsigenserver.ext.revproxy"/>` + "\n"
	good := "<ocsigen><server><port>127.0.0.1:0</port>\n<logdir>" + logdir + "</logdir>\n" + revproxy +
		`<host><revproxy suburl=".*" dest="http://127.0.0.1:9/"/></host></server></ocsigen>`
	broken := "<ocsigen><server>\n<port>99999</port>\n<port protocol=\"HTTPS\">127.0.0.1:0</port>\n" +
		"<ssl><certificate>" + missing + ".pem</certificate><privatekey>" + missing + ".key</privatekey></ssl>\n" +
		"<logdir>" + missing + "</logdir>\n<commandpipe>" + filepath.Join(missing, "cmd") + "</commandpipe>\n" + revproxy +
		`<host><revproxy suburl="(" dest="http://127.0.0.1:9/"/></host></server></ocsigen>`
	cases := []struct {
		name string
		conf string
		args []string
		code int
		// out is a substring of stdout; errs are the lines of stderr,
		// after the file name.
		out  string
		errs []string
	}{
		{"-t good", good, []string{"-t"}, 0, ": ok (1 hosts; certificates, log files, command pipe, user and group checked)", nil},
		{"--dry-run good", good, []string{"--dry-run"}, 0, ": ok (1 hosts; certificates, log files, command pipe, user and group checked)", nil},
		{"-t broken", broken, []string{"-t"}, 1, "", []string{
			":2:1: <port>: port 99999 out of range",
			":4:1: <ssl>: open " + missing + ".pem: no such file or directory",
			":5:1: <logdir>: stat " + missing + ": no such file or directory",
			":6:1: <commandpipe>: cannot create " + filepath.Join(missing, "cmd") + ": " + missing + ": no such file or directory",
			":8:7: <revproxy>: suburl: bad regexp \"(\": missing closing ) in `(`",
		}},
		{"--dry-run URL broken", broken, []string{"--dry-run", "/"}, 1, "", []string{
			":2:1: <port>: port 99999 out of range",
			":8:7: <revproxy>: suburl: bad regexp \"(\": missing closing ) in `(`",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "c.conf")
			os.WriteFile(conf, []byte(tc.conf), 0o644)
			code, out, errs := run(t, append([]string{"-c", conf}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, errs)
			}
			if !strings.Contains(out, tc.out) {
				t.Errorf("stdout %q lacks %q", out, tc.out)
			}
			var want []string
			for _, e := range tc.errs {
				want = append(want, conf+e)
			}
			if got := strings.TrimSuffix(errs, "\n"); got != strings.Join(want, "\n") {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
			}
		})
	}
}

// TestStartChecksSystem checks that serving a configuration whose log
// directory is missing fails before anything listens, with the
// position of <logdir> and the other problems of the file.
func TestStartChecksSystem(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	conf := filepath.Join(dir, "c.conf")
	os.WriteFile(conf, []byte("<ocsigen><server><port>127.0.0.1:0</port>\n<logdir>"+missing+"</logdir>\n"+
		`<extension findlib-package="ocsigenserver.ext.revproxy"/>`+"\n"+
		`<host><revproxy suburl="(" dest="http://127.0.0.1:9/"/></host></server></ocsigen>`), 0o644)
	code, _, errs := run(t, "-c", conf)
	want := conf + ":2:1: <logdir>: stat " + missing + ": no such file or directory\n" +
		conf + ":4:7: <revproxy>: suburl: bad regexp \"(\": missing closing ) in `(`\n"
	if code != 1 || errs != want {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1, stderr:\n%s", code, errs, want)
	}
}
