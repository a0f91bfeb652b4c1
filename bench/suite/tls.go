package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/testcert"
)

// scheme is the scheme the clients speak to the targets.
func (s *suite) scheme() string {
	if s.tls {
		return "https"
	}
	return "http"
}

// makeCert writes a self-signed certificate for 127.0.0.1, valid for a
// day, and its key under s.run (cert.pem, key.pem, and both in one file,
// cert+key.pem, for HAProxy), and records their paths.
func (s *suite) makeCert() error {
	certFile, keyFile, err := testcert.Write(s.run, 24*time.Hour, "127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	s.certFile, s.keyFile = certFile, keyFile
	s.pemFile = filepath.Join(s.run, "cert+key.pem")
	return os.WriteFile(s.pemFile, append(certPEM, keyPEM...), 0o600)
}
