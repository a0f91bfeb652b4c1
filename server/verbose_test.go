package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// lineOf returns the number of the first line of file containing s.
func lineOf(t *testing.T, file, s string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line with %q", file, s)
	return 0
}

// TestVerbosityLevels serves the same requests at each level and checks
// which lines warnings.log gets: -v the server's life, -vv a line per
// request, -vvv the decisions of each request and the pool's events.
func TestVerbosityLevels(t *testing.T) {
	b := newBackend(t, nil)
	bhp := b.hostport()
	// Patterns filled in with the rule lines and the backend address.
	var (
		startLines = []string{
			`info: \S+:\d+:\d+: <datadir>: accepted; no effect: ocsiproxy keeps no data files`,
			`info: listening on 127\.0\.0\.1:\d+`,
		}
		lifeLines = []string{
			`info: <maxconnected> 1 reached: new connections wait in the accept queue until one closes`,
			`info: reloaded \S+ocsiproxy\.conf`,
		}
		requestLines = []string{
			`debug: #1 127\.0\.0\.1 "GET /app/x\?q=1": host "\*" site /app/ rule \S+ocsiproxy\.conf:{{proxy}}: proxy GET http://{{backend}}/x\?q=1 Host: {{backend}}`,
			`debug: #2 127\.0\.0\.1 "GET /old": host "\*" rule \S+ocsiproxy\.conf:{{redirect}}: redirect 301 Location: "/app/new"`,
			`debug: #3 127\.0\.0\.1 "GET /missing": host "\*": 404, no instruction answered`,
		}
		traceLines = []string{
			`debug: #1 \S+ocsiproxy\.conf:{{host}}: host hostfilter="\*": matches "h"`,
			`debug: #1 \S+ocsiproxy\.conf:{{site}}: site /app/: entered, sub-path "x"`,
			`debug: #1 \S+ocsiproxy\.conf:{{proxy}}: revproxy suburl="\(\.\*\)": match -> proxy GET http://{{backend}}/x\?q=1`,
			`debug: #3 \S+ocsiproxy\.conf:{{redirect}}: redirect suburl="old": no match on "missing"`,
			`debug: pool: http://{{backend}}: connection 127\.0\.0\.1:\d+ opened, 1 open`,
			`debug: pool: http://{{backend}}: connection 127\.0\.0\.1:\d+ closed \(idle connections closed\), 0 open`, // by the reload
		}
	)
	concat := func(l ...[]string) []string {
		var out []string
		for _, x := range l {
			out = append(out, x...)
		}
		return out
	}
	tests := []struct {
		name            string
		level           int
		present, absent []string
	}{
		{"normal", accesslog.Normal, nil, concat(startLines, lifeLines, requestLines, traceLines, []string{`info:`, `debug:`})},
		{"silent", accesslog.Silent, nil, []string{`info:`, `debug:`}},
		{"-v", accesslog.Verbose, concat(startLines, lifeLines), concat(requestLines, traceLines, []string{`debug:`})},
		{"-vv", accesslog.VeryVerbose, concat(startLines, lifeLines, requestLines), concat(traceLines, []string{`debug: pool:`})},
		{"-vvv", accesslog.Debug, concat(startLines, lifeLines, requestLines, traceLines), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r := startWith(t, dir, `<port>127.0.0.1:0</port><logdir>`+dir+`</logdir><datadir>/var/lib/x</datadir>
<maxconnected>1</maxconnected>
<host hostfilter="*">
<site path="app">
<revproxy suburl="(.*)" dest="`+b.URL+`/\1"/>
</site>
<redirect suburl="old" dest="/app/new"/>
</host>`, func(cfg *xmlconf.Config) (*accesslog.Logs, error) {
				return accesslog.OpenLogs(cfg.LogDir, tt.level, io.Discard, io.Discard)
			})
			fill := strings.NewReplacer(
				"{{host}}", fmt.Sprint(lineOf(t, r.file, "<host ")),
				"{{site}}", fmt.Sprint(lineOf(t, r.file, "<site ")),
				"{{proxy}}", fmt.Sprint(lineOf(t, r.file, "<revproxy ")),
				"{{redirect}}", fmt.Sprint(lineOf(t, r.file, "<redirect ")),
				"{{backend}}", regexp.QuoteMeta(bhp))

			// A keep-alive connection takes the one <maxconnected> slot;
			// a second one waits until it closes.
			first, err := net.Dial("tcp", r.addr(0))
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(first, "GET /app/x?q=1 HTTP/1.1\r\nHost: h\r\n\r\n")
			first.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := http.ReadResponse(bufio.NewReader(first), nil); err != nil {
				t.Fatalf("first request: %v", err)
			}
			second, err := net.Dial("tcp", r.addr(0))
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(second, "GET /old HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
			first.Close()
			second.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(second), nil)
			second.Close()
			if err != nil || resp.StatusCode != http.StatusMovedPermanently {
				t.Fatalf("second request: %v %v", resp, err)
			}
			if resp, _ := get(t, r.addr(0), "/missing", "h"); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("/missing: %d", resp.StatusCode)
			}
			if err := r.srv.Reload(""); err != nil {
				t.Fatal(err)
			}

			data, err := os.ReadFile(filepath.Join(dir, "warnings.log"))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.present {
				p = fill.Replace(p)
				if !regexp.MustCompile(`(?m)^\S+ \S+ ` + p).Match(data) {
					t.Errorf("no line matching %q in warnings.log:\n%s", p, data)
				}
			}
			for _, p := range tt.absent {
				p = fill.Replace(p)
				if regexp.MustCompile(p).Match(data) {
					t.Errorf("a line matches %q in warnings.log:\n%s", p, data)
				}
			}
			waitUntil(t, "three lines in access.log", func() bool {
				data, _ := os.ReadFile(filepath.Join(dir, "access.log"))
				return strings.Count(string(data), "\n") >= 3
			})
			r.srv.Logs.Close() // the access lines are written out
			access, err := os.ReadFile(filepath.Join(dir, "access.log"))
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(access), "\n"); n != 3 {
				t.Errorf("access.log has %d lines, want 3 at every level:\n%s", n, access)
			}
		})
	}
}

