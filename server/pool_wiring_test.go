package server

import (
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/dryrun"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/pool"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// TestPoolConfigErrors: problems in <pool>/<upstream> are reported with
// their positions, together with the other configuration errors.
func TestPoolConfigErrors(t *testing.T) {
	src := `<ocsigen><server><port>8080</port>
<extension findlib-package="ocsigenserver.ext.revproxy">
  <pool workers="none"/>
  <upstream url="ftp://b"/>
</extension>
<host><revproxy suburl="(" dest="http://b/"/></host>
</server></ocsigen>`
	cfg, err := xmlconf.Parse("p.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`p.conf:3:3: <pool>: workers="none": want a number of connections from 1 to 100000`,
		`p.conf:4:3: <upstream>: url "ftp://b": want http://host[:port][/path] or https://host[:port][/path]`,
		`p.conf:6:7: `,
	}
	for name, compile := range map[string]func() error{
		"New":          func() error { _, err := New(cfg, nil, engine.Options{}); return err },
		"NewDryRunner": func() error { _, err := dryrun.New(cfg, engine.Options{}); return err },
	} {
		err := compile()
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != 3 {
			t.Fatalf("%s: %q", name, lines)
		}
		for i, w := range want {
			if !strings.HasPrefix(lines[i], w) {
				t.Errorf("%s: line %d: %q, want %q...", name, i, lines[i], w)
			}
		}
	}
}

// TestPoolConfigured: the server proxies through the pool configured for
// an upstream, and the dry run describes it.
func TestPoolConfigured(t *testing.T) {
	b := newBackend(t, nil)
	addr := proxy(t, `<extension findlib-package="ocsigenserver.ext.revproxy">
  <upstream url="`+b.URL+`" workers="2" pipeline_depth="4"/>
</extension>
<host><revproxy suburl="(.*)" dest="`+b.URL+`/\1"/></host>`)
	resp, body := get(t, addr, "/x", "h")
	if resp.StatusCode != 200 || body != "backend /x" {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	cfg, err := xmlconf.Parse("d.conf", []byte(`<ocsigen><server><port>80</port>
<extension findlib-package="ocsigenserver.ext.revproxy"><pool pipeline_depth="2"/><upstream url="http://b:8080" workers="3"/></extension>
</server></ocsigen>`))
	if err != nil {
		t.Fatal(err)
	}
	dr, err := dryrun.New(cfg, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lines := dr.PoolLines()
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "pool defaults: workers=1024 strategy=best_worker pipeline_depth=2 ") ||
		!strings.HasPrefix(lines[1], "upstream http://b:8080 (d.conf:2): workers=3 strategy=best_worker pipeline_depth=2 ") {
		t.Errorf("pool lines %q", lines)
	}
}

// TestPoolIsTheTransport: proxied requests go through a *pool.Pool.
func TestPoolIsTheTransport(t *testing.T) {
	cfg, err := xmlconf.Parse("t.conf", []byte(`<ocsigen><server><port>80</port></server></ocsigen>`))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, nil, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.Handler.Tree().Env().Transport.(*pool.Pool); !ok {
		t.Errorf("transport %T", srv.Handler.Tree().Env().Transport)
	}
}
