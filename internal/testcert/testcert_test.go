package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"
)

// TestWrite: the files load as a key pair whose certificate names the
// IP address and the DNS name given, and verifies against itself as the
// root for either; no names is an error.
func TestWrite(t *testing.T) {
	certFile, keyFile, err := Write(t.TempDir(), time.Hour, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	for _, name := range []string{"127.0.0.1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "example.com"}); err == nil {
		t.Error("verified for a name it was not made for")
	}
	if left := time.Until(leaf.NotAfter); left < 59*time.Minute || left > time.Hour {
		t.Errorf("valid for %v more, want an hour", left)
	}
	if _, _, err := New(time.Hour); err == nil {
		t.Error("New with no names: no error")
	}
}
