package pool

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// parsePoolConfig parses the <extension> children given in a config whose
// <timeout> is 20 s.
func parsePoolConfig(t *testing.T, children string) (Config, xmlconf.ErrorList) {
	t.Helper()
	src := "<ocsigen><server>\n<timeout>20</timeout>\n<extension findlib-package=\"ocsigenserver.ext.revproxy\">\n" +
		children + "\n</extension>\n</server></ocsigen>\n"
	cfg, err := xmlconf.Parse("t.conf", []byte(src))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	var errs xmlconf.ErrorList
	c := ParseConfig(cfg, &errs)
	return c, errs
}

func TestParseConfigDefaults(t *testing.T) {
	c, errs := parsePoolConfig(t, "")
	if len(errs) != 0 || c.Configured {
		t.Fatalf("errors %v, configured %t", errs, c.Configured)
	}
	want := DefaultSettings(20 * time.Second)
	d := c.Defaults
	if d.Workers != want.Workers || d.Strategy != BestWorker || d.CallTimeout != 20*time.Second || d.RequestTimeout != 20*time.Second ||
		d.PipelineDepth != want.PipelineDepth || d.MaxBuffered != 64<<10 || !d.TLS.VerifyPeer {
		t.Errorf("defaults %+v", d)
	}
	if lines := c.Describe(); lines != nil {
		t.Errorf("Describe without <pool>: %q", lines)
	}
}