// TestVerbosityNoCostWhenOff checks that a level without per-request
// lines costs a request nothing: -v allocates what the default level
// allocates, and -vv more (it builds its line). Allocations are averaged
// over many requests: a few come and go with the access log's buffer and
// clock, less than one per request.
func TestVerbosityNoCostWhenOff(t *testing.T) {
	cfg, err := xmlconf.Parse("t.conf", []byte(`<ocsigen><server><port>80</port>`+extensionLines+`
<host><redirect suburl="old" dest="/new"/></host></server></ocsigen>`))
	if err != nil {
		t.Fatal(err)
	}
	const runs = 2000
	allocs := func(level int) float64 {
		logs, err := accesslog.OpenLogs("", level, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		defer logs.Close()
		srv, err := New(cfg, logs, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", "/old", nil)
		req.RemoteAddr = "127.0.0.1:4000"
		for range 10 { // warm up pools and buffers
			srv.Handler.ServeHTTP(httptest.NewRecorder(), req)
		}
		// No collection meanwhile: it would empty the sync.Pools.
		defer debug.SetGCPercent(debug.SetGCPercent(-1))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			srv.Handler.ServeHTTP(httptest.NewRecorder(), req)
		}
		runtime.ReadMemStats(&after)
		return float64(after.Mallocs-before.Mallocs) / runs
	}
	normal, verbose, very := allocs(accesslog.Normal), allocs(accesslog.Verbose), allocs(accesslog.VeryVerbose)
	t.Logf("allocations per request: default %.2f, -v %.2f, -vv %.2f", normal, verbose, very)
	if d := verbose - normal; d > 0.5 || d < -0.5 {
		t.Errorf("allocations per request: %.2f at -v, %.2f by default; want the same", verbose, normal)
	}
	if very < normal+1 {
		t.Errorf("allocations per request: %.2f at -vv, %.2f by default; want more (the line is built)", very, normal)
	}
}
