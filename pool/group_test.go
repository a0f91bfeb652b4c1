package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

func TestParseGroups(t *testing.T) {
	c, errs := parsePoolConfig(t, `<pool workers="8"/>
<upstream url="http://api" path_prefix="/v1" pipeline_depth="2"/>
<upstream url="http://10.0.0.3:8080" workers="3"/>
<upstream name="API" balance="hash:header:X-User" retries="2" try_duration="3s" fail_status="502 503" workers="4">
  <server url="http://10.0.0.1:8080" weight="3"/>
  <server url="http://10.0.0.2:8080" max_fails="0"/>
  <server url="http://10.0.0.3:8080" backup="true" fail_timeout="30s"/>
</upstream>
<upstream name="b"><server url="http://10.0.0.9"/><server url="https://App.Test" resolve="30"/><server url="http://app.test:81" resolve="250ms"/></upstream>`)
	if len(errs) != 0 {
		t.Fatalf("errors:\n%v", errs)
	}
	if len(c.Groups) != 2 {
		t.Fatalf("%d groups", len(c.Groups))
	}
	g := c.Groups[0]
	if g.Name != "api" || g.Balance != HashHeader || g.HashName != "X-User" || g.Retries != 2 || g.TryDuration != 3*time.Second ||
		fmt.Sprint(g.FailStatus) != "[502 503]" || len(g.Servers) != 3 {
		t.Errorf("group %+v", g)
	}
	s1, s2, s3 := g.Servers[0], g.Servers[1], g.Servers[2]
	// The group's servers: <pool>, then <upstream url="http://api">,
	// then the group's attributes; a server with its own <upstream> has
	// that one's settings.
	if s1.Weight != 3 || s1.MaxFails != 1 || s1.FailTimeout != 10*time.Second || s1.Backup || s1.Declared ||
		s1.Settings.Workers != 4 || s1.Settings.PipelineDepth != 2 {
		t.Errorf("server 1 %+v", s1)
	}
	if s2.MaxFails != 0 || s2.Weight != 1 {
		t.Errorf("server 2 %+v", s2)
	}
	if !s3.Backup || s3.FailTimeout != 30*time.Second || !s3.Declared || s3.Settings.Workers != 3 || s3.Settings.PipelineDepth != 1 {
		t.Errorf("server 3 %+v", s3)
	}
	h := parseHealth(&xmlconf.Element{Name: "health", Attrs: []xmlconf.Attr{{Name: "path", Value: "/healthz"}, {Name: "interval", Value: "1s"},
		{Name: "status", Value: "200 204-205"}, {Name: "host", Value: "api.internal"}}}, &errs)
	if h == nil || h.Path != "/healthz" || h.Interval != time.Second || h.Timeout != 2*time.Second ||
		fmt.Sprint(h.Status) != "[[200 200] [204 205]]" || h.Rise != 2 || h.Fall != 3 || h.Host != "api.internal" || len(errs) != 0 {
		t.Errorf("health %+v, errors %v", h, errs)
	}
	if b := c.Groups[1]; b.Balance != RoundRobin || b.Retries != 1 || b.TryDuration != 0 || b.Health != nil || b.Servers[0].Key != "http://10.0.0.9:80" {
		t.Errorf("group b %+v", b)
	}
	if r := c.Groups[1].Servers; r[0].Resolve != 0 || r[1].Resolve != 30*time.Second || r[1].Host != "app.test" || r[1].Key != "https://app.test:443" ||
		r[2].Resolve != 250*time.Millisecond || r[2].Host != "app.test" {
		t.Errorf("resolve: %+v %+v %+v", r[0], r[1], r[2])
	}
	tests := []struct{ host, want string }{{"api", "api"}, {"API", "api"}, {"api:80", ""}, {"b", "b"}, {"c", ""}}
	for _, tt := range tests {
		if got := c.GroupName(tt.host); got != tt.want {
			t.Errorf("GroupName(%q) = %q, want %q", tt.host, got, tt.want)
		}
	}
	f := c.PathPrefixFunc()
	if got := f("http", "api"); got != "/v1" {
		t.Errorf("path prefix of the group: %q", got)
	}
	if got := f("http", "api:80"); got != "" {
		t.Errorf("path prefix of api:80, not the group: %q", got)
	}
	lines := c.Describe()
	want := []string{
		"group api (t.conf:7): balance=hash:header:X-User retries=2 try_duration=3s fail_status=502 503",
		"  server http://10.0.0.1:8080 (t.conf:8): weight=3 max_fails=1 fail_timeout=10s workers=4 strategy=best_worker pipeline_depth=2 ",
		"  server http://10.0.0.2:8080 (t.conf:9): weight=1 max_fails=0 fail_timeout=10s workers=4 ",
		"  server http://10.0.0.3:8080 (t.conf:10): weight=1 backup max_fails=1 fail_timeout=30s (its <upstream>) workers=3 ",
		"group b (t.conf:12): balance=round_robin retries=1 try_duration=infinity",
		"  server http://10.0.0.9:80 (t.conf:12): weight=1 max_fails=1 fail_timeout=10s workers=8 ",
		"  server https://app.test:443 (t.conf:12): weight=1 max_fails=1 fail_timeout=10s resolve=30s workers=8 ",
		"  server http://app.test:81 (t.conf:12): weight=1 max_fails=1 fail_timeout=10s resolve=250ms workers=8 ",
	}
	if len(lines) != 3+len(want) {
		t.Fatalf("Describe: %q", lines)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[3+i], w) {
			t.Errorf("Describe line %d:\n got %s\nwant %s...", 3+i, lines[3+i], w)
		}
	}
}

