package server

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/dryrun"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// TestRoutesExtensionPool is issue 22's "done when": a routes-only
// configuration whose routes <extension> holds <pool workers="8"
// strategy="next_worker"/> opens at most 8 connections to the backend and
// goes round them in turn, and the module-wide timeout= applies to a
// route that sets none.
func TestRoutesExtensionPool(t *testing.T) {
	var (
		mu      sync.Mutex
		opened  int
		peers   []string // the backend connection of each request, in order
		release = make(chan struct{})
		// gate opens when 8 requests are in the backend at once, so that
		// the concurrent requests below fill every connection allowed.
		gate     = make(chan struct{})
		inflight int
	)
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		mu.Lock()
		peers = append(peers, r.RemoteAddr)
		if strings.HasPrefix(r.URL.Path, "/par/") {
			if inflight++; inflight == 8 {
				close(gate)
			}
		}
		mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/par/") {
			select {
			case <-gate:
			case <-r.Context().Done():
			}
		}
		fmt.Fprint(w, "ok")
	}))
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			opened++
			mu.Unlock()
		}
	}
	be.Start()
	defer be.Close()
	defer close(release)

	// The module-wide timeout is long enough for the concurrent requests
	// below to gather at the gate when the machine is busy (with 50 ms,
	// under go test -race beside other packages, the first ones timed out
	// before the eighth came, and the connections they closed were
	// replaced); /slow waits for it.
	addr := proxy(t, `<extension findlib-package="ocsiproxy.ext.routes" timeout="1s">
  <pool workers="8" strategy="next_worker"/>
</extension>
<host>
  <route path="/slow" upstream="`+be.URL+`/slow"/>
  <route path="/" upstream="`+be.URL+`"/>
</host>`)

	// Round robin: sequential requests go to slots 0..7, then again.
	const rounds = 3
	for i := range 8 * rounds {
		if resp, body := get(t, addr, fmt.Sprintf("/seq/%d", i), "h"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	mu.Lock()
	seq := slices.Clone(peers)
	mu.Unlock()
	first := seq[:8]
	if distinct := len(slices.Compact(slices.Sorted(slices.Values(first)))); distinct != 8 {
		t.Errorf("the first 8 requests used %d connections, want 8: %q", distinct, first)
	}
	for i := 8; i < len(seq); i++ {
		if seq[i] != seq[i-8] {
			t.Errorf("request %d went to %s, want %s (round robin over 8)", i, seq[i], seq[i-8])
		}
	}

	// Concurrent requests never open more than 8 connections.
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(fmt.Sprintf("http://%s/par/%d", addr, i))
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("request %d: %d", i, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	n := opened
	mu.Unlock()
	if n > 8 {
		t.Errorf("%d backend connections opened, want at most 8", n)
	}

	// The module-wide timeout bounds a route that sets none.
	if resp, _ := get(t, addr, "/slow", "h"); resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("/slow: got %d, want 504 from the module-wide timeout", resp.StatusCode)
	}
}

// TestUpstreamPathPrefix: an <upstream> path_prefix, or the path of its
// url, is prepended to the path of every request sent to it, by
// <revproxy> and <route> alike; --dry-run shows the path sent.
func TestUpstreamPathPrefix(t *testing.T) {
	b := newBackend(t, nil)
	other := newBackend(t, nil)
	serverXML := `<extension findlib-package="ocsiproxy.ext.routes">
  <upstream url="` + b.URL + `" path_prefix="/api/v1/"/>
  <upstream url="` + other.URL + `/"/>
</extension>
<host>
  <route path="/r" upstream="` + b.URL + `/base"/>
  <route path="/o" upstream="` + other.URL + `"/>
  <revproxy suburl="(.*)" dest="` + b.URL + `/\1"/>
</host>`
	addr := proxy(t, serverXML)
	tests := []struct {
		target string
		be     *backend
		want   string
	}{
		{"/r/x?q=1", b, "/api/v1/base/x?q=1"},
		{"/r", b, "/api/v1/base"},
		{"/plain/%20y", b, "/api/v1/plain/%20y"},
		{"/", b, "/api/v1/"},
		{"/o/z", other, "/o/z"},
	}
	for _, tt := range tests {
		resp, _ := get(t, addr, tt.target, "h")
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d", tt.target, resp.StatusCode)
			continue
		}
		if got := tt.be.last(t).Target; got != tt.want {
			t.Errorf("%s: backend got %q, want %q", tt.target, got, tt.want)
		}
	}

	src := "<ocsigen><server>\n<port>127.0.0.1:8080</port>" + extensionLines + "\n" + serverXML + "\n</server></ocsigen>\n"
	cfg, err := xmlconf.Parse("test.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	dr, err := dryrun.New(cfg, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Close()
	res, err := dr.Run(dryrun.Request{URL: "http://h/r/x"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "proxy GET " + b.URL + "/api/v1/base/x Host: " + b.hostport(); !strings.HasPrefix(res.Decision.String(), want) {
		t.Errorf("dry run: %q, want %q...", res.Decision.String(), want)
	}
	if lines := dr.PoolLines(); len(lines) != 3 || !strings.Contains(lines[1], " path_prefix=/api/v1 ") {
		t.Errorf("pool lines %q", lines)
	}
}
