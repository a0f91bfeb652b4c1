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
	certPEM, keyPEM, err := testcert.New(24*time.Hour, "127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	s.certFile = filepath.Join(s.run, "cert.pem")
	s.keyFile = filepath.Join(s.run, "key.pem")
	s.pemFile = filepath.Join(s.run, "cert+key.pem")
	for _, f := range []struct {
		path string
		data []byte
	}{{s.certFile, certPEM}, {s.keyFile, keyPEM}, {s.pemFile, append(certPEM, keyPEM...)}} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return err
		}
	}
	return nil
}