// TestParseGroupErrors: every problem of the groups is reported, with
// its position, all at once.
func TestParseGroupErrors(t *testing.T) {
	tests := []struct{ xml, want string }{
		{`<upstream name="api" balance="fastest"><server url="http://a"/></upstream>`,
			`t.conf:4:1: <upstream name="api">: balance="fastest": want round_robin, least_conn, random_two, first, ip_hash, hash:uri, hash:header:NAME or hash:cookie:NAME`},
		{`<upstream name="api" balance="hash:header:"><server url="http://a"/></upstream>`,
			`t.conf:4:1: <upstream name="api">: balance="hash:header:": want a header name after hash:header:`},
		{`<upstream name="api"/>`, `t.conf:4:1: <upstream name="api">: no <server>`},
		{`<upstream name="api"><server url="http://a"/></upstream><upstream name="API"><server url="http://b"/></upstream>`,
			`t.conf:4:57: <upstream>: group "api" is already defined at t.conf:4:1`},
		{`<upstream name="api:80"><server url="http://a"/></upstream>`,
			`t.conf:4:1: <upstream>: name="api:80": want a host name without port (letters, digits, "-", ".", "_")`},
		{`<upstream name="api" url="http://a"/>`, `t.conf:4:1: <upstream>: give url (one upstream) or name (a group of servers), not both`},
		{`<upstream name="api" retries="-1" try_duration="soon"><server url="http://a"/></upstream>`,
			"t.conf:4:1: <upstream name=\"api\">: retries=\"-1\": want a number of retries from 0 to 100\n" +
				`t.conf:4:1: <upstream name="api">: try_duration="soon": want a duration ("5000" milliseconds, "5s") or "infinity"`},
		{`<upstream name="api" fail_status="404"><server url="http://a"/></upstream>`,
			`t.conf:4:1: <upstream name="api">: fail_status="404": want a list of 5xx statuses ("502 503")`},
		{`<upstream name="api"><server url="http://a" weight="0"/><server url="http://b" backup="yes"/><server url="http://c" max_fails="x" fail_timeout="0"/></upstream>`,
			"t.conf:4:22: <server>: weight=\"0\": want a weight from 1 to 1000\n" +
				"t.conf:4:57: <server>: backup=\"yes\": want \"true\" or \"false\"\n" +
				"t.conf:4:94: <server>: max_fails=\"x\": want a number of failures from 0 (passive health off) to 1000\n" +
				`t.conf:4:94: <server>: fail_timeout="0": want a duration ("10s", "10000" milliseconds)`},
		{`<upstream name="api"><server url="http://a/x"/><server url="ftp://b"/><server/></upstream>`,
			"t.conf:4:22: <server>: url \"http://a/x\": want no path: a server is a scheme, a host and a port\n" +
				"t.conf:4:48: <server>: url \"ftp://b\": want http://host[:port][/path] or https://host[:port][/path]\n" +
				`t.conf:4:71: <server>: missing attribute "url"`},
		{`<upstream name="api"><server url="http://a"/><server url="http://A:80"/></upstream>`,
			`t.conf:4:46: <server>: http://a:80 is already in group "api" at t.conf:4:22`},
		{`<upstream name="api"><server url="http://a" backup="true"/></upstream>`,
			`t.conf:4:1: <upstream name="api">: every <server> is a backup: at least one must not be`},
		{`<upstream name="api"><server url="http://a" resolve="0"/><server url="http://b" resolve="soon"/><server url="http://10.0.0.1" resolve="5"/><server url="http://[::1]:8080" resolve="5"/></upstream>`,
			"t.conf:4:22: <server>: resolve=\"0\": want a period: seconds (\"30\") or a duration (\"30s\", \"500ms\")\n" +
				"t.conf:4:58: <server>: resolve=\"soon\": want a period: seconds (\"30\") or a duration (\"30s\", \"500ms\")\n" +
				"t.conf:4:97: <server>: resolve=\"5\": want a host name to resolve, not the address 10.0.0.1\n" +
				`t.conf:4:140: <server>: resolve="5": want a host name to resolve, not the address ::1`},
		{`<upstream name="api"><server url="http://a"/><health/><health path="x" rise="0" status="600"/><tls/></upstream>`,
			"t.conf:4:46: <health>: missing attribute \"path\"\n" +
				"t.conf:4:55: <health>: path=\"x\": want a request target beginning with \"/\"\n" +
				"t.conf:4:55: <health>: rise=\"0\": want a number of probes from 1 to 100\n" +
				"t.conf:4:55: <health>: status=\"600\": want statuses or ranges (\"200-399\", \"200 204\")\n" +
				`t.conf:4:95: <upstream name="api">: unknown element <tls> (want <server> or <health>)`},
		{`<upstream name="api"><server url="http://a"/><health path="/healthz"/><health path="/ready" interval="0"/></upstream>`,
			"t.conf:4:71: <health>: only one is allowed in a group (the first is at t.conf:4:46)"},
		// A server in two groups has one pool of connections: its
		// connection settings must agree (its balancing ones need not).
		{`<upstream name="g1" workers="4"><server url="http://a"/></upstream>` + "\n" +
			`<upstream name="g2" workers="9"><server url="http://b"/><server url="http://A:80" weight="2"/></upstream>` + "\n" +
			`<upstream name="g3" pipeline_depth="2"><server url="http://b"/></upstream>`,
			"t.conf:5:57: <server>: http://a:80 is also in group \"g1\" at t.conf:4:33, with other connection settings (workers=9 here, workers=4 there): a server has one pool of connections; give its settings in an <upstream url=\"http://a:80\">\n" +
				`t.conf:6:40: <server>: http://b:80 is also in group "g2" at t.conf:5:33, with other connection settings (workers=1024 here, workers=9 there): a server has one pool of connections; give its settings in an <upstream url="http://b:80">`},
		{`<upstream name="api" workers="0"><server url="http://a"/></upstream>`,
			`t.conf:4:1: <upstream>: workers="0": want a number of connections from 1 to 100000`},
	}
	for _, tt := range tests {
		_, errs := parsePoolConfig(t, tt.xml)
		if got := errs.Error(); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.xml, got, tt.want)
		}
	}
}

