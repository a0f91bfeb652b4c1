package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRecycledAnswersStayApart runs clients at once through the proxy
// with answers of every shape the engine gives back to the pool (a body,
// an empty body, a HEAD answer, 204 and 304 with no body) and checks
// that each client gets the fields and body of its own request: the
// memory of a backend request and of its answer is reused once the
// request is over (wire Release), so a reuse too early would show here
// as another request's field or body.
func TestRecycledAnswersStayApart(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Id")
		if id == "" || !strings.HasSuffix(r.URL.Path, "/"+id) {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "request for %s came with X-Id %q", r.URL.Path, id)
			return
		}
		w.Header().Set("X-Echo", id)
		switch {
		case strings.HasPrefix(r.URL.Path, "/none/"):
			w.WriteHeader(http.StatusNoContent)
		case strings.HasPrefix(r.URL.Path, "/same/"):
			w.WriteHeader(http.StatusNotModified)
		case strings.HasPrefix(r.URL.Path, "/empty/"):
			w.Header().Set("Content-Length", "0")
		default:
			io.WriteString(w, "body of "+id)
		}
	}))
	defer backend.Close()
	r := start(t, t.TempDir(), `<port>127.0.0.1:0</port><host><revproxy suburl="(.*)" dest="`+backend.URL+`/\1"/></host>`)
	base := "http://" + r.addr(0)
	const clients, each = 6, 60
	kinds := []struct{ method, prefix string }{
		{"GET", "body"}, {"HEAD", "body"}, {"GET", "empty"}, {"GET", "none"}, {"GET", "same"},
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			for i := range each {
				k := kinds[(c+i)%len(kinds)]
				id := strconv.Itoa(c*1000 + i)
				req, _ := http.NewRequest(k.method, base+"/"+k.prefix+"/"+id, nil)
				req.Header.Set("X-Id", id)
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := ""
				if k.method == "GET" && k.prefix == "body" {
					want = "body of " + id
				}
				if err != nil || resp.Header.Get("X-Echo") != id || string(body) != want {
					errs <- fmt.Errorf("%s /%s/%s: status %d, X-Echo %q, body %q (%v); want X-Echo %q, body %q",
						k.method, k.prefix, id, resp.StatusCode, resp.Header.Get("X-Echo"), body, err, id, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