func TestParseConfig(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, certPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	c, errs := parsePoolConfig(t, `<pool workers="8" strategy="next_worker" pipeline_depth="4" call_timeout="5000" idle_timeout="1m" hol_timeout="infinity" max_buffered="16kiB">
  <tls versions="tlsv1.3"/>
</pool>
<upstream url="HTTPS://API.example:8443/" workers="2" request_timeout="1.5s" distrust="0">
  <tls cacertfile="`+ca+`" ciphers="ECDHE-RSA-AES128-GCM-SHA256:TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" server_name_indication="internal.example"/>
</upstream>
<upstream url="http://[::1]" strategy="available_worker" connect_timeout="infinity"/>`)
	if len(errs) != 0 {
		t.Fatalf("errors:\n%v", errs)
	}
	d := c.Defaults
	if d.Workers != 8 || d.Strategy != NextWorker || d.PipelineDepth != 4 || d.CallTimeout != 5*time.Second ||
		d.IdleTimeout != time.Minute || d.HOLTimeout != Never || d.MaxBuffered != 16<<10 || d.TLS.MinVersion != tls.VersionTLS13 {
		t.Errorf("defaults %+v", d)
	}
	if len(c.Upstreams) != 2 {
		t.Fatalf("%d upstreams", len(c.Upstreams))
	}
	api, lo := c.Upstreams[0], c.Upstreams[1]
	if api.Key != "https://api.example:8443" || api.Settings.Workers != 2 || api.Settings.Strategy != NextWorker ||
		api.Settings.RequestTimeout != 1500*time.Millisecond || api.Settings.Distrust != 0 || api.Settings.PipelineDepth != 4 ||
		api.tls == nil || api.tls.ServerName != "internal.example" || api.tls.RootCAs == nil || len(api.tls.CipherSuites) != 2 ||
		api.tls.MinVersion != tls.VersionTLS13 {
		t.Errorf("api upstream %+v", api)
	}
	if lo.Key != "http://[::1]:80" || lo.Settings.Strategy != AvailableWorker || lo.Settings.ConnectTimeout != 0 || lo.tls != nil {
		t.Errorf("[::1] upstream %+v", lo)
	}
	lines := c.Describe()
	want := []string{
		"pool defaults: workers=8 strategy=next_worker pipeline_depth=4 call_timeout=5s request_timeout=20s connect_timeout=10s idle_timeout=1m0s max_buffered=16kiB hol_timeout=infinity probation=1 distrust=30s",
		"upstream https://api.example:8443 (t.conf:7): workers=2 strategy=next_worker pipeline_depth=4 call_timeout=5s request_timeout=1.5s connect_timeout=10s idle_timeout=1m0s max_buffered=16kiB hol_timeout=infinity probation=1 distrust=0 tls: verify_peer=true cacertfile=" + ca + " versions=tlsv1.3..tlsv1.3 ciphers=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 server_name_indication=internal.example",
		"upstream http://[::1]:80 (t.conf:10): workers=8 strategy=available_worker pipeline_depth=4 call_timeout=5s request_timeout=20s connect_timeout=infinity idle_timeout=1m0s max_buffered=16kiB hol_timeout=infinity probation=1 distrust=30s",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("Describe:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct{ xml, want string }{
		{`<pool workers="0"/>`, `t.conf:4:1: <pool>: workers="0": want a number of connections from 1 to 100000`},
		{`<pool strategy="fastest"/>`, `t.conf:4:1: <pool>: strategy="fastest": want best_worker, random_worker, next_worker, available_worker, next_available_worker or next_available_worker`},
		{`<pool call_timeout="soon"/>`, `t.conf:4:1: <pool>: call_timeout="soon": want a duration ("5000" milliseconds, "5s", "500ms") or "infinity"`},
		{`<pool request_timeout="0"/>`, `t.conf:4:1: <pool>: request_timeout="0": want a duration ("5000" milliseconds, "5s", "500ms") or "infinity"`},
		{`<pool pipeline_depth="2000"/>`, `t.conf:4:1: <pool>: pipeline_depth="2000": want a number of requests from 1 (no pipelining) to 1024`},
		{`<pool max_buffered="1GiB"/>`, `t.conf:4:1: <pool>: max_buffered="1GiB": want a size up to 64MiB ("64kiB")`},
		{`<pool size="3"/>`, `t.conf:4:1: <pool>: unknown attribute "size"`},
		{`<pool/><pool/>`, `t.conf:4:8: <pool>: only one is allowed, in the revproxy or the routes <extension> (the first is at t.conf:4:1)`},
		{`<worker/>`, `t.conf:4:1: unknown element <worker> in the revproxy <extension> (want <pool>, <upstream> or <forwarded>)`},
		{`<upstream workers="2"/>`, `t.conf:4:1: <upstream>: missing attribute "url"`},
		{`<upstream url="ftp://x"/>`, `t.conf:4:1: <upstream>: url "ftp://x": want http://host[:port][/path] or https://host[:port][/path]`},
		{`<upstream url="http://x/path?q"/>`, `t.conf:4:1: <upstream>: url "http://x/path?q": want only a scheme, a host, a port and a path`},
		{`<upstream url="http://x/a" path_prefix="/b"/>`, `t.conf:4:1: <upstream>: path_prefix="/b": the url has a path already ("/a"); give one or the other`},
		{`<upstream url="http://x" path_prefix="api"/>`, `t.conf:4:1: <upstream>: path_prefix="api": want a path beginning with "/"`},
		{`<upstream url="http://x" path_prefix="/a b"/>`, `t.conf:4:1: <upstream>: path_prefix="/a b": want a path without query, fragment, spaces or control characters`},
		{`<upstream url="http://x" path_prefix="/a%zz"/>`, `t.conf:4:1: <upstream>: path_prefix="/a%zz": invalid URL escape "%zz"`},
		{`<pool path_prefix="/a"/>`, `t.conf:4:1: <pool>: unknown attribute "path_prefix"`},
		{`<upstream url="http://x:99999"/>`, `t.conf:4:1: <upstream>: url "http://x:99999": bad host or port "x:99999"`},
		{`<upstream url="http://x"/><upstream url="HTTP://X:80"/>`, `t.conf:4:27: <upstream>: http://x:80 is already configured at t.conf:4:1`},
		{`<upstream url="http://x"><tls/></upstream>`, `t.conf:4:26: <tls>: http://x:80 is not an https upstream`},
		{`<upstream url="https://x"><tls verify_peer="yes"/></upstream>`, `t.conf:4:27: <tls>: verify_peer="yes": want "true" or "false"`},
		{`<upstream url="https://x"><tls versions="sslv3"/></upstream>`, `t.conf:4:27: <tls>: versions="sslv3": unknown version "sslv3" (want tlsv1, tlsv1.1, tlsv1.2, tlsv1.3)`},
		{`<upstream url="https://x"><tls ciphers="HIGH:!aNULL"/></upstream>`, `t.conf:4:27: <tls>: ciphers="HIGH:!aNULL": unknown cipher suite "HIGH" (want OpenSSL names such as ECDHE-RSA-AES128-GCM-SHA256, or IANA names)`},
		{`<upstream url="https://x"><tls cacertfile="/nonexistent/ca.pem"/></upstream>`, `t.conf:4:27: <tls>: cacertfile: open /nonexistent/ca.pem: no such file or directory`},
		{`<upstream url="https://x"><tls keyfile="k.pem"/></upstream>`, `t.conf:4:27: <tls>: keyfile without certfile`},
		{`<upstream url="https://x"><tls/><tls/></upstream>`, `t.conf:4:33: <upstream>: only one <tls> is allowed`},
		{`<upstream url="https://x"><pool/></upstream>`, `t.conf:4:27: <upstream>: unknown element <pool> (want <tls>)`},
		{`<upstream url="https://x"><tls sni="x"/></upstream>`, `t.conf:4:27: <tls>: unknown attribute "sni"`},
	}
	for _, tt := range tests {
		_, errs := parsePoolConfig(t, tt.xml)
		if got := errs.Error(); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.xml, got, tt.want)
		}
	}
}

