package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/dryrun"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestGroupProxy: a dest whose host is a group name goes to the group's
// servers, round robin, with the path prefix of <upstream url="http://api">;
// ip_hash keeps a client on one server.
func TestGroupProxy(t *testing.T) {
	a, b := newBackend(t, nil), newBackend(t, nil)
	addr := proxy(t, `<extension findlib-package="ocsigenserver.ext.revproxy">
  <upstream url="http://api" path_prefix="/v1"/>
  <upstream name="api"><server url="`+a.URL+`"/><server url="`+b.URL+`"/></upstream>
  <upstream name="sticky" balance="ip_hash"><server url="`+a.URL+`"/><server url="`+b.URL+`"/></upstream>
</extension>
<host><site path="s"><revproxy suburl="(.*)" dest="http://sticky/\1"/></site><revproxy suburl="(.*)" dest="http://api/\1"/></host>`)
	for i := 0; i < 4; i++ {
		resp, body := get(t, addr, "/x", "h")
		if resp.StatusCode != 200 || body != "backend /v1/x" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if a.count() != 2 || b.count() != 2 {
		t.Errorf("round robin: %d and %d requests", a.count(), b.count())
	}
	if got := a.last(t).Host; got != "api" {
		t.Errorf("Host sent: %q, want the group's name", got)
	}
	na, nb := a.count(), b.count()
	for i := 0; i < 4; i++ {
		if resp, _ := get(t, addr, "/s/y", "h"); resp.StatusCode != 200 {
			t.Fatalf("ip_hash: %d", resp.StatusCode)
		}
	}
	if da, db := a.count()-na, b.count()-nb; da*db != 0 || da+db != 4 {
		t.Errorf("ip_hash: one client went to both servers (%d and %d)", da, db)
	}
}

// TestGroupFailures: a POST that a backend read and dropped without an
// answer is not sent again (502); a group whose servers are all down
// answers 503 with Retry-After.
func TestGroupFailures(t *testing.T) {
	var posts atomic.Int32
	drop := oneShotBackend(t, func(_ net.Conn, _ *bufio.Reader, req *http.Request) {
		var buf [64]byte
		req.Body.Read(buf[:])
		if req.Method == "POST" {
			posts.Add(1)
		}
	})
	good := newBackend(t, nil)
	addr := proxy(t, `<extension findlib-package="ocsigenserver.ext.revproxy">
  <upstream name="drop" balance="first"><server url="http://`+drop+`"/><server url="`+good.URL+`"/></upstream>
  <upstream name="down"><server url="http://`+closedAddr(t)+`" fail_timeout="1h"/></upstream>
</extension>
<host><site path="drop"><revproxy suburl="(.*)" dest="http://drop/\1"/></site><revproxy suburl="(.*)" dest="http://down/\1"/></host>`)
	resp, _ := raw(t, addr, "POST /drop/x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndata")
	if resp.StatusCode != 502 || posts.Load() != 1 || good.count() != 0 {
		t.Errorf("dropped POST: %d, the dropping backend got %d POSTs, the other %d requests", resp.StatusCode, posts.Load(), good.count())
	}
	if resp, _ := get(t, addr, "/x", "h"); resp.StatusCode != 502 {
		t.Errorf("refused: %d, want 502", resp.StatusCode)
	}
	resp, _ = get(t, addr, "/x", "h")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("all down: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// TestGroupDryRun: --dry-run describes the groups and says which group a
// request goes to, not which server.
func TestGroupDryRun(t *testing.T) {
	cfg, err := xmlconf.Parse("d.conf", []byte(`<ocsigen><server><port>80</port>
<extension findlib-package="ocsigenserver.ext.revproxy">
<upstream name="api" balance="least_conn"><server url="http://10.0.0.1:8080" weight="2"/><server url="http://10.0.0.2:8080" backup="true"/></upstream>
</extension>
<host><revproxy suburl="(.*)" dest="http://api/\1"/></host>
</server></ocsigen>`))
	if err != nil {
		t.Fatal(err)
	}
	dr, err := dryrun.New(cfg, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Close()
	lines := dr.PoolLines()
	if len(lines) != 4 || lines[1] != "group api (d.conf:3): balance=least_conn retries=1 try_duration=infinity" ||
		!strings.HasPrefix(lines[2], "  server http://10.0.0.1:8080 (d.conf:3): weight=2 max_fails=1 fail_timeout=10s workers=1024 ") ||
		!strings.HasPrefix(lines[3], "  server http://10.0.0.2:8080 (d.conf:3): weight=1 backup ") {
		t.Errorf("pool lines:\n%s", strings.Join(lines, "\n"))
	}
	res, err := dr.Run(dryrun.Request{URL: "http://h/x"})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Decision.String(); res.Decision.Group != "api" ||
		got != "proxy GET http://api/x Host: api (group api: its server is chosen when the request is sent) [d.conf:5]" {
		t.Errorf("decision %q (group %q)", got, res.Decision.Group)
	}
}

// TestAdminUpstreams drives GET /api/upstreams and drain/undrain through
// the admin listener: a drained server gets no new request, its request
// in flight finishes; /metrics shows each server's state.
func TestAdminUpstreams(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	a := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		fmt.Fprint(w, "a")
	})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "b") })
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	r := start(t, t.TempDir(), `<port>127.0.0.1:0</port>
<extension findlib-package="ocsiproxy.ext.admin"><listen>127.0.0.1:0</listen></extension>
<extension findlib-package="ocsigenserver.ext.revproxy">
  <upstream name="api" balance="first"><server url="`+a.URL+`"/><server url="`+b.URL+`"/></upstream>
</extension>
<host><revproxy suburl="(.*)" dest="http://api/\1"/></host>`)
	fetch := adminFetch(t, r.srv.AdminAddr().String())
	type server struct {
		Index    int    `json:"index"`
		URL      string `json:"url"`
		State    string `json:"state"`
		InFlight int64  `json:"in_flight"`
		Requests uint64 `json:"requests"`
	}
	servers := func() []server {
		t.Helper()
		code, body := fetch("GET", "/api/upstreams")
		var got struct {
			Groups []struct {
				Name    string   `json:"name"`
				Balance string   `json:"balance"`
				Servers []server `json:"servers"`
			} `json:"groups"`
		}
		if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil || len(got.Groups) != 1 ||
			got.Groups[0].Name != "api" || got.Groups[0].Balance != "first" || len(got.Groups[0].Servers) != 2 {
			t.Fatalf("GET /api/upstreams: %d %v\n%s", code, err, body)
		}
		return got.Groups[0].Servers
	}
	// A request in flight on a, then a is drained.
	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + r.addr(0) + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		slow <- fmt.Sprint(resp.StatusCode, " ", string(body))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for servers()[0].InFlight != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the slow request never reached a: %+v", servers())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code, body := fetch("POST", "/api/upstreams/api/"+url.PathEscape(a.URL)+"/drain"); code != 200 || !strings.Contains(body, `"ok": true`) {
		t.Fatalf("drain: %d %s", code, body)
	}
	if s := servers(); s[0].State != "draining" || s[0].InFlight != 1 || s[0].URL != a.URL || s[1].State != "up" {
		t.Errorf("after drain: %+v", s)
	}
	for i := range 3 {
		if _, body := get(t, r.addr(0), "/x", "h"); body != "b" {
			t.Errorf("request %d with a drained: %q", i, body)
		}
	}
	releaseOnce.Do(func() { close(release) })
	if got := <-slow; got != "200 a" {
		t.Errorf("the request in flight on the drained server: %q", got)
	}
	for servers()[0].InFlight != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("in flight never went back to 0: %+v", servers())
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, metrics := fetch("GET", "/metrics")
	for _, want := range []string{
		`ocsiproxy_group_server_state{addr="",group="api",server="` + a.URL + `",state="draining"} 1`,
		`ocsiproxy_group_server_state{addr="",group="api",server="` + b.URL + `",state="up"} 1`,
		`ocsiproxy_group_server_requests_total{addr="",group="api",server="` + a.URL + `"} 1`,
		`ocsiproxy_group_server_requests_total{addr="",group="api",server="` + b.URL + `"} 3`,
		`ocsiproxy_group_server_in_flight{addr="",group="api",server="` + a.URL + `"} 0`,
		`ocsiproxy_group_server_failures_total{addr="",group="api",server="` + a.URL + `"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, body := fetch("POST", "/api/upstreams/api/0/undrain"); code != 200 {
		t.Fatalf("undrain: %d %s", code, body)
	}
	if _, body := get(t, r.addr(0), "/x", "h"); body != "a" {
		t.Errorf("undrained: %q", body)
	}
	// A drain survives a reload that keeps the server in its group.
	if code, body := fetch("POST", "/api/upstreams/api/1/drain"); code != 200 {
		t.Fatalf("drain b: %d %s", code, body)
	}
	if err := r.srv.Reload(""); err != nil {
		t.Fatal(err)
	}
	if s := servers(); s[0].State != "up" || s[1].State != "draining" || s[1].Requests != 3 {
		t.Errorf("after a reload: %+v", s)
	}
	for _, path := range []string{"/api/upstreams/api/2/drain", "/api/upstreams/nope/0/drain", "/api/upstreams/api/http%3A%2F%2Fother%3A1/undrain"} {
		if code, body := fetch("POST", path); code != 404 || !strings.Contains(body, `"ok": false`) {
			t.Errorf("POST %s: %d %s", path, code, body)
		}
	}
}

// TestGroupActiveHealth: a server whose health probe fails is taken out
// (and shown down by the admin API); a reload to a configuration without
// <health> stops the old pool's probes.
func TestGroupActiveHealth(t *testing.T) {
	var aStatus atomic.Int32
	aStatus.Store(200)
	var aProbes atomic.Int32
	a := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			aProbes.Add(1)
			w.WriteHeader(int(aStatus.Load()))
			return
		}
		fmt.Fprint(w, "a")
	})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "b") })
	conf := `<port>127.0.0.1:0</port>
<extension findlib-package="ocsiproxy.ext.admin"><listen>127.0.0.1:0</listen></extension>
<extension findlib-package="ocsigenserver.ext.revproxy">
  <upstream name="api" balance="first"><server url="` + a.URL + `"/><server url="` + b.URL + `"/>
  <health path="/healthz" interval="20ms" timeout="1s" rise="1" fall="1"/></upstream>
</extension>
<host><revproxy suburl="(.*)" dest="http://api/\1"/></host>`
	r := start(t, t.TempDir(), conf)
	deadline := time.Now().Add(10 * time.Second)
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitUntil("a probe", func() bool { return aProbes.Load() > 0 })
	if _, body := get(t, r.addr(0), "/x", "h"); body != "a" {
		t.Errorf("a healthy: %q", body)
	}
	aStatus.Store(503)
	waitUntil("a down", func() bool { return r.srv.Upstreams()[0].Servers[0].State == "down" })
	if _, body := get(t, r.addr(0), "/x", "h"); body != "b" {
		t.Errorf("a down by probes: %q", body)
	}
	resp, err := http.Get("http://" + r.srv.AdminAddr().String() + "/api/upstreams")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"state": "down"`) || !strings.Contains(string(body), `"probe_down": true`) {
		t.Errorf("/api/upstreams with a down by probes:\n%s", body)
	}
	writeConf(t, r.file, strings.Replace(conf, `<health path="/healthz" interval="20ms" timeout="1s" rise="1" fall="1"/>`, "", 1))
	if err := r.srv.Reload(""); err != nil {
		t.Fatal(err)
	}
	n := aProbes.Load()
	time.Sleep(100 * time.Millisecond) // five intervals
	if got := aProbes.Load(); got != n {
		t.Errorf("%d probes after the reload dropped <health>", got-n)
	}
	if _, body := get(t, r.addr(0), "/x", "h"); body != "a" {
		t.Errorf("after the reload (no health checks, a up): %q", body)
	}
}