// testGroup returns the run-time group of a config's first group, on a
// pool that opens no connection.
func testGroup(t *testing.T, xml string) *group {
	t.Helper()
	c, errs := parsePoolConfig(t, xml)
	if len(errs) != 0 {
		t.Fatalf("errors:\n%v", errs)
	}
	p := New(c)
	t.Cleanup(func() { p.Close() })
	return p.groups[c.Groups[0].Name]
}

// picks returns the servers (their hosts) chosen for n requests, each
// done before the next unless hold.
func picks(t *testing.T, g *group, n int, hold bool, req func(i int) *http.Request) []string {
	t.Helper()
	var got []string
	for i := 0; i < n; i++ {
		r := reqOrDefault(req, i)
		m, _ := g.pick(wireRequest(t, r), nil)
		if m == nil {
			t.Fatalf("pick %d: no server", i)
		}
		if !hold {
			g.release(m)
		}
		got = append(got, strings.TrimSuffix(m.host, ":80"))
	}
	return got
}

func reqOrDefault(req func(i int) *http.Request, i int) *http.Request {
	if req != nil {
		return req(i)
	}
	r, _ := http.NewRequest("GET", "http://api/", nil)
	return r
}

func TestBalancePolicies(t *testing.T) {
	servers := `<server url="http://a" weight="3"/><server url="http://b"/><server url="http://c" backup="true"/>`
	tests := []struct {
		name, balance string
		n             int
		hold          bool
		want          string
	}{
		// Smooth: a's three turns are spread, not in a row.
		{"round_robin", "round_robin", 8, false, "a a b a a a b a"},
		{"first", "first", 4, false, "a a a a"},
		// Held requests: a (weight 3) takes three for b's one; a tie
		// goes to the server after the last chosen.
		{"least_conn", "least_conn", 8, true, "a b a a b a a a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := testGroup(t, `<upstream name="api" balance="`+tt.balance+`">`+servers+`</upstream>`)
			if got := strings.Join(picks(t, g, tt.n, tt.hold, nil), " "); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	t.Run("random_two", func(t *testing.T) {
		// Of two servers, random_two always takes the less loaded: with
		// a held request on each in turn, it alternates.
		g := testGroup(t, `<upstream name="api" balance="random_two"><server url="http://a"/><server url="http://b"/></upstream>`)
		got := picks(t, g, 6, true, nil)
		for i := 2; i < len(got); i += 2 {
			if got[i] == got[i+1] {
				t.Errorf("random_two sent two held requests in a row to %s: %q", got[i], got)
			}
		}
	})
	hashed := []struct {
		balance string
		req     func(key string) *http.Request
	}{
		{"ip_hash", func(key string) *http.Request {
			r, _ := http.NewRequest("GET", "http://api/", nil)
			// ip_hash keys on the /24: one key per network.
			return r.WithContext(WithClientAddr(context.Background(), netip.MustParseAddr("10.0."+key+".1")))
		}},
		{"hash:uri", func(key string) *http.Request { r, _ := http.NewRequest("GET", "http://api/x?k="+key, nil); return r }},
		{"hash:header:X-User", func(key string) *http.Request {
			r, _ := http.NewRequest("GET", "http://api/", nil)
			r.Header.Set("X-User", key)
			return r
		}},
		{"hash:cookie:sid", func(key string) *http.Request {
			r, _ := http.NewRequest("GET", "http://api/", nil)
			r.Header.Set("Cookie", "a=b; sid="+key)
			return r
		}},
	}
	for _, tt := range hashed {
		t.Run(tt.balance, func(t *testing.T) {
			g := testGroup(t, `<upstream name="api" balance="`+tt.balance+`"><server url="http://a"/><server url="http://b"/><server url="http://c"/></upstream>`)
			seen := map[string]bool{}
			for k := 1; k <= 50; k++ {
				key := fmt.Sprint(k)
				first := picks(t, g, 1, false, func(int) *http.Request { return tt.req(key) })[0]
				again := picks(t, g, 3, false, func(int) *http.Request { return tt.req(key) })
				for _, s := range again {
					if s != first {
						t.Fatalf("key %s went to %s, then %s", key, first, s)
					}
				}
				seen[first] = true
			}
			if len(seen) != 3 {
				t.Errorf("50 keys went to %d servers of 3", len(seen))
			}
			// Without a key: round robin.
			plain, _ := http.NewRequest("GET", "http://api/", nil)
			if tt.balance != "hash:uri" {
				got := picks(t, g, 3, false, func(int) *http.Request { return plain })
				if got[0] == got[1] || got[1] == got[2] {
					t.Errorf("requests without a key: %q, want round robin", got)
				}
			}
		})
	}
}

// TestIPHashNetwork: ip_hash keys on the first three octets of an IPv4
// address and on the whole of an IPv6 one, as nginx's ip_hash: the
// clients of one /24 go to one server, while the /24s, and the IPv6
// addresses, spread over the servers.
func TestIPHashNetwork(t *testing.T) {
	keys := []struct{ addr, want string }{
		{"192.0.2.1", "192.0.2"},
		{"192.0.2.254", "192.0.2"},
		{"::ffff:192.0.2.77", "192.0.2"},
		{"10.20.30.40", "10.20.30"},
		{"2001:db8::1", "2001:db8::1"},
		{"2001:db8::2", "2001:db8::2"},
	}
	for _, tt := range keys {
		if got := ipHashKey(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("ipHashKey(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
	g := testGroup(t, `<upstream name="api" balance="ip_hash"><server url="http://a"/><server url="http://b"/><server url="http://c"/></upstream>`)
	from := func(addr string) string {
		r, _ := http.NewRequest("GET", "http://api/", nil)
		r = r.WithContext(WithClientAddr(context.Background(), netip.MustParseAddr(addr)))
		return picks(t, g, 1, false, func(int) *http.Request { return r })[0]
	}
	tests := []struct {
		name   string
		addr   func(i int) string // the i-th client of the spread
		same   bool               // whether clients 0 to 9 share one server
		spread bool               // whether 300 clients reach every server, each at least 15%
	}{
		// One /24: every client on one server.
		{"one /24", func(i int) string { return fmt.Sprintf("192.0.2.%d", i+1) }, true, false},
		// Another /24 each.
		{"/24s", func(i int) string { return fmt.Sprintf("10.%d.%d.7", i/256, i%256) }, false, true},
		// IPv6: the whole address, so neighbours spread.
		{"IPv6", func(i int) string { return fmt.Sprintf("2001:db8::%x", i+1) }, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := from(tt.addr(0))
			same := true
			for i := 1; i < 10; i++ {
				if from(tt.addr(i)) != first {
					same = false
				}
			}
			if same != tt.same {
				t.Errorf("clients 0 to 9 on one server: %t, want %t", same, tt.same)
			}
			if !tt.spread {
				return
			}
			count := map[string]int{}
			const n = 300
			for i := 0; i < n; i++ {
				count[from(tt.addr(i))]++
			}
			for _, s := range []string{"a", "b", "c"} {
				if count[s] < n*15/100 {
					t.Errorf("%d clients: %v, want each server at least 15%%", n, count)
					break
				}
			}
		})
	}
}

// TestRingConsistent: removing or adding one of N servers moves about
// 1/N of the keys, and removing one moves only the keys it had.
func TestRingConsistent(t *testing.T) {
	const keys = 20000
	mk := func(n int) (*ring, []*member) {
		var ms []*member
		var idx []int
		for i := 0; i < n; i++ {
			key := fmt.Sprintf("http://10.0.0.%d:8080", i+1)
			ms = append(ms, &member{srv: &Server{Key: key, Weight: 1}, key: key})
			idx = append(idx, i)
		}
		return newRing(ms, idx), ms
	}
	owner := func(r *ring, ms []*member, key string) string {
		i := r.walk(key, len(ms), func(int) bool { return true })
		return ms[i].srv.Key
	}
	for _, n := range []int{3, 5, 10} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			big, bigMs := mk(n)
			small, smallMs := mk(n - 1) // the last server removed
			removed := bigMs[n-1].srv.Key
			moved, onRemoved := 0, 0
			for k := 0; k < keys; k++ {
				key := fmt.Sprintf("key-%d", k)
				before, after := owner(big, bigMs, key), owner(small, smallMs, key)
				if before == removed {
					onRemoved++
				}
				if before != after {
					moved++
					if before != removed {
						t.Fatalf("key %s moved from %s, which stays", key, before)
					}
				}
			}
			frac := float64(moved) / keys
			// Adding the server back moves the same keys: 1/n of them.
			if want := 1 / float64(n); frac < want*0.6 || frac > want*1.4 {
				t.Errorf("%d servers: %.3f of the keys moved, want about %.3f", n, frac, want)
			}
			if moved != onRemoved {
				t.Errorf("moved %d keys, the removed server had %d", moved, onRemoved)
			}
		})
	}
}

// refusedAddr returns a loopback address nothing listens on.
func refusedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// groupPool returns a pool for the <extension> children xml.
func groupPool(t *testing.T, xml string) *Pool {
	t.Helper()
	c, errs := parsePoolConfig(t, xml)
	if len(errs) != 0 {
		t.Fatalf("errors:\n%v", errs)
	}
	p := New(c)
	t.Cleanup(func() { p.Close() })
	return p
}

// countingServe answers every request with name and counts the requests
// (with their bodies) in seen.
func countingServe(name string, mu *sync.Mutex, seen *[]string) func(c *rawConn) {
	return func(c *rawConn) {
		for {
			req, body, err := c.request()
			if err != nil {
				return
			}
			mu.Lock()
			*seen = append(*seen, name+" "+req.Method+" "+body)
			mu.Unlock()
			c.write(ok(name))
		}
	}
}

func TestGroupRoundTrip(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	a := newRawBackend(t, countingServe("a", &mu, &seen))
	b := newRawBackend(t, countingServe("b", &mu, &seen))
	p := groupPool(t, `<upstream name="api"><server url="http://`+a.addr+`"/><server url="http://`+b.addr+`"/></upstream>`)
	var got []string
	for i := 0; i < 4; i++ {
		r := roundTrip(p, "GET", "http://api/x", nil)
		if r.err != nil {
			t.Fatal(r.err)
		}
		got = append(got, r.body)
	}
	if strings.Join(got, " ") != "a b a b" {
		t.Errorf("answers %q", got)
	}
	// With a port, the host is not the group.
	if r := roundTrip(p, "GET", "http://api:1/x", nil); r.err == nil {
		t.Errorf("api:1 answered %v", r)
	}
}

// TestGroupRetries: what is tried again on another server, and what never
// is.
func TestGroupRetries(t *testing.T) {
	tests := []struct {
		name, method, body string
		first              string // "refused" or "close": the first server's behaviour
		want               string // the answer, or "error"
		wantSeen           string // requests seen by the backends
	}{
		{"GET refused", "GET", "", "refused", "b", "b GET "},
		{"POST refused: never sent", "POST", "data", "refused", "b", "b POST data"},
		{"GET reset before the head", "GET", "", "close", "b", "a GET |a GET |b GET "},
		{"PUT reset before the head", "PUT", "", "close", "b", "a PUT |a PUT |b PUT "},
		// A POST that the backend read, then closed without answering,
		// reaches exactly one backend, once.
		{"POST reset before the head", "POST", "data", "close", "error", "a POST data"},
		{"POST without body reset", "POST", "", "close", "error", "a POST "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []string
			first := refusedAddr(t)
			if tt.first == "close" {
				a := newRawBackend(t, func(c *rawConn) {
					req, body, err := c.request()
					if err != nil {
						return
					}
					mu.Lock()
					seen = append(seen, "a "+req.Method+" "+body)
					mu.Unlock()
				})
				first = a.addr
			}
			b := newRawBackend(t, countingServe("b", &mu, &seen))
			p := groupPool(t, `<upstream name="api" balance="first"><server url="http://`+first+`"/><server url="http://`+b.addr+`"/></upstream>`)
			var body *strings.Reader
			r := result{}
			if tt.body != "" {
				body = strings.NewReader(tt.body)
				r = roundTrip(p, tt.method, "http://api/x", body)
			} else {
				r = roundTrip(p, tt.method, "http://api/x", nil)
			}
			switch {
			case tt.want == "error" && r.err == nil:
				t.Errorf("answer %v, want an error", r)
			case tt.want != "error" && (r.err != nil || r.body != tt.want):
				t.Errorf("answer %v, want %q", r, tt.want)
			}
			mu.Lock()
			got := strings.Join(seen, "|")
			mu.Unlock()
			if got != tt.wantSeen {
				t.Errorf("backends saw %q, want %q", got, tt.wantSeen)
			}
		})
	}
}

