package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// staticServer starts ocsiproxy with staticmod and extendconfiguration
// loaded and serverXML after them, and returns its URL.
func staticServer(t *testing.T, serverXML string) string {
	t.Helper()
	conf := `<ocsigen><server><port>127.0.0.1:8080</port>
<extension findlib-package="ocsigenserver.ext.staticmod"/>
<extension findlib-package="ocsigenserver.ext.extendconfiguration"/>
` + serverXML + `
</server></ocsigen>`
	cfg, err := xmlconf.Parse("static.conf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := accesslog.OpenLogs("", accesslog.Normal, io.Discard, io.Discard)
	srv, err := New(cfg, logs, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(srv.Handler)
	t.Cleanup(front.Close)
	return front.URL
}

// fetch sends GET target with the Host header host, following no
// redirect.
func fetch(t *testing.T, base, host, target string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", base+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestStaticCharset checks where the charset of static text files comes
// from: the server's <charset>, a <host charset=> for its host only, a
// <site charset=> for its site only, extendconfiguration's <charset>.
func TestStaticCharset(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.txt", "a.png", "s/a.txt", "e/a.txt"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := staticServer(t, `<charset>iso-8859-2</charset>
<host hostfilter="server"><static dir="`+dir+`"/></host>
<host hostfilter="host" charset="koi8-r">
  <site path="s" charset="windows-1251"><static regexp="none" dest="/nothing"/></site>
  <site path="e"><charset default="us-ascii"/></site>
  <static dir="`+dir+`"/>
</host>
<host hostfilter="site" charset="koi8-r">
  <site path="s" charset="windows-1251"><static dir="`+dir+`/s"/></site>
  <site path="n" charset=""><static dir="`+dir+`"/></site>
  <site path="e"><charset><extension ext="txt" value="us-ascii"/></charset><static dir="`+dir+`/e"/></site>
</host>
<host hostfilter="none" charset=""><static dir="`+dir+`"/></host>
<host hostfilter="after"><static dir="`+dir+`"/></host>`)
	tests := []struct {
		host, target, ctype string
	}{
		{"server", "/a.txt", "text/plain; charset=iso-8859-2"},
		{"server", "/a.png", "image/png"},
		{"host", "/a.txt", "text/plain; charset=koi8-r"},
		{"host", "/s/a.txt", "text/plain; charset=koi8-r"}, // the site's charset ends with it
		{"host", "/e/a.txt", "text/plain; charset=koi8-r"}, // so does a <charset> inside a site
		{"site", "/s/a.txt", "text/plain; charset=windows-1251"},
		{"site", "/n/a.txt", "text/plain"},
		{"site", "/e/a.txt", "text/plain; charset=us-ascii"},
		{"none", "/a.txt", "text/plain"},
		{"after", "/a.txt", "text/plain; charset=iso-8859-2"}, // a host's charset does not reach the next host
	}
	for _, tt := range tests {
		resp := fetch(t, base, tt.host, tt.target)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tt.ctype {
			t.Errorf("%s%s: %d %q, want 200 %q", tt.host, tt.target, resp.StatusCode, resp.Header.Get("Content-Type"), tt.ctype)
		}
	}
}

// TestStaticUserDir serves the user directories of the user running the
// test, through the whole server: the home directory named without a
// trailing slash is redirected (so $u(...) became it), an unknown user is
// 404.
func TestStaticUserDir(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Skipf("no current user: %v", err)
	}
	if fi, err := os.Stat(me.HomeDir); err != nil || !fi.IsDir() || !filepath.IsAbs(me.HomeDir) {
		t.Skipf("the home directory %q of %s is not a directory", me.HomeDir, me.Username)
	}
	if strings.ContainsAny(me.Username, "/:") {
		t.Skipf("user name %q", me.Username)
	}
	base := staticServer(t, `<host hostfilter="*">
  <static regexp="~([^/]*)(.*)" dest="$u(\1)\2"/>
</host>`)
	tests := []struct {
		target   string
		status   int
		location string
	}{
		{"/~" + me.Username, 301, "/~" + me.Username + "/"},
		{"/~ocsiproxy-no-such-user-7f3a", 404, ""},
		{"/~ocsiproxy-no-such-user-7f3a/x.html", 404, ""},
		{"/~/x.html", 404, ""},
	}
	for _, tt := range tests {
		resp := fetch(t, base, "files.example", tt.target)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.target, resp.StatusCode, tt.status)
		}
		if loc := resp.Header.Get("Location"); tt.location != "" && !strings.HasSuffix(loc, tt.location) {
			t.Errorf("%s: Location %q, want one ending in %q", tt.target, loc, tt.location)
		}
	}
}

// TestStaticUserDirConfigErrors checks that every malformed $u(...) is
// reported at load, with its position, all at once.
func TestStaticUserDirConfigErrors(t *testing.T) {
	conf := `<ocsigen><server><port>127.0.0.1:8080</port>
<extension findlib-package="ocsigenserver.ext.staticmod"/>
<host>
  <static regexp="~([^/]*)(.*)" dest="$u(\1/public_html\2"/>
  <static regexp="(.*)" dest="$u(a)$u(b)"/>
  <static regexp="(.*)" dest="/x/\1" root="$u()"/>
</host>
</server></ocsigen>`
	cfg, err := xmlconf.Parse("userdir.conf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := accesslog.OpenLogs("", accesslog.Normal, io.Discard, io.Discard)
	_, err = New(cfg, logs, engine.Options{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`userdir.conf:4:3: <static>: dest: "$u(\\1/public_html\\2": "$u(" without a closing ")"`,
		`userdir.conf:5:3: <static>: dest: "$u(a)$u(b)": more than one $u(...)`,
		`userdir.conf:6:3: <static>: root: "$u()": $u() names no user`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
