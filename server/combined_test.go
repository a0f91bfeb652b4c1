package server

import (
	"compress/gzip"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// combinedBackend records what one backend of the combined config
// received.
type combinedBackend struct {
	*httptest.Server
	mu   sync.Mutex
	seen []*http.Request
}

func newCombinedBackend(t *testing.T, h http.HandlerFunc) *combinedBackend {
	b := &combinedBackend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		b.mu.Lock()
		b.seen = append(b.seen, r.Clone(r.Context()))
		b.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *combinedBackend) requests() []*http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*http.Request(nil), b.seen...)
}

// TestCombinedConfig serves testdata/combined.conf end to end: static
// files, the authenticated admin area, CORS on the API, compression and
// the three proxied backends.
func TestCombinedConfig(t *testing.T) {
	items := `[` + strings.Repeat(`{"name":"an item with a fairly long name"},`, 20) + `{"name":"last"}]`
	app := newCombinedBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			http.Redirect(w, r, "http://127.0.0.1:8081/home", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "app "+r.URL.RequestURI())
	})
	api := newCombinedBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "42")
		io.WriteString(w, items)
	})
	admin := newCombinedBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "admin "+r.URL.RequestURI())
	})

	src, err := os.ReadFile("../testdata/combined.conf")
	if err != nil {
		t.Fatal(err)
	}
	www, err := filepath.Abs("../testdata/combined/www")
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.NewReplacer(
		"127.0.0.1:8081", strings.TrimPrefix(app.URL, "http://"),
		"127.0.0.1:8082", strings.TrimPrefix(api.URL, "http://"),
		"127.0.0.1:8083", strings.TrimPrefix(admin.URL, "http://"),
		`dir="testdata/combined/www"`, `dir="`+www+`"`,
		"<port>127.0.0.1:8080</port>", "<port>127.0.0.1:0</port>",
	).Replace(string(src))
	cfg, err := xmlconf.Parse("combined.conf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	logs, err := accesslog.OpenLogs("", accesslog.Normal, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, logs, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The cases run through both front ends: net/http's server (as for
	// HTTP/2: the request's Header map has the fields) and the port, served
	// by http1 (the fields in order, the map empty).
	front := httptest.NewServer(srv.Handler)
	defer front.Close()
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() {
		cancel()
		<-served
	}()
	fronts := []struct{ name, url string }{
		{"net/http", front.URL},
		{"http1", "http://" + srv.Addrs()[0].String()},
	}
	client := &http.Client{
		Transport:     &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()

	index, _ := os.ReadFile(filepath.Join(www, "index.html"))
	css, _ := os.ReadFile(filepath.Join(www, "css", "site.css"))
	fi, _ := os.Stat(filepath.Join(www, "css", "site.css"))
	lastMod := fi.ModTime().UTC().Format(http.TimeFormat)
	login := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:correct horse battery staple"))

	tests := []struct {
		name    string
		method  string
		target  string
		headers map[string]string
		status  int
		body    string // the decoded body, when not ""
		want    map[string]string
		// location is the end of the Location wanted (the listening port
		// is in it).
		location string
		check    func(t *testing.T)
	}{
		{name: "static index", target: "/", status: 200, body: string(index), want: map[string]string{
			"Content-Type": "text/html; charset=utf-8", "Vary": "Accept-Encoding", "X-Frame-Options": "DENY", "Accept-Ranges": "bytes"}},
		{name: "static compressed", target: "/", headers: map[string]string{"Accept-Encoding": "gzip"}, status: 200, body: string(index), want: map[string]string{
			"Content-Encoding": "gzip", "Accept-Ranges": ""}},
		{name: "static conditional", target: "/css/site.css", headers: map[string]string{"If-Modified-Since": lastMod}, status: 304},
		{name: "static range", target: "/css/site.css", headers: map[string]string{"Range": "bytes=0-3"}, status: 206, body: string(css[:4])},
		{name: "hidden dot file", target: "/.env", status: 404},
		{name: "forbidden backup", target: "/index.html.bak", status: 403},
		{name: "static directory redirect", target: "/docs?v=2", status: 301, location: "/docs/?v=2"},
		{name: "missing file", target: "/nothing", status: 404},
		{name: "escape attempt", target: "/docs/..%2f..%2f..%2fcombined.conf", status: 400},
		{name: "application", target: "/app/page?x=1", status: 200, body: "app /page?x=1", check: func(t *testing.T) {
			if r := app.requests(); len(r) == 0 || r[len(r)-1].Host != strings.TrimPrefix(app.URL, "http://") {
				t.Errorf("application backend: %v", r)
			}
		}},
		{name: "application redirect rewritten", target: "/app/login", status: 302, want: map[string]string{"Location": "http://www.example.com/app/home"}},
		{name: "API with CORS, compressed", target: "/api/v1/items?limit=5", headers: map[string]string{"Origin": "https://web.example", "Accept-Encoding": "gzip, deflate"}, status: 200, body: items, want: map[string]string{
			"Access-Control-Allow-Origin": "https://web.example", "Access-Control-Allow-Credentials": "true",
			"Access-Control-Expose-Headers": "X-Request-Id", "Content-Encoding": "gzip", "Vary": "Origin, Accept-Encoding"},
			check: func(t *testing.T) {
				r := api.requests()
				last := r[len(r)-1]
				if last.URL.RequestURI() != "/items?limit=5" || last.Header.Get("X-Api-Version") != "1" || last.Header.Get("Origin") != "https://web.example" {
					t.Errorf("API backend got %s %v", last.URL.RequestURI(), last.Header)
				}
			}},
		// Pragma makes the HTTP/1 port leave the head to net/http's parser:
		// the stages then read the fields converted from its map.
		{name: "API with CORS, compressed, head parsed by net/http", target: "/api/v1/items?limit=5", headers: map[string]string{"Origin": "https://web.example", "Accept-Encoding": "gzip", "Pragma": "no-cache"}, status: 200, body: items, want: map[string]string{
			"Access-Control-Allow-Origin": "https://web.example", "Content-Encoding": "gzip", "Vary": "Origin, Accept-Encoding"}},
		{name: "static conditional, head parsed by net/http", target: "/css/site.css", headers: map[string]string{"If-Modified-Since": lastMod, "Pragma": "no-cache"}, status: 304},
		{name: "API legacy route", target: "/api/v0/users", status: 200, check: func(t *testing.T) {
			r := api.requests()
			if got := r[len(r)-1].URL.RequestURI(); got != "/legacy/users" {
				t.Errorf("API backend got %s", got)
			}
		}},
		{name: "API preflight", method: "OPTIONS", target: "/api/v1/items", headers: map[string]string{
			"Origin": "https://web.example", "Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "Content-Type"}, status: 200, want: map[string]string{
			"Access-Control-Allow-Methods": "DELETE", "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "600"}},
		{name: "API preflight, method refused", method: "OPTIONS", target: "/api/v1/items", headers: map[string]string{
			"Origin": "https://web.example", "Access-Control-Request-Method": "PATCH"}, status: 404, want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "admin without login", target: "/admin/users", status: 401, want: map[string]string{
			"WWW-Authenticate": `Basic realm="example.com administration"`, "Cache-Control": "no-store"}},
		{name: "admin with a wrong password", target: "/admin/users", headers: map[string]string{"Authorization": "Basic YWRtaW46bm8="}, status: 401},
		{name: "admin", target: "/admin/users", headers: map[string]string{"Authorization": login}, status: 200, body: "admin /users", want: map[string]string{"Cache-Control": "no-store"}},
	}
	for _, fe := range fronts {
		for _, tt := range tests {
			t.Run(fe.name+"/"+tt.name, func(t *testing.T) {
				method := tt.method
				if method == "" {
					method = "GET"
				}
				req, _ := http.NewRequest(method, fe.url+tt.target, nil)
				req.Host = "www.example.com"
				for k, v := range tt.headers {
					req.Header.Set(k, v)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != tt.status {
					b, _ := io.ReadAll(resp.Body)
					t.Fatalf("status %d, want %d\n%v\n%s", resp.StatusCode, tt.status, resp.Header, b)
				}
				var body io.Reader = resp.Body
				if resp.Header.Get("Content-Encoding") == "gzip" {
					zr, err := gzip.NewReader(resp.Body)
					if err != nil {
						t.Fatal(err)
					}
					body = zr
				}
				b, err := io.ReadAll(body)
				if err != nil {
					t.Fatal(err)
				}
				if tt.body != "" && string(b) != tt.body {
					t.Errorf("body %q, want %q", b, tt.body)
				}
				for k, v := range tt.want {
					if got := strings.Join(resp.Header.Values(k), ", "); got != v {
						t.Errorf("%s: %q, want %q", k, got, v)
					}
				}
				if loc := resp.Header.Get("Location"); !strings.HasSuffix(loc, tt.location) || !strings.HasPrefix(loc, "http://www.example.com:") && tt.location != "" {
					t.Errorf("Location %q, want http://www.example.com:PORT%s", loc, tt.location)
				}
				if tt.check != nil {
					tt.check(t)
				}
			})
		}
	}
	if n := len(admin.requests()); n != len(fronts) {
		t.Errorf("admin backend reached %d times, want once per front end (only with the right login)", n)
	}
}

// TestFileSettingsScopedToSite checks that extendconfiguration settings
// made inside a <site> end with it, as in Ocsigen, and that each host
// starts from the defaults.
func TestFileSettingsScopedToSite(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a", "list"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "list", "f.txt"), []byte("f"), 0o644)
	conf := `<ocsigen><server><port>127.0.0.1:8080</port>
<extension findlib-package="ocsigenserver.ext.staticmod"/>
<extension findlib-package="ocsigenserver.ext.extendconfiguration"/>
<host hostfilter="one">
  <site path="a"><listdirs value="true"/><static regexp="in/(.*)" dest="` + dir + `/a/\1"/></site>
  <static dir="` + dir + `"/>
</host>
<host hostfilter="two"><listdirs value="true"/><static dir="` + dir + `/nothing"/></host>
<host hostfilter="two"><static dir="` + dir + `"/></host>
</server></ocsigen>`
	cfg, err := xmlconf.Parse("scoped.conf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := accesslog.OpenLogs("", accesslog.Normal, io.Discard, io.Discard)
	srv, err := New(cfg, logs, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(srv.Handler)
	defer front.Close()
	for _, tt := range []struct {
		host, target string
		status       int
	}{
		{"one", "/a/in/list/", 200}, // listed inside the site
		{"one", "/a/list/", 404},    // the same directory after the site: not listed
		{"two", "/a/list/", 404},    // the next host starts from the defaults
	} {
		req, _ := http.NewRequest("GET", front.URL+tt.target, nil)
		req.Host = tt.host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s%s: status %d, want %d", tt.host, tt.target, resp.StatusCode, tt.status)
		}
	}
}