// TestGroupPassiveHealth: max_fails failures take a server out for
// fail_timeout; then one trial request decides; backups serve only while
// no primary is up; all down is an UnavailableError (503, Retry-After).
func TestGroupPassiveHealth(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	var refuse atomic.Bool
	refuse.Store(true)
	a := newRawBackend(t, countingServe("a", &mu, &seen))
	bk := newRawBackend(t, countingServe("backup", &mu, &seen))
	p := groupPool(t, `<upstream name="api" retries="0">
<server url="http://`+a.addr+`" max_fails="2" fail_timeout="300ms"/>
<server url="http://`+bk.addr+`" backup="true" max_fails="1" fail_timeout="1h"/>
</upstream>`)
	// The primary's connections are refused while refuse is set.
	dial := p.dialer
	p.dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == a.addr && refuse.Load() {
			return nil, errors.New("refused by the test")
		}
		return dial(ctx, network, addr)
	}
	var answers []string
	step := func() {
		r := roundTrip(p, "GET", "http://api/", nil)
		switch {
		case r.err == nil:
			answers = append(answers, r.body)
		case errors.As(r.err, new(*UnavailableError)):
			answers = append(answers, "503")
		default:
			answers = append(answers, "502")
		}
	}
	step() // first failure: still up
	step() // second: out for 300 ms
	step() // the backup serves
	if got := strings.Join(answers, " "); got != "502 502 backup" {
		t.Fatalf("answers %q", got)
	}
	// The trial request after fail_timeout fails: out again.
	waitFor(t, "fail_timeout", func() bool { return trialDue(p, "api") })
	answers = nil
	step() // the trial, refused
	step() // the backup again
	refuse.Store(false)
	waitFor(t, "fail_timeout", func() bool { return trialDue(p, "api") })
	step() // the trial succeeds
	step()
	if got := strings.Join(answers, " "); got != "502 backup a a" {
		t.Fatalf("answers %q", got)
	}
	// Everything down: 503 with a Retry-After.
	bkm := p.groups["api"].members[1]
	p.groups["api"].mu.Lock()
	bkm.drained = true
	p.groups["api"].mu.Unlock()
	refuse.Store(true)
	p.CloseIdleConnections() // the next request dials
	answers = nil
	step()
	step()
	step()
	if got := strings.Join(answers, " "); got != "502 502 503" {
		t.Fatalf("answers %q", got)
	}
	r := roundTrip(p, "GET", "http://api/", nil)
	var ue *UnavailableError
	if !errors.As(r.err, &ue) || ue.RetryAfter() < time.Second || ue.RetryAfter() > time.Second {
		t.Errorf("all down: %v (retry after %v)", r.err, ue)
	}
}

