package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// forgedClientHeaders are the client-address fields of SPEC.md section 7,
// as a hostile client writes them.
var forgedClientHeaders = [][2]string{
	{"X-Real-IP", "192.0.2.9"},
	{"True-Client-IP", "192.0.2.9"},
	{"CF-Connecting-IP", "192.0.2.9"},
	{"X-Client-IP", "192.0.2.9"},
	{"X-Cluster-Client-IP", "192.0.2.9"},
	{"Client-IP", "192.0.2.9"},
	{"Fastly-Client-IP", "192.0.2.9"},
	{"X-Original-Forwarded-For", "192.0.2.9"},
	{"Forwarded", "for=192.0.2.9"},
	{"X-Forwarded-Host", "evil.example"},
	{"X_Real_IP", "192.0.2.9"},
	{"X-Forwarded-For", "203.0.113.5"},
}

// TestClientAddressHeaders sends every client-address field over HTTP/1.1,
// HTTPS and HTTP/2, to a revproxy rule and to a route, from a peer that
// <allow-forward-for/> trusts and from one it does not, and checks what
// the backend receives (SPEC.md section 7).
func TestClientAddressHeaders(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, roots := selfSigned(t, dir)
	b := newBackend(t, nil)
	r := start(t, dir, fmt.Sprintf(`<extension findlib-package="ocsiproxy.ext.routes"/>
<port protocol="HTTPS">127.0.0.1:0</port><port>127.0.0.1:0</port>
<ssl><certificate>%[1]s</certificate><privatekey>%[2]s</privatekey></ssl>
<host>
  <site path="trusted"><allow-forward-for/>
    <revproxy suburl="rule/(.*)" dest="%[3]s/t/\1" forwarded="forwarded"/>
    <route path="/route" upstream="%[3]s/tr/"/>
  </site>
  <revproxy suburl="rule/(.*)" dest="%[3]s/u/\1"/>
  <route path="/route" upstream="%[3]s/ur/" forwarded="forwarded"/>
</host>`, certFile, keyFile, b.URL))
	tlsAddr, plainAddr := r.addr(0), r.addr(1)
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	h1tls := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots},
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	clients := []struct {
		name  string
		proto int
		send  func(path string) (*http.Response, string)
	}{
		{"HTTP/1.1", 1, func(path string) (*http.Response, string) {
			var lines []string
			for _, h := range forgedClientHeaders {
				lines = append(lines, h[0]+": "+h[1])
			}
			return get(t, plainAddr, path, plainAddr, lines...)
		}},
		{"HTTPS", 1, func(path string) (*http.Response, string) { return send(t, h1tls, "https://"+tlsAddr+path) }},
		{"HTTP/2", 2, func(path string) (*http.Response, string) { return send(t, h2, "https://"+tlsAddr+path) }},
	}
	for _, c := range clients {
		for _, path := range []string{"/rule/x", "/route/x", "/trusted/rule/x", "/trusted/route/x"} {
			t.Run(c.name+path, func(t *testing.T) {
				resp, body := c.send(path)
				if resp.StatusCode != 200 || resp.ProtoMajor != c.proto {
					t.Fatalf("%s %d %q, want %d.x 200", resp.Proto, resp.StatusCode, body, c.proto)
				}
				got := b.last(t).Header
				host, scheme := plainAddr, "http"
				if c.name != "HTTP/1.1" {
					host, scheme = tlsAddr, "https"
				}
				trusted := strings.HasPrefix(path, "/trusted/")
				want := map[string]string{
					"X-Forwarded-For":   "127.0.0.1",
					"X-Real-Ip":         "127.0.0.1",
					"X-Forwarded-Proto": scheme,
					"X-Forwarded-Host":  host,
				}
				if trusted {
					want = map[string]string{
						"X-Forwarded-For":          "203.0.113.5, 127.0.0.1",
						"X-Real-Ip":                "203.0.113.5",
						"X-Forwarded-Proto":        scheme,
						"X-Forwarded-Host":         "evil.example",
						"True-Client-Ip":           "192.0.2.9",
						"Cf-Connecting-Ip":         "192.0.2.9",
						"X-Client-Ip":              "192.0.2.9",
						"X-Cluster-Client-Ip":      "192.0.2.9",
						"Client-Ip":                "192.0.2.9",
						"Fastly-Client-Ip":         "192.0.2.9",
						"X-Original-Forwarded-For": "192.0.2.9",
						"Forwarded":                "for=192.0.2.9",
					}
				}
				switch path {
				case "/route/x":
					want["Forwarded"] = fmt.Sprintf(`for=127.0.0.1;proto=%s;host="%s"`, scheme, host)
				case "/trusted/rule/x":
					want["Forwarded"] = fmt.Sprintf(`for=203.0.113.5, for=127.0.0.1;proto=%s;host="%s"`, scheme, host)
				}
				for k, v := range want {
					if g := got[k]; len(g) != 1 || g[0] != v {
						t.Errorf("backend got %s: %q, want %q", k, g, v)
					}
				}
				for k, vv := range got {
					if _, ok := want[k]; ok {
						continue
					}
					for _, v := range vv {
						if strings.Contains(v, "192.0.2.9") || strings.Contains(v, "evil.example") || strings.Contains(v, "203.0.113.5") {
							t.Errorf("backend got %s: %q, a forged client address", k, v)
						}
					}
				}
			})
		}
	}
}

// send makes a GET with every forged client-address field.
func send(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range forgedClientHeaders {
		req.Header[h[0]] = []string{h[1]} // as written, not canonicalised
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}
