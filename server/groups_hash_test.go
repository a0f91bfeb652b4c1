package server

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/dryrun"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// TestGroupDryRunHashed checks that, for groups balanced by a hash
// policy, the server --dry-run names is the one the live server sends the
// request to (every server up), for a spread of keys.
func TestGroupDryRunHashed(t *testing.T) {
	var backends []*backend
	for range 3 {
		backends = append(backends, newBackend(t, nil))
	}
	servers := ""
	for _, b := range backends {
		servers += fmt.Sprintf(`<server url="%s"/>`, b.URL)
	}
	for _, balance := range []string{"hash:header:X-User", "hash:uri", "hash:cookie:sid"} {
		t.Run(balance, func(t *testing.T) {
			dir := t.TempDir()
			r := start(t, dir, fmt.Sprintf(`<port>127.0.0.1:0</port>
<extension findlib-package="ocsigenserver.ext.revproxy"><upstream name="api" balance="%s">%s</upstream></extension>
<host><revproxy suburl="(.*)" dest="http://api/\1"/></host>`, balance, servers))
			cfg, err := xmlconf.Load(r.file)
			if err != nil {
				t.Fatal(err)
			}
			dr, err := dryrun.New(cfg, engine.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer dr.Close()
			seen := map[string]bool{}
			for i := range 24 {
				path := fmt.Sprintf("/item/%d", i)
				key := fmt.Sprintf("user-%d", i)
				res, err := dr.Run(dryrun.Request{URL: "http://h" + path, Headers: []string{"X-User: " + key, "Cookie: sid=" + key}})
				if err != nil {
					t.Fatal(err)
				}
				want := res.Decision.Server
				if want == "" {
					t.Fatalf("%s: dry run names no server: %s", path, res.Decision)
				}
				seen[want] = true
				counts := make([]int, len(backends))
				for j, b := range backends {
					counts[j] = b.count()
				}
				resp, _ := get(t, r.addr(0), path, "h", "X-User: "+key, "Cookie: sid="+key)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: live status %d", path, resp.StatusCode)
				}
				for j, b := range backends {
					if b.count() > counts[j] && b.URL != want {
						t.Errorf("%s: the live request went to %s, the dry run says %s", path, b.URL, want)
					}
				}
			}
			if len(seen) < 2 {
				t.Errorf("24 keys all went to %v: the spread is too small to compare", seen)
			}
		})
	}
}
