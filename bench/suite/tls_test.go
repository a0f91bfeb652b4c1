package main

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// TestTLSConfigs: with TLS on, the certificate files load as a key pair,
// and each target's configuration serves HTTPS with them; with it off,
// none mentions them.
func TestTLSConfigs(t *testing.T) {
	for _, on := range []bool{false, true} {
		s := &suite{portBase: 18300, backendPort: 18300, idleConns: 10, fdLimit: 100, proxyNCPU: 1, run: t.TempDir(), tls: on}
		if on {
			if err := s.makeCert(); err != nil {
				t.Fatal(err)
			}
			if _, err := tls.LoadX509KeyPair(s.certFile, s.keyFile); err != nil {
				t.Fatalf("cert.pem and key.pem: %v", err)
			}
			if _, err := tls.LoadX509KeyPair(s.pemFile, s.pemFile); err != nil {
				t.Fatalf("cert+key.pem: %v", err)
			}
		}
		oc := s.ocsiproxyConf(&target{name: "ocsiproxy", kind: "ocsiproxy", port: 18301}, "/tmp/x")
		cfg, err := xmlconf.Parse("bench.conf", []byte(oc))
		if err != nil {
			t.Fatalf("tls %v: %v\n%s", on, err, oc)
		}
		if len(cfg.Ports) != 1 || cfg.Ports[0].Addr != "127.0.0.1:18301" {
			t.Fatalf("tls %v: ports %+v in\n%s", on, cfg.Ports, oc)
		}
		if cfg.Ports[0].HTTPS != on || (cfg.SSL != nil) != on {
			t.Errorf("tls %v: ocsiproxy HTTPS %v, <ssl> %+v:\n%s", on, cfg.Ports[0].HTTPS, cfg.SSL, oc)
		}
		if on && cfg.SSL != nil && (cfg.SSL.Certificate != s.certFile || cfg.SSL.PrivateKey != s.keyFile) {
			t.Errorf("ocsiproxy's ssl files %q, %q; want %q, %q", cfg.SSL.Certificate, cfg.SSL.PrivateKey, s.certFile, s.keyFile)
		}
		ng := s.nginxConf(&target{name: "nginx", kind: "nginx", port: 18302}, "/tmp/x")
		wantNg := []string{"listen 127.0.0.1:18302 backlog=4096;"}
		if on {
			wantNg = []string{"listen 127.0.0.1:18302 ssl backlog=4096;", "ssl_certificate " + s.certFile + ";", "ssl_certificate_key " + s.keyFile + ";"}
		}
		for _, w := range wantNg {
			if !strings.Contains(ng, w) {
				t.Errorf("tls %v: nginx has no %q:\n%s", on, w, ng)
			}
		}
		ha := s.haproxyConf(&target{name: "haproxy", kind: "haproxy", port: 18303})
		wantHa := "    bind 127.0.0.1:18303\n    http-request set-header X-Forwarded-Proto http\n"
		if on {
			wantHa = "    bind 127.0.0.1:18303 ssl crt " + s.pemFile + " alpn http/1.1\n    http-request set-header X-Forwarded-Proto https\n"
		}
		if !strings.Contains(ha, wantHa) {
			t.Errorf("tls %v: HAProxy has no %q:\n%s", on, wantHa, ha)
		}
		if !on && (strings.Contains(oc+ng+ha, "ssl") || strings.Contains(oc, "HTTPS")) {
			t.Errorf("TLS off, yet a configuration mentions it:\n%s\n%s\n%s", oc, ng, ha)
		}
	}
}
