package server

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/internal/syncbuf"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// watchInterval is the interval of the watches of the tests.
const watchInterval = 10 * time.Millisecond

// confWith returns a configuration file listening on a free loopback
// port with one host per filter, and <extconf dir=D/> for each of dirs.
func confWith(filters []string, dirs ...string) string {
	var b strings.Builder
	b.WriteString("<ocsigen><server>\n" + extensionLines + "\n<port>127.0.0.1:0</port>\n")
	for _, d := range dirs {
		b.WriteString(`<extconf dir="` + d + `"/>` + "\n")
	}
	for _, f := range filters {
		b.WriteString(`<host hostfilter="` + f + `"><redirect suburl="(.*)" dest="http://` + f + `/\1"/></host>` + "\n")
	}
	b.WriteString("</server></ocsigen>\n")
	return b.String()
}

// hostConf returns an <extconf> file with one host.
func hostConf(filter string) string {
	return `<ocsigen><server><host hostfilter="` + filter + `"><redirect suburl="(.*)" dest="http://` + filter + `/\1"/></host></server></ocsigen>` + "\n"
}

func mustWrite(t *testing.T, path, src string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// configMap lays out dir as the kubelet lays out a ConfigMap volume:
// each key a symlink to ..data/key, ..data a symlink to a timestamped
// directory holding the files. Each call is one update: the files go to a
// new directory, ..data is swapped to it by a rename and the old directory
// is removed, as the kubelet's atomic writer does.
func configMap(t *testing.T, dir, version string, files map[string]string) {
	t.Helper()
	ts := "..2026_01_01_00_00_00." + version
	for name, src := range files {
		mustWrite(t, filepath.Join(dir, ts, name), src)
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		top, _, _ := strings.Cut(name, "/")
		link := filepath.Join(dir, top)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", top), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

// startWatched serves the configuration file (written by the test) and
// watches it; the lines of the error and warning logs go to logs.
func startWatched(t *testing.T, file string, logs *syncbuf.Buffer) *Server {
	t.Helper()
	cfg, err := xmlconf.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	l, err := accesslog.OpenLogs("", accesslog.Verbose, nil, logs)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, l, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served, watched := make(chan error, 1), make(chan struct{})
	go func() { served <- srv.Serve(ctx) }()
	go func() { srv.Watch(ctx, watchInterval); close(watched) }()
	t.Cleanup(func() {
		cancel()
		for _, c := range []<-chan struct{}{watched, doneOf(served)} {
			select {
			case <-c:
			case <-time.After(20 * time.Second):
				t.Errorf("server or watch did not stop")
			}
		}
		l.Close()
	})
	return srv
}

func doneOf(c <-chan error) <-chan struct{} {
	d := make(chan struct{})
	go func() { <-c; close(d) }()
	return d
}

// hostsOf returns the hostfilters of the configuration srv serves.
func hostsOf(srv *Server) []string {
	var hs []string
	for _, h := range srv.Config().Hosts {
		hs = append(hs, h.Filter)
	}
	return hs
}

// waitHosts waits, up to 10 s, until srv serves the hosts want.
func waitHosts(t *testing.T, srv *Server, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(hostsOf(srv), want) {
		if time.Now().After(deadline) {
			t.Fatalf("hosts %q, want %q (no reload seen within 10 s)", hostsOf(srv), want)
		}
		time.Sleep(watchInterval)
	}
}

// TestWatch changes the configuration in each of the ways a file is
// changed on a server and checks that the watch reloads it.
func TestWatch(t *testing.T) {
	tests := []struct {
		name string
		// setup writes the first configuration into dir and returns the
		// path of the configuration file and the hosts it serves.
		setup func(t *testing.T, dir string) (string, []string)
		// change changes it (srv serving it) and returns the hosts
		// served after.
		change func(t *testing.T, dir, file string, srv *Server) []string
	}{
		{
			name: "in-place write",
			setup: func(t *testing.T, dir string) (string, []string) {
				f := filepath.Join(dir, "a.conf")
				mustWrite(t, f, confWith([]string{"one"}))
				return f, []string{"one"}
			},
			change: func(t *testing.T, dir, file string, srv *Server) []string {
				fh, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer fh.Close()
				if _, err := fh.WriteString(confWith([]string{"two"})); err != nil {
					t.Fatal(err)
				}
				return []string{"two"}
			},
		},
		{
			name: "replaced by a rename",
			setup: func(t *testing.T, dir string) (string, []string) {
				f := filepath.Join(dir, "a.conf")
				mustWrite(t, f, confWith([]string{"one"}))
				return f, []string{"one"}
			},
			change: func(t *testing.T, dir, file string, srv *Server) []string {
				mustWrite(t, file+".new", confWith([]string{"one", "two"}))
				if err := os.Rename(file+".new", file); err != nil {
					t.Fatal(err)
				}
				return []string{"one", "two"}
			},
		},
		{
			name: "extconf file changed",
			setup: func(t *testing.T, dir string) (string, []string) {
				f := filepath.Join(dir, "a.conf")
				mustWrite(t, f, confWith([]string{"main"}, filepath.Join(dir, "conf.d")))
				mustWrite(t, filepath.Join(dir, "conf.d", "10.conf"), hostConf("ext1"))
				return f, []string{"ext1", "main"}
			},
			change: func(t *testing.T, dir, file string, srv *Server) []string {
				mustWrite(t, filepath.Join(dir, "conf.d", "10.conf"), hostConf("ext2"))
				return []string{"ext2", "main"}
			},
		},
		{
			name: "extconf file added",
			setup: func(t *testing.T, dir string) (string, []string) {
				f := filepath.Join(dir, "a.conf")
				mustWrite(t, f, confWith([]string{"main"}, filepath.Join(dir, "conf.d")))
				mustWrite(t, filepath.Join(dir, "conf.d", "10.conf"), hostConf("ext1"))
				return f, []string{"ext1", "main"}
			},
			change: func(t *testing.T, dir, file string, srv *Server) []string {
				mustWrite(t, filepath.Join(dir, "conf.d", "20.conf"), hostConf("ext2"))
				return []string{"ext1", "ext2", "main"}
			},
		},
		{
			name: "extconf directory created later",
			setup: func(t *testing.T, dir string) (string, []string) {
				f := filepath.Join(dir, "a.conf")
				mustWrite(t, f, confWith([]string{"main"}, filepath.Join(dir, "later.d")))
				return f, []string{"main"}
			},
			change: func(t *testing.T, dir, file string, srv *Server) []string {
				mustWrite(t, filepath.Join(dir, "later.d", "10.conf"), hostConf("ext"))
				return []string{"ext", "main"}
			},
		},
		{
			name: "extconf directory added by the change",
			setup: func(t *testing.T, dir string) (string, []string) {
				f := filepath.Join(dir, "a.conf")
				mustWrite(t, f, confWith([]string{"main"}))
				mustWrite(t, filepath.Join(dir, "conf.d", "10.conf"), hostConf("ext1"))
				return f, []string{"main"}
			},
			change: func(t *testing.T, dir, file string, srv *Server) []string {
				mustWrite(t, file, confWith([]string{"main"}, filepath.Join(dir, "conf.d")))
				waitHosts(t, srv, []string{"ext1", "main"})
				// The directory the change added is watched from then on.
				mustWrite(t, filepath.Join(dir, "conf.d", "10.conf"), hostConf("ext2"))
				return []string{"ext2", "main"}
			},
		},
		{
			name: "ConfigMap symlink swap",
			setup: func(t *testing.T, dir string) (string, []string) {
				configMap(t, dir, "1", map[string]string{
					"ocsiproxy.conf": confWith([]string{"main1"}, filepath.Join(dir, "conf.d")),
					"conf.d/10.conf": hostConf("ext1"),
				})
				return filepath.Join(dir, "ocsiproxy.conf"), []string{"ext1", "main1"}
			},
			change: func(t *testing.T, dir, file string, srv *Server) []string {
				configMap(t, dir, "2", map[string]string{
					"ocsiproxy.conf": confWith([]string{"main2"}, filepath.Join(dir, "conf.d")),
					"conf.d/10.conf": hostConf("ext2"),
				})
				return []string{"ext2", "main2"}
			},
		},
		{
			name: "ConfigMap swap of an extconf file only",
			setup: func(t *testing.T, dir string) (string, []string) {
				configMap(t, dir, "1", map[string]string{
					"ocsiproxy.conf": confWith([]string{"main"}, filepath.Join(dir, "conf.d")),
					"conf.d/10.conf": hostConf("ext1"),
				})
				return filepath.Join(dir, "ocsiproxy.conf"), []string{"ext1", "main"}
			},
			change: func(t *testing.T, dir, file string, srv *Server) []string {
				configMap(t, dir, "2", map[string]string{
					"ocsiproxy.conf": confWith([]string{"main"}, filepath.Join(dir, "conf.d")),
					"conf.d/10.conf": hostConf("ext2"),
				})
				return []string{"ext2", "main"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file, before := tt.setup(t, dir)
			var logs syncbuf.Buffer
			srv := startWatched(t, file, &logs)
			waitHosts(t, srv, before)
			after := tt.change(t, dir, file, srv)
			waitHosts(t, srv, after)
			if strings.Contains(logs.String(), "error:") {
				t.Errorf("logs:\n%s", logs.String())
			}
		})
	}
}

// TestWatchFailedReload checks that a change to a broken configuration
// keeps the old one and is logged, and that the watch goes on.
func TestWatchFailedReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.conf")
	mustWrite(t, file, confWith([]string{"one"}))
	var logs syncbuf.Buffer
	srv := startWatched(t, file, &logs)
	mustWrite(t, file, strings.Replace(confWith([]string{"two"}), `suburl="(.*)"`, `suburl="(.*"`, 1))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "old configuration kept") {
		if time.Now().After(deadline) {
			t.Fatalf("no failed reload logged within 10 s; logs:\n%s", logs.String())
		}
		time.Sleep(watchInterval)
	}
	if got := hostsOf(srv); !slices.Equal(got, []string{"one"}) {
		t.Errorf("after a failed reload: hosts %q, want the old %q", got, []string{"one"})
	}
	if !strings.Contains(logs.String(), "error: server: reload of "+file+" failed") {
		t.Errorf("the failure is not in the error log:\n%s", logs.String())
	}
	mustWrite(t, file, confWith([]string{"three"}))
	waitHosts(t, srv, []string{"three"})
	// One failure logged, not one per look at the unchanged broken file.
	if n := strings.Count(logs.String(), "old configuration kept"); n != 1 {
		t.Errorf("%d failed reloads logged, want 1:\n%s", n, logs.String())
	}
}

// TestWatchTouch checks that a file whose time changes but not its
// content is not reloaded.
func TestWatchTouch(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.conf")
	mustWrite(t, file, confWith([]string{"one"}))
	var logs syncbuf.Buffer
	startWatched(t, file, &logs)
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	// An absence is checked by waiting: a few intervals of the watch.
	time.Sleep(5 * watchInterval)
	if strings.Contains(logs.String(), "reload") {
		t.Errorf("a touch reloaded:\n%s", logs.String())
	}
}

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.conf")
	d := filepath.Join(dir, "d")
	mustWrite(t, file, "x")
	mustWrite(t, filepath.Join(d, "1.conf"), "y")
	mustWrite(t, filepath.Join(d, "notes.txt"), "z")
	base := fingerprint(file, []string{d})
	tests := []struct {
		name   string
		change func()
		same   bool
	}{
		{"a file extconf does not read", func() { mustWrite(t, filepath.Join(d, "notes.txt"), "zz") }, true},
		{"the main file", func() { mustWrite(t, file, "x2") }, false},
		{"an extconf file", func() { mustWrite(t, filepath.Join(d, "1.conf"), "y2") }, false},
		{"an extconf file added", func() { mustWrite(t, filepath.Join(d, "2.conf"), "") }, false},
		{"an extconf file renamed", func() { os.Rename(filepath.Join(d, "1.conf"), filepath.Join(d, "0.conf")) }, false},
		{"the main file removed", func() { os.Remove(file) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.change()
			got := fingerprint(file, []string{d})
			if (got == base) != tt.same {
				t.Errorf("same fingerprint: %v, want %v", got == base, tt.same)
			}
			base = got
		})
	}
}