// TestParseConfigRoutesExtension: the routes <extension> takes <pool> and
// <upstream> as the revproxy one does, into the same set of pools; a
// second <pool> in either is an error naming both positions.
func TestParseConfigRoutesExtension(t *testing.T) {
	tests := []struct {
		name, xml string
		want      string // the errors; "" for none
		check     func(c Config) bool
	}{
		{"routes only", `<extension findlib-package="ocsiproxy.ext.routes">
  <pool workers="8" strategy="next_worker"/>
  <upstream url="http://b:8080" workers="2"/>
</extension>`, "", func(c Config) bool {
			return c.Configured && c.Defaults.Workers == 8 && c.Defaults.Strategy == NextWorker &&
				len(c.Upstreams) == 1 && c.Upstreams[0].Settings.Workers == 2 && c.Upstreams[0].Settings.Strategy == NextWorker
		}},
		{"pool in revproxy, upstream in routes", `<extension findlib-package="ocsigenserver.ext.revproxy"><pool workers="3"/></extension>
<extension findlib-package="ocsiproxy.ext.routes"><upstream url="http://b:8080"/></extension>`, "", func(c Config) bool {
			return len(c.Upstreams) == 1 && c.Upstreams[0].Settings.Workers == 3
		}},
		{"pool in both", `<extension findlib-package="ocsigenserver.ext.revproxy"><pool workers="3"/></extension>
<extension findlib-package="ocsiproxy.ext.routes"><pool workers="4"/></extension>`,
			`t.conf:3:51: <pool>: only one is allowed, in the revproxy or the routes <extension> (the first is at t.conf:2:57)`, nil},
		{"upstream in both", `<extension findlib-package="ocsigenserver.ext.revproxy"><upstream url="http://b"/></extension>
<extension findlib-package="ocsiproxy.ext.routes"><upstream url="http://b:80"/></extension>`,
			`t.conf:3:51: <upstream>: http://b:80 is already configured at t.conf:2:57`, nil},
		{"routes children left to routes.Configure", `<extension findlib-package="ocsiproxy.ext.routes"><header name="X" value="y"/><bogus/></extension>`, "", func(c Config) bool {
			return !c.Configured
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "<ocsigen><server>\n" + tt.xml + "\n</server></ocsigen>\n"
			cfg, err := xmlconf.Parse("t.conf", []byte(src))
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			var errs xmlconf.ErrorList
			c := ParseConfig(cfg, &errs)
			got := ""
			if err := errs.Err(); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("errors:\n got %s\nwant %s", got, tt.want)
			}
			if tt.check != nil && !tt.check(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

// TestPathPrefix: path_prefix= on <upstream>, or a path in its url, is
// the prefix of every request path sent to that upstream, whatever the
// spelling of its host and port in the request.
func TestPathPrefix(t *testing.T) {
	c, errs := parsePoolConfig(t, `<upstream url="http://API.example:8080/v1/"/>
<upstream url="https://b.example" path_prefix="/svc%20x/"/>
<upstream url="http://c.example/"/>
<upstream url="http://d.example" path_prefix="/"/>`)
	if len(errs) != 0 {
		t.Fatalf("errors:\n%v", errs)
	}
	prefixes := make([]string, len(c.Upstreams))
	for i, u := range c.Upstreams {
		prefixes[i] = u.PathPrefix
	}
	if want := []string{"/v1", "/svc%20x", "", ""}; !slices.Equal(prefixes, want) {
		t.Errorf("PathPrefix: got %q, want %q", prefixes, want)
	}
	f := c.PathPrefixFunc()
	if f == nil {
		t.Fatal("PathPrefixFunc is nil")
	}
	tests := []struct{ scheme, hostport, want string }{
		{"http", "api.example:8080", "/v1"},
		{"http", "API.EXAMPLE:8080", "/v1"},
		{"http", "api.example", ""},
		{"https", "api.example:8080", ""},
		{"https", "b.example", "/svc%20x"},
		{"https", "b.example:443", "/svc%20x"},
		{"http", "b.example", ""},
		{"http", "c.example", ""},
		{"http", "other:1", ""},
	}
	for _, tt := range tests {
		if got := f(tt.scheme, tt.hostport); got != tt.want {
			t.Errorf("%s://%s: got %q, want %q", tt.scheme, tt.hostport, got, tt.want)
		}
	}
	lines := c.Describe()
	if len(lines) != 5 || !strings.HasPrefix(lines[1], "upstream http://api.example:8080 (t.conf:4): path_prefix=/v1 workers=") ||
		strings.Contains(lines[3], "path_prefix") {
		t.Errorf("Describe: %q", lines)
	}
	none, _ := parsePoolConfig(t, `<upstream url="http://c.example/"/>`)
	if none.PathPrefixFunc() != nil {
		t.Error("PathPrefixFunc without any prefix is not nil")
	}
}
