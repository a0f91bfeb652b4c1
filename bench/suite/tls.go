package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// scheme is the scheme the clients speak to the targets.
func (s *suite) scheme() string {
	if s.tls {
		return "https"
	}
	return "http"
}

// makeCert writes a self-signed ECDSA P-256 certificate for 127.0.0.1,
// valid for a day, and its key under s.run (cert.pem, key.pem, and both
// in one file, cert+key.pem, for HAProxy), and records their paths.
func (s *suite) makeCert() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "ocsiproxy bench"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("certificate: %v", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("certificate key: %v", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	s.certFile = filepath.Join(s.run, "cert.pem")
	s.keyFile = filepath.Join(s.run, "key.pem")
	s.pemFile = filepath.Join(s.run, "cert+key.pem")
	for _, f := range []struct {
		path string
		data []byte
	}{{s.certFile, certPEM}, {s.keyFile, keyPEM}, {s.pemFile, append(append([]byte{}, certPEM...), keyPEM...)}} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return err
		}
	}
	return nil
}
