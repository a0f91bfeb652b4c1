package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// BenchmarkProxy measures one small proxied GET through the handler and
// the backend client, over loopback keep-alive connections on both
// sides. Run with -benchmem for allocations per request (client and
// backend included: compare runs, not absolutes).
func BenchmarkProxy(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("hello, world\n"))
	}))
	defer backend.Close()
	src := `<ocsigen><server><port>8080</port>` + extensionLines + `
<host hostfilter="*"><revproxy suburl="(.*)" dest="` + backend.URL + `/\1"/></host></server></ocsigen>`
	cfg, err := xmlconf.Parse("bench.conf", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	logs, err := OpenLogs("", Silent, io.Discard, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(cfg, logs, Options{})
	if err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(srv.Handler)
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := front.URL + "/index.html?x=1"
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
