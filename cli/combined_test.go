package cli

import (
	"path/filepath"
	"testing"
)

// TestDryRunCombined runs --dry-run on testdata/combined.conf (static
// files, authbasic, cors, deflate, routes and revproxy together) and
// compares the traces with golden files.
func TestDryRunCombined(t *testing.T) {
	t.Chdir("..")
	cases := []struct {
		name string
		args []string
	}{
		{"combined-static", []string{"--header", "Accept-Encoding: gzip", "http://www.example.com/css/site.css"}},
		{"combined-static-hidden", []string{"http://www.example.com/.env"}},
		{"combined-api-route", []string{"http://www.example.com/api/v1/items?limit=5"}},
		{"combined-api-preflight", []string{"--method", "OPTIONS", "--header", "Origin: https://web.example", "--header", "Access-Control-Request-Method: PUT", "http://www.example.com/api/v1/items"}},
		{"combined-admin-login", []string{"http://www.example.com/admin/users"}},
		{"combined-admin-outside", []string{"--from", "203.0.113.7", "http://www.example.com/admin/users"}},
		{"combined-app", []string{"http://www.example.com/app/page"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-c", "testdata/combined.conf", "--dry-run"}, tc.args...)
			code, out, errs := run(t, args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, errs)
			}
			golden(t, filepath.Join("testdata", "dryrun", tc.name+".golden"), []byte(out))
		})
	}
}
