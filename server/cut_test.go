package server

import (
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// TestCutRequestsLogged checks the status logged for a request that did
// not get its answer: 503 with the rule when the server cut it at
// <shutdowntimeout> (plain and HTTPS ports), 499 when the client went
// away.
func TestCutRequestsLogged(t *testing.T) {
	cases := []struct {
		name  string
		https bool
		// leave makes the client go away instead of the server stopping.
		leave bool
		want  string
	}{
		{"server cut, http", false, false, `"GET /slow HTTP/1.1" 503 0 "-" "-" rule=`},
		{"server cut, https", true, false, `"GET /slow HTTP/1.1" 503 0 "-" "-" rule=`},
		{"client left", false, true, `"GET /slow HTTP/1.1" 499 0 "-" "-" rule=`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			started := make(chan struct{}, 1)
			release := make(chan struct{})
			defer close(release)
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				started <- struct{}{}
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			port := `<port>127.0.0.1:0</port>`
			var roots *x509.CertPool
			if tc.https {
				var cert, key string
				cert, key, roots = selfSigned(t, dir)
				port = `<port protocol="HTTPS">127.0.0.1:0</port><ssl><certificate>` + cert + `</certificate><privatekey>` + key + `</privatekey></ssl>`
			}
			var logs *accesslog.Logs
			r := startWith(t, dir, port+`<logdir>`+dir+`</logdir><host><revproxy suburl="slow" dest="`+b.URL+`/"/></host>`,
				func(cfg *xmlconf.Config) (*accesslog.Logs, error) {
					var err error
					logs, err = accesslog.OpenLogs(cfg.LogDir, accesslog.Normal, io.Discard, io.Discard)
					return logs, err
				})
			cl := dial(t, r.addr(0), roots)
			if _, err := io.WriteString(cl.c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			<-started
			if tc.leave {
				cl.c.Close()
			}
			r.srv.Stop(100 * time.Millisecond)
			select {
			case <-r.done:
				r.done <- nil // for the cleanup
			case <-time.After(20 * time.Second):
				t.Fatal("Serve did not return after Stop")
			}
			logs.Close()
			data, err := os.ReadFile(filepath.Join(dir, "access.log"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), tc.want) {
				t.Errorf("access.log:\n%s\nwant a line with %q", data, tc.want)
			}
			errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
			if !tc.leave && !strings.Contains(string(errs), "503") {
				t.Errorf("errors.log:\n%s\nwant the cause of the 503", errs)
			}
		})
	}
}
