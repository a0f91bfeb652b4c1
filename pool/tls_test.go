package pool

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/youmark/pkcs8"

	"github.com/ocsiproxy/ocsiproxy/internal/testcert"
)

// genCert returns a self-signed certificate (a CA too) for names (IP
// addresses or DNS names) and its key, in PEM.
func genCert(t *testing.T, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := testcert.New(time.Hour, names...)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
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
	encKeyFile := write("client-enc.key", encryptKey(t, cliKey, "s3cret"))
	pwFile := write("password", []byte("s3cret\n"))
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
		{"encrypted client key, password", `cacertfile="` + ca + `" certfile="` + cliCertFile + `" keyfile="` + encKeyFile + `" password="s3cret"`, "sni= version=304 client=1 proto=HTTP/1.1"},
		{"encrypted client key, password_file", `cacertfile="` + ca + `" certfile="` + cliCertFile + `" keyfile="` + encKeyFile + `" password_file="` + pwFile + `"`, "sni= version=304 client=1 proto=HTTP/1.1"},
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

// encryptKey returns keyPEM (an "EC PRIVATE KEY") as an encrypted PKCS#8
// "ENCRYPTED PRIVATE KEY" (PBES2, PBKDF2, AES-256-CBC), as
// openssl pkcs8 -topk8 -v2 aes-256-cbc writes it.
func encryptKey(t *testing.T, keyPEM []byte, password string) []byte {
	t.Helper()
	b, _ := pem.Decode(keyPEM)
	key, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	der, err := pkcs8.MarshalPrivateKey(key, []byte(password), nil)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})
}

// TestTLSKeyAndVersionErrors: an encrypted key without its password (or
// with a wrong one), a password for a clear key, a legacy encrypted PEM
// key and a versions list with a gap are refused with their positions
// and what to do.
func TestTLSKeyAndVersionErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert, key := genCert(t, "client.example")
	certFile, keyFile := write("c.pem", cert), write("c.key", key)
	encFile := write("enc.key", encryptKey(t, key, "right"))
	legacy := write("legacy.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"}, Bytes: []byte("opaque")}))
	pw := write("pw", []byte("right\n"))
	tests := []struct{ name, tls, want string }{
		{"encrypted, no password", `certfile="` + certFile + `" keyfile="` + encFile + `"`,
			`t.conf:4:40: <tls>: keyfile "` + encFile + `" is encrypted: give password= or password_file= in <tls>, or decrypt it (openssl pkey -in ` + encFile + ` -out key.pem)`},
		{"encrypted, wrong password", `certfile="` + certFile + `" keyfile="` + encFile + `" password="wrong"`,
			`t.conf:4:40: <tls>: keyfile "` + encFile + `": pkcs8: incorrect password`},
		{"clear key with a password", `certfile="` + certFile + `" keyfile="` + keyFile + `" password="x"`,
			`t.conf:4:40: <tls>: keyfile "` + keyFile + `" is not encrypted: remove password or password_file`},
		{"legacy encrypted PEM", `certfile="` + certFile + `" keyfile="` + legacy + `" password="x"`,
			`t.conf:4:40: <tls>: keyfile "` + legacy + `": a legacy encrypted PEM key (Proc-Type: 4,ENCRYPTED) is not supported (its encryption is unauthenticated); ` +
				`convert it to encrypted PKCS#8 (openssl pkcs8 -topk8 -v2 aes-256-cbc -in ` + legacy + ` -out key.p8) and give password=, or decrypt it (openssl pkey -in ` + legacy + ` -out key.pem)`},
		{"password and password_file", `certfile="` + certFile + `" keyfile="` + encFile + `" password="right" password_file="` + pw + `"`,
			`t.conf:4:40: <tls>: password="right": give password or password_file, not both`},
		{"missing password_file", `certfile="` + certFile + `" keyfile="` + encFile + `" password_file="` + dir + `/none"`,
			`t.conf:4:40: <tls>: password_file="` + dir + `/none": open ` + dir + `/none: no such file or directory`},
		{"password without a key", `password="x"`, `t.conf:4:40: <tls>: password without certfile and keyfile`},
		{"versions with a gap", `versions="tlsv1 tlsv1.3"`,
			`t.conf:4:40: <tls>: versions="tlsv1 tlsv1.3": tlsv1.1 is left out between tlsv1 and tlsv1.3: Go's TLS takes a range of versions, so list every version from the lowest to the highest`},
		{"versions with a gap, commas", `versions="tlsv1.1,tlsv1.3"`,
			`t.conf:4:40: <tls>: versions="tlsv1.1,tlsv1.3": tlsv1.2 is left out between tlsv1.1 and tlsv1.3: Go's TLS takes a range of versions, so list every version from the lowest to the highest`},
		{"versions without a gap", `versions="tlsv1.3 tlsv1.1 tlsv1.2"`, ``},
		{"one version, two spellings", `versions="tlsv1 tlsv1.0"`, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := parsePoolConfig(t, `<upstream url="https://b.example:8443"><tls `+tt.tls+`/></upstream>`)
			if got := errs.Error(); got != tt.want {
				t.Errorf("errors:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}