// TestGroupKillBackendUnderLoad: clients loop on GETs while one of the
// two backends is killed (listener and connections closed): once passive
// health has taken it out, no client gets an error, and every client
// gets its own answer throughout.
func TestGroupKillBackendUnderLoad(t *testing.T) {
	echo := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%s %s", name, r.URL.Path) }
	}
	a, b := newBackend(t, echo("a")), newBackend(t, echo("b"))
	r := start(t, t.TempDir(), `<port>127.0.0.1:0</port>
<extension findlib-package="ocsigenserver.ext.revproxy">
  <upstream name="api"><server url="`+a.URL+`" fail_timeout="1h"/><server url="`+b.URL+`" fail_timeout="1h"/></upstream>
</extension>
<host><revproxy suburl="(.*)" dest="http://api/\1"/></host>`)
	const clients, perClient, killAt = 8, 150, 40
	type result struct {
		start time.Time
		err   string // "" for a good answer
	}
	var (
		mu      sync.Mutex
		results []result
		sent    atomic.Int32
		killed  = make(chan struct{})
		downAt  atomic.Pointer[time.Time]
		stopMon = make(chan struct{})
		monDone = make(chan struct{})
	)
	go func() { // the moment passive health takes b out
		defer close(monDone)
		for {
			select {
			case <-stopMon:
				return
			case <-time.After(time.Millisecond):
			}
			if downAt.Load() == nil && r.srv.Upstreams()[0].Servers[1].State == "down" {
				now := time.Now()
				downAt.Store(&now)
			}
		}
	}()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			for i := range perClient {
				if sent.Add(1) == killAt {
					b.Listener.Close()
					b.CloseClientConnections()
					close(killed)
				}
				path := fmt.Sprintf("/c%d/r%d", c, i)
				res := result{start: time.Now()}
				resp, err := client.Get("http://" + r.addr(0) + path)
				if err != nil {
					res.err = err.Error()
				} else {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						res.err = fmt.Sprintf("status %d", resp.StatusCode)
					} else if got := string(body); got != "a "+path && got != "b "+path {
						t.Errorf("client %d request %d got another's answer: %q", c, i, got)
					}
				}
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stopMon)
	<-monDone
	<-killed
	d := downAt.Load()
	if d == nil {
		t.Fatalf("b was never taken out: %+v", r.srv.Upstreams())
	}
	var before, after int
	for _, res := range results {
		if res.err == "" {
			continue
		}
		if res.start.After(*d) {
			after++
			t.Errorf("request started after b was taken out failed: %s", res.err)
		} else {
			before++
		}
	}
	if len(results) != clients*perClient {
		t.Errorf("%d results, want %d", len(results), clients*perClient)
	}
	if b.count() == 0 || a.count() <= b.count() {
		t.Errorf("a served %d requests, b %d: b served before it was killed, a the rest", a.count(), b.count())
	}
	t.Logf("%d requests, %d failed before b was taken out, %d after", len(results), before, after)
}

