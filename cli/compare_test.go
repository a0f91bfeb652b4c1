package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompareAccessLog runs --compare on testdata/compare/access.log
// (Combined lines as nginx writes them, ocsiproxy's own with rule= and
// ms=, Ocsigen 5.0.1's "connection for" lines, a URL and a garbage
// line) between testdata/migration.conf and testdata/compare/new.conf,
// which moves the admin backend and makes the legacy redirect permanent,
// and compares the output with a golden file.
func TestCompareAccessLog(t *testing.T) {
	t.Chdir("..")
	log, err := os.ReadFile("testdata/compare/access.log")
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Run([]string{"-c", "testdata/compare/new.conf", "--dry-run", "--compare", "testdata/migration.conf"}, bytes.NewReader(log), &out, &errb)
	if code != 1 {
		t.Errorf("exit %d, want 1 (decisions differ); stderr:\n%s", code, errb.String())
	}
	golden(t, filepath.Join("testdata", "compare", "access.golden"), out.Bytes())
	if want := "line 7: neither a URL nor an access-log request (skipped)"; !strings.Contains(errb.String(), want) {
		t.Errorf("stderr %q, want it to name %q", errb.String(), want)
	}
}

func TestCompare(t *testing.T) {
	t.Chdir("..")
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.conf")
	os.WriteFile(broken, []byte("<ocsigen><server><port>80</port>\n<host><nope/></host></server></ocsigen>"), 0o644)
	tests := []struct {
		name     string
		args     []string
		stdin    string
		code     int
		inStdout []string
		inStderr string
	}{
		{name: "same config, whole log",
			args:  []string{"-c", "testdata/migration.conf", "--compare", "testdata/migration.conf"},
			stdin: "testdata/compare/access.log", code: 0,
			inStdout: []string{"compare: 10 requests (8 distinct): 10 same, 0 different (0 distinct); 1 skipped (not a request)"}},
		{name: "URL arguments, all the same",
			args: []string{"-c", "testdata/compare/new.conf", "--compare", "testdata/migration.conf", "http://www.example.com/api/v2/items", "/static/x.css"},
			code: 0, inStdout: []string{"compare: 2 requests (2 distinct): 2 same, 0 different (0 distinct);"}},
		{name: "URL argument that differs",
			args: []string{"-c", "testdata/compare/new.conf", "--compare", "testdata/migration.conf", "http://www.example.com/legacy/"},
			code: 1, inStdout: []string{
				"GET http://www.example.com/legacy/ (from 127.0.0.1)\n",
				"  old: redirect 302 Location: https://old.example.com/ [testdata/migration.conf:43]\n",
				"  new: redirect 301 Location: https://old.example.com/ [testdata/compare/new.conf:42]\n",
				"compare: 1 requests (1 distinct): 0 same, 1 different (1 distinct);",
			}},
		{name: "Combined line: the first host's defaulthostname",
			args:  []string{"-c", "testdata/compare/new.conf", "--compare", "testdata/migration.conf"},
			stdin: "-", code: 1,
			inStdout: []string{"GET http://www.example.com/legacy/x (from 203.0.113.5)\n", "1 different"}},
		{name: "Combined line: --host",
			args:  []string{"-c", "testdata/compare/new.conf", "--compare", "testdata/migration.conf", "--host", "blog.example.org"},
			stdin: "-", code: 0,
			inStdout: []string{"compare: 1 requests (1 distinct): 1 same, 0 different"}},
		{name: "--from for lines without an address",
			args: []string{"-c", "testdata/compare/new.conf", "--compare", "testdata/migration.conf", "--from", "192.168.1.10", "http://www.example.com/admin/"},
			code: 1, inStdout: []string{"(from 192.168.1.10)\n  old: proxy GET http://10.1.0.5:9000/admin/ "}},
		{name: "old config broken",
			args: []string{"-c", "testdata/migration.conf", "--compare", broken, "/x"},
			code: 1, inStderr: broken + ":2:7: unknown element <nope>"},
		{name: "old config missing",
			args: []string{"-c", "testdata/migration.conf", "--compare", filepath.Join(dir, "none.conf"), "/x"},
			code: 1, inStderr: "ocsiproxy: --compare " + filepath.Join(dir, "none.conf") + ":\nxmlconf: open "},
		{name: "--host without --compare",
			args: []string{"-c", "testdata/migration.conf", "--dry-run", "--host", "h", "/x"},
			code: 2, inStderr: "ocsiproxy: --host goes with --compare"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdin string
			switch tt.stdin {
			case "":
			case "-": // one Combined line, which names no host
				stdin = `203.0.113.5 - - [05/Dec/2026:10:00:00 +0000] "GET /legacy/x HTTP/1.1" 302 5 "-" "-"` + "\n"
			default:
				b, err := os.ReadFile(tt.stdin)
				if err != nil {
					t.Fatal(err)
				}
				stdin = string(b)
			}
			var out, errb bytes.Buffer
			code := Run(tt.args, strings.NewReader(stdin), &out, &errb)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.code, out.String(), errb.String())
			}
			for _, want := range tt.inStdout {
				if !strings.Contains(out.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, out.String())
				}
			}
			if !strings.Contains(errb.String(), tt.inStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.inStderr, errb.String())
			}
		})
	}
}