// trialDue reports whether a server of group name is out and due for its
// trial request.
func trialDue(p *Pool, name string) bool {
	g := p.groups[name]
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range g.members {
		if !m.downUntil.IsZero() && !time.Now().Before(m.downUntil) {
			return true
		}
	}
	return false
}

// TestGroupFailStatus: a 5xx answer is an answer; it counts as a failure
// only when fail_status lists it, and is never retried.
func TestGroupFailStatus(t *testing.T) {
	var n atomic.Int32
	a := newRawBackend(t, func(c *rawConn) {
		for {
			if _, _, err := c.request(); err != nil {
				return
			}
			n.Add(1)
			c.write("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
		}
	})
	for _, tt := range []struct {
		failStatus string
		wantDown   bool
	}{{"", false}, {` fail_status="503"`, true}} {
		p := groupPool(t, `<upstream name="api"`+tt.failStatus+`><server url="http://`+a.addr+`"/></upstream>`)
		before := n.Load()
		r := roundTrip(p, "GET", "http://api/", nil)
		if r.err != nil || r.status != 503 || n.Load() != before+1 {
			t.Errorf("fail_status %q: %v after %d requests", tt.failStatus, r, n.Load()-before)
		}
		r = roundTrip(p, "GET", "http://api/", nil)
		if down := errors.As(r.err, new(*UnavailableError)); down != tt.wantDown {
			t.Errorf("fail_status %q: second answer %v, want down %t", tt.failStatus, r, tt.wantDown)
		}
	}
}

// TestGroupDrain: a drained server gets no new request and its request
// in flight finishes; GroupStates shows it; servers are named by index,
// url or key.
func TestGroupDrain(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	a := newRawBackend(t, countingServe("a", &mu, &seen))
	b := newRawBackend(t, countingServe("b", &mu, &seen))
	p := groupPool(t, `<upstream name="api"><server url="http://`+a.addr+`"/><server url="http://`+b.addr+`" backup="true"/></upstream>`)
	req, _ := http.NewRequest("GET", "http://api/x", nil)
	inflight, err := p.RoundTrip(req) // to a; its body stays open
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetDrained("api", "0", true); err != nil {
		t.Fatal(err)
	}
	st := p.GroupStates()
	if len(st) != 1 || st[0].Name != "api" || st[0].Balance != "round_robin" || len(st[0].Servers) != 2 {
		t.Fatalf("states %+v", st)
	}
	sa, sb := st[0].Servers[0], st[0].Servers[1]
	if sa.State != StateDraining || sa.InFlight != 1 || sa.Requests != 1 || sa.URL != "http://"+a.addr || sa.Index != 0 {
		t.Errorf("drained server %+v", sa)
	}
	if sb.State != StateUp || !sb.Backup || sb.InFlight != 0 || sb.Index != 1 {
		t.Errorf("backup %+v", sb)
	}
	for range 3 {
		if r := roundTrip(p, "GET", "http://api/y", nil); r.err != nil || r.body != "b" {
			t.Fatalf("with a drained: %v", r)
		}
	}
	if _, err := io.ReadAll(inflight.Body); err != nil {
		t.Errorf("the request in flight on the drained server: %v", err)
	}
	inflight.Body.Close()
	if s := p.GroupStates()[0].Servers[0]; s.InFlight != 0 || s.State != StateDraining {
		t.Errorf("after its body was closed: %+v", s)
	}
	if err := p.SetDrained("api", "http://"+a.addr, false); err != nil {
		t.Fatal(err)
	}
	if r := roundTrip(p, "GET", "http://api/z", nil); r.err != nil || r.body != "a" {
		t.Errorf("undrained: %v", r)
	}

	tests := []struct {
		group, server string
		want          error
	}{
		{"api", "1", nil},
		{"api", "http://" + b.addr, nil},
		{"api", "http://" + b.addr + ":80", ErrNoServer},
		{"api", "2", ErrNoServer},
		{"api", "-1", ErrNoServer},
		{"api", "", ErrNoServer},
		{"nope", "0", ErrNoGroup},
	}
	for _, tt := range tests {
		err := p.SetDrained(tt.group, tt.server, false)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("SetDrained(%q, %q) = %v, want %v", tt.group, tt.server, err, tt.want)
		}
	}
}