// TestGroupWebSocket: a WebSocket upgrade whose dest is a group goes
// through the engine to the servers the group's balancer picks (round
// robin), skipping a drained one, and its tunnel echoes.
func TestGroupWebSocket(t *testing.T) {
	ws := func(name string) *backend {
		return newBackend(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "websocket" {
				http.Error(w, "not an upgrade", 400)
				return
			}
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + name + ":")
			brw.Flush()
			io.Copy(conn, brw) // echo
		})
	}
	a, b := ws("a"), ws("b")
	dir := t.TempDir()
	r := start(t, dir, `<port>127.0.0.1:0</port>
<extension findlib-package="ocsigenserver.ext.revproxy">
  <upstream name="chat"><server url="`+a.URL+`"/><server url="`+b.URL+`"/></upstream>
</extension>
<host><revproxy suburl="(.*)" dest="http://chat/\1"/></host>`)
	upgrade := func() string {
		c, br, resp := sendRaw(t, r.addr(0), "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k1\r\nSec-WebSocket-Version: 13\r\n\r\n")
		defer c.Close()
		if resp.StatusCode != 101 {
			return fmt.Sprint(resp.StatusCode)
		}
		name, err := br.ReadString(':')
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "ping")
		got := make([]byte, 4)
		if _, err := io.ReadFull(br, got); err != nil || string(got) != "ping" {
			t.Fatalf("echo %q, %v", got, err)
		}
		return strings.TrimSuffix(name, ":")
	}
	var got []string
	for range 4 {
		got = append(got, upgrade())
	}
	if strings.Join(got, " ") != "a b a b" {
		t.Errorf("upgrades answered by %q, want round robin", got)
	}
	if err := r.srv.SetDrained("chat", "0", true); err != nil {
		t.Fatal(err)
	}
	got = nil
	for range 2 {
		got = append(got, upgrade())
	}
	if strings.Join(got, " ") != "b b" {
		t.Errorf("with a drained: upgrades answered by %q, want b", got)
	}
}
