package pool

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// genCert returns a self-signed certificate (a CA too) for names (IP
// addresses or DNS names) and its key, in PEM.
func genCert(t *testing.T, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: names[0]},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func certPEM(t *testing.T) []byte {
	c, _ := genCert(t, "ca.example")
	return c
}

func TestTLSUpstreams(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srvCert, srvKey := genCert(t, "127.0.0.1", "internal.example")
	cliCert, cliKey := genCert(t, "client.example")
	ca := write("ca.pem", srvCert)
	cliCertFile, cliKeyFile := write("client.pem", cliCert), write("client.key", cliKey)
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AppendCertsFromPEM(cliCert)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "sni=%s version=%x client=%d proto=%s", r.TLS.ServerName, r.TLS.Version, len(r.TLS.PeerCertificates), r.Proto)
	}))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: clientCAs}
	ts.EnableHTTP2 = true
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	defer ts.Close()
	url := ts.URL // https://127.0.0.1:port
	tests := []struct {
		name, tls, want string
	}{
		{"cacertfile", `cacertfile="` + ca + `"`, "sni= version=304 client=0 proto=HTTP/1.1"},
		{"system roots refuse", ``, "error"},
		{"verify_peer false", `verify_peer="false"`, "sni= version=304 client=0 proto=HTTP/1.1"},
		{"sni name", `cacertfile="` + ca + `" server_name_indication="internal.example"`, "sni=internal.example version=304 client=0 proto=HTTP/1.1"},
		{"wrong sni name", `cacertfile="` + ca + `" server_name_indication="other.example"`, "error"},
		{"no sni, still verified", `cacertfile="` + ca + `" server_name_indication="false"`, "sni= version=304 client=0 proto=HTTP/1.1"},
		{"client certificate", `cacertfile="` + ca + `" certfile="` + cliCertFile + `" keyfile="` + cliKeyFile + `"`, "sni= version=304 client=1 proto=HTTP/1.1"},
		{"TLS 1.2 only", `cacertfile="` + ca + `" versions="tlsv1.2" ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"`, "sni= version=303 client=0 proto=HTTP/1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, errs := parsePoolConfig(t, `<upstream url="`+url+`"><tls `+tt.tls+`/></upstream>`)
			if len(errs) != 0 {
				t.Fatal(errs)
			}
			p := New(c)
			defer p.Close()
			r := roundTrip(p, "GET", url+"/", nil)
			got := r.body
			if r.err != nil {
				got = "error"
				t.Logf("error: %v", r.err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// An https backend not listed gets the defaults: verified against
	// the system roots, so refused here...
	c, _ := parsePoolConfig(t, ``)
	p := New(c)
	defer p.Close()
	if r := roundTrip(p, "GET", url+"/", nil); r.err == nil || !strings.Contains(r.err.Error(), "certificate") {
		t.Errorf("unlisted https backend: %v, want a certificate error", r)
	}
	// ...unless <pool><tls> says otherwise.
	c, _ = parsePoolConfig(t, `<pool><tls cacertfile="`+ca+`"/></pool>`)
	p2 := New(c)
	defer p2.Close()
	if r := roundTrip(p2, "GET", url+"/x", nil); r.err != nil || !strings.HasPrefix(r.body, "sni= ") {
		t.Errorf("unlisted https backend with <pool><tls>: %v", r)
	}
}