// TestGroupStatesDown: a server out after failures is down until its
// fail_timeout ends, with its failures counted.
func TestGroupStatesDown(t *testing.T) {
	p := groupPool(t, `<upstream name="api" retries="0">
<server url="http://`+refusedAddr(t)+`" max_fails="2" fail_timeout="1h"/>
</upstream>`)
	roundTrip(p, "GET", "http://api/", nil)
	s := p.GroupStates()[0].Servers[0]
	if s.State != StateUp || s.RecentFailures != 1 || s.Failures != 1 || s.Ejections != 0 || !s.DownUntil.IsZero() {
		t.Errorf("after one failure: %+v", s)
	}
	roundTrip(p, "GET", "http://api/", nil)
	s = p.GroupStates()[0].Servers[0]
	if s.State != StateDown || s.Failures != 2 || s.Ejections != 1 || time.Until(s.DownUntil) < 59*time.Minute {
		t.Errorf("after two failures: %+v", s)
	}
}

// TestGroupSharedServer: a server in two groups has each group's weight,
// backup, max_fails and fail_timeout, and each group's view of its
// health, over one pool of connections; a server with an <upstream url=>
// of its own may be in groups whose connection settings differ.
func TestGroupSharedServer(t *testing.T) {
	down := refusedAddr(t)
	var mu sync.Mutex
	var seen []string
	b := newRawBackend(t, countingServe("b", &mu, &seen))
	p := groupPool(t, `<upstream url="http://`+down+`" workers="2"/><upstream url="http://`+b.addr+`"/>
<upstream name="g1" retries="0" workers="4">
  <server url="http://`+down+`" weight="3" max_fails="1" fail_timeout="1h"/>
  <server url="http://`+b.addr+`"/>
</upstream>
<upstream name="g2" retries="0" workers="8" balance="first">
  <server url="http://`+down+`" max_fails="0"/>
  <server url="http://`+b.addr+`" backup="true"/>
</upstream>
<upstream name="g3" retries="0" workers="8">
  <server url="http://`+b.addr+`" weight="2"/>
</upstream>`)
	s1, s2 := p.cfg.Groups[0].Servers[0], p.cfg.Groups[1].Servers[0]
	if s1.Weight != 3 || s1.MaxFails != 1 || s1.FailTimeout != time.Hour || s2.Weight != 1 || s2.MaxFails != 0 || s2.FailTimeout != 10*time.Second {
		t.Errorf("the server's attributes: in g1 %+v, in g2 %+v", s1, s2)
	}
	if p.groups["g1"].members[0].up != p.groups["g2"].members[0].up || p.groups["g1"].members[0].up.set.Workers != 2 {
		t.Errorf("the two groups do not share the server's pool, of its own <upstream>")
	}
	if b1, b2 := p.cfg.Groups[1].Servers[1], p.cfg.Groups[2].Servers[0]; !b1.Backup || b2.Backup || b1.Weight != 1 || b2.Weight != 2 {
		t.Errorf("the other server: in g2 %+v, in g3 %+v", b1, b2)
	}
	// Two failures each: g1 takes the server out (max_fails 1), g2
	// keeps it (passive health off there).
	for _, g := range []string{"g1", "g2"} {
		for range 2 {
			roundTrip(p, "GET", "http://"+g+"/", nil)
		}
	}
	states := map[string]string{}
	for _, gs := range p.GroupStates() {
		if gs.Name != "g3" {
			states[gs.Name] = gs.Servers[0].State
		}
	}
	if states["g1"] != StateDown || states["g2"] != StateUp {
		t.Errorf("the server's state: %v, want down in g1 and up in g2", states)
	}
	// g1 now sends to b only; g2 (first) still tries the server.
	if r := roundTrip(p, "GET", "http://g1/", nil); r.err != nil || r.body != "b" {
		t.Errorf("g1 with its first server down: %v", r)
	}
	if r := roundTrip(p, "GET", "http://g2/", nil); r.err == nil {
		t.Errorf("g2, whose first server is up in its view: %v, want the connection's failure", r)
	}
}