// TestCompareJSON checks --json: one object per distinct request that
// differs, with both decisions, and the summary on stderr.
func TestCompareJSON(t *testing.T) {
	t.Chdir("..")
	log, err := os.ReadFile("testdata/compare/access.log")
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Run([]string{"-c", "testdata/compare/new.conf", "--compare", "testdata/migration.conf", "--json"}, bytes.NewReader(log), &out, &errb)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	var got []string
	dec := json.NewDecoder(&out)
	for dec.More() {
		var row compareRow
		if err := dec.Decode(&row); err != nil {
			t.Fatal(err)
		}
		got = append(got, row.Request+" "+row.Old.Action+" "+row.Old.Rule+" -> "+row.New.Action+" "+row.New.Rule)
	}
	want := []string{
		"GET http://www.example.com/admin/users proxy testdata/migration.conf:32 -> proxy testdata/compare/new.conf:31",
		"GET http://www.example.com/legacy/page?id=3 redirect testdata/migration.conf:43 -> redirect testdata/compare/new.conf:42",
		"GET http://www.example.com/admin/x proxy testdata/migration.conf:32 -> proxy testdata/compare/new.conf:31",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(errb.String(), "compare: 10 requests (8 distinct): 6 same, 4 different (3 distinct)") {
		t.Errorf("summary not on stderr:\n%s", errb.String())
	}
}

func TestParseLogLine(t *testing.T) {
	tests := []struct {
		line string
		want logRequest
		ok   bool
	}{
		{`203.0.113.5 - - [05/Dec/2026:10:00:00 +0000] "POST /api?x=1 HTTP/1.1" 201 5 "-" "curl/8.0"`,
			logRequest{Method: "POST", Target: "/api?x=1", From: "203.0.113.5"}, true},
		{`::1 - bob [05/Dec/2026:10:00:00 +0000] "GET http://h.example/x HTTP/1.1" 200 5 "-" "a \"b\"" rule=f.conf:3 ms=0.100`,
			logRequest{Method: "GET", Target: "http://h.example/x", From: "::1"}, true},
		{`1.2.3.4 - - [05/Dec/2026:10:00:00 +0000] "GET /a\x22b HTTP/1.1" 200 5 "-" "-"`,
			logRequest{Method: "GET", Target: `/a"b`, From: "1.2.3.4"}, true},
		{`1.2.3.4 - - [05/Dec/2026:10:00:00 +0000] "-" 400 0 "-" "-"`, logRequest{}, false},
		{`1.2.3.4 - - [05/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1 extra" 400 0 "-" "-"`, logRequest{}, false},
		{`Dec  5 14:17:00: ocsigen:access: connection for 127.0.0.1 from 127.0.0.1 (t/1): /a/b`,
			logRequest{Method: "GET", Target: "/a/b", Host: "127.0.0.1", From: "127.0.0.1"}, true},
		{`Dec  5 14:17:00: ocsigen:access: connection for h.example from 10.0.0.3 (Mozilla/5.0 (X11)) X-Forwarded-For: 1.2.3.4, 10.0.0.2: /c`,
			logRequest{Method: "GET", Target: "/c", Host: "h.example", From: "10.0.0.3", XFF: "1.2.3.4, 10.0.0.2"}, true},
		{`Dec  5 14:17:00: ocsigen:access: connection for <host not specified in the request> from 10.0.0.3 (): /`,
			logRequest{Method: "GET", Target: "/", From: "10.0.0.3"}, true},
		{`http://h.example/x?y=1`, logRequest{Target: "http://h.example/x?y=1"}, true},
		{`/x`, logRequest{Target: "/x"}, true},
		{`h.example/x`, logRequest{}, false},
		{`GET /x HTTP/1.1`, logRequest{}, false},
	}
	for _, tt := range tests {
		got, ok := parseLogLine(tt.line)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseLogLine(%q) = %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}
