package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

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
	logs, _ := OpenLogs("", Normal, io.Discard, io.Discard)
	srv, err := New(cfg, logs, Options{})
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
