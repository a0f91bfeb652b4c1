package difftest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// systemFindlib is where Debian's OCaml packages (ocsigenserver's
// extensions among them, from libocsigenserver-ocaml-dev) are installed.
const systemFindlib = "/usr/lib/ocaml"

var (
	probeOnce sync.Once
	probeWhy  string // why Ocsigen cannot run the scenarios; "" when it can
)

// skipUnlessOcsigen skips t unless ocsigenserver is installed and can
// load the extensions the scenarios use: with the ocsigenserver package
// alone, without libocsigenserver-ocaml-dev, it exits with "Findlib
// package ... not found" and every scenario would fail. The probe runs
// once per test binary.
func skipUnlessOcsigen(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(ocsigenBin); err != nil {
		t.Skip("ocsigenserver not installed: apt-get install ocsigenserver libocsigenserver-ocaml-dev")
	}
	probeOnce.Do(func() { probeWhy = probeOcsigen(t, nil, systemFindlib) })
	if probeWhy != "" {
		t.Skipf("ocsigenserver cannot load its extensions (apt-get install libocsigenserver-ocaml-dev): %s", probeWhy)
	}
}

// probeOcsigen starts ocsigenserver on a loopback port with the
// extensions of the scenarios' config, found under the findlib path,
// with env added to its environment; it returns "" when it listens, and
// else why not (the end of its output).
func probeOcsigen(t *testing.T, env []string, findlib string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"log", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	conf := strings.NewReplacer("{SERVER}", "", "{HOSTS}", "",
		`<findlib path="/usr/lib/ocaml"/>`, `<findlib path="`+findlib+`"/>`).Replace(configTemplate)
	conf = vars{Port: port, Dir: dir}.expand(conf)
	path := filepath.Join(dir, "probe.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p, out := startProc(t, "ocsigenserver probe", dir, env, ocsigenBin, "-c", path)
	defer p.stop()
	st := waitStart(p, out, port)
	if st.Listening {
		return ""
	}
	why := strings.TrimSpace(st.Output)
	if i := strings.LastIndexByte(why, '\n'); i >= 0 {
		why = why[i+1:]
	}
	return st.String() + ": " + why
}

// TestOcsigenProbe checks the probe both ways: it accepts the installed
// Ocsigen, and it refuses one whose findlib packages cannot be found,
// as with the ocsigenserver package alone (simulated with a findlib
// configuration and path that hold nothing).
func TestOcsigenProbe(t *testing.T) {
	if _, err := exec.LookPath(ocsigenBin); err != nil {
		t.Skip("ocsigenserver not installed")
	}
	empty := t.TempDir()
	fconf := filepath.Join(empty, "findlib.conf")
	if err := os.WriteFile(fconf, []byte(`destdir="`+empty+`"`+"\n"+`path="`+empty+`"`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     []string
		findlib string
		want    string // in the reason; "" for usable
	}{
		{"installed", nil, systemFindlib, ""},
		{"findlib packages missing", []string{"OCAMLFIND_CONF=" + fconf}, empty, "Findlib package ocsigenserver.ext.revproxy not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why := probeOcsigen(t, tt.env, tt.findlib)
			if tt.want == "" && why != "" {
				if _, err := os.Stat(filepath.Join(systemFindlib, "ocsigenserver", "META")); err != nil {
					t.Skipf("libocsigenserver-ocaml-dev not installed: %s", why)
				}
				t.Errorf("probe refused the installed Ocsigen: %s", why)
			}
			if tt.want != "" && !strings.Contains(why, tt.want) {
				t.Errorf("probe: %q, want a refusal with %q", why, tt.want)
			}
		})
	}
}
