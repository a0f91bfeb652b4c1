package pool

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

func TestSmoke(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	defer ts.Close()
	s := DefaultSettings(0)
	s.Workers = 2
	s.PipelineDepth = 8
	p := New(Config{Defaults: s})
	defer p.Close()
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/%d", ts.URL, i), nil)
			resp, err := p.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != fmt.Sprintf("hello /%d", i) {
				t.Errorf("got %q", b)
			}
		}()
	}
	wg.Wait()
	t.Logf("%+v", p.Stats())
}
