package xmlconf

import (
	"strings"
	"testing"
)

func TestReverseProxy(t *testing.T) {
	tests := []struct {
		url, port string
		dest      string // the dest of the <revproxy>; "" when refused
		addr      string
		err       string
	}{
		{"http://app:8080", "8080", `http://app:8080/\1`, ":8080", ""},
		{"http://app:8080/base/", "127.0.0.1:9000", `http://app:8080/base/\1`, "127.0.0.1:9000", ""},
		{"HTTPS://app", "[::1]:8443", `HTTPS://app/\1`, "[::1]:8443", ""},
		{"ftp://app", "8080", "", "", `--reverse-proxy:1:1: --reverse-proxy "ftp://app": want http://host[:port][/path] or https://...`},
		{"http://u@app", "8080", "", "", `want no user, query, fragment or backslash`},
		{`http://app/a\b`, "8080", "", "", `want no user, query, fragment or backslash`},
		{"http://app", "99999", "", "", `--reverse-proxy:1:1: <port>: `},
	}
	for _, tt := range tests {
		cfg, err := ReverseProxy(tt.url, tt.port)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s %s: got %v, want an error with %q", tt.url, tt.port, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %s: %v", tt.url, tt.port, err)
			continue
		}
		if len(cfg.Ports) != 1 || cfg.Ports[0].Addr != tt.addr || len(cfg.Hosts) != 1 || len(cfg.Hosts[0].Body) != 1 ||
			!cfg.HasExtension("ocsigenserver.ext.revproxy") || cfg.LogDir != "" || cfg.Timeout != DefaultTimeout {
			t.Errorf("%s %s: config %+v", tt.url, tt.port, cfg)
			continue
		}
		rp := cfg.Hosts[0].Body[0]
		if sub, _ := rp.Attr("suburl"); rp.Name != "revproxy" || sub != "(.*)" {
			t.Errorf("%s: rule %+v", tt.url, rp)
		}
		if dest, _ := rp.Attr("dest"); dest != tt.dest {
			t.Errorf("%s: dest %q, want %q", tt.url, dest, tt.dest)
		}
	}
}
