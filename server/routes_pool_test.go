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

	addr := proxy(t, `<extension findlib-package="ocsiproxy.ext.routes" timeout="50ms">
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
