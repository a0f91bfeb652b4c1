package staticmod

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/stagetest"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// modTime is the modification time of every test file.
var modTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// tree makes files (name -> content; a name ending in "/" is a
// directory) under a new directory, and returns it.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, modTime, modTime); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// compileHost compiles the instructions of a host (staticmod and
// extendconfiguration elements) with serverXML as <server> options.
func compileHost(t *testing.T, serverXML, hostXML string) []stage.Stage {
	t.Helper()
	cfg, els := stagetest.Parse(t, serverXML, hostXML)
	c := &stagetest.Compiler{Cfg: cfg}
	var out []stage.Stage
	for _, e := range els {
		var s stage.Stage
		if e.Name == "static" {
			s = Compile(c, e)
		} else {
			s = CompileExtend(c, e)
		}
		if s != nil {
			out = append(out, s)
		}
	}
	if err := c.Errs.Err(); err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

type result struct {
	status  int // of the answer; 0 when unanswered
	left    int // st.Status when unanswered
	body    string
	headers http.Header
}

// serve runs the stages on a request and writes the answer.
func serve(t *testing.T, stages []stage.Stage, method, target, site string, headers ...string) result {
	t.Helper()
	st := stagetest.State(t, method, target, "files.example", site, headers...)
	if _, err := stagetest.Run(t, st, stages...); err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	if st.Answer == nil {
		return result{left: st.Status}
	}
	w := stagetest.Write(st)
	return result{status: w.Code, body: w.Body.String(), headers: w.Header()}
}

func TestStaticDir(t *testing.T) {
	root := tree(t, map[string]string{
		"index.html":       "<p>home</p>",
		"style.CSS":        "body{}",
		"data.json":        `{"a":1}`,
		"noext":            "raw",
		"a b.txt":          "space",
		"sub/page.txt":     "page",
		"empty/":           "",
		"sub2/default.htm": "default",
	})
	stages := compileHost(t, "", `<static dir="`+root+`/"/>`)
	tests := []struct {
		name, target   string
		status, left   int
		body, ctype    string
		location       string
		wantNoLastMod  bool
		wantNoAnswered bool
	}{
		{name: "file", target: "/sub/page.txt", status: 200, body: "page", ctype: "text/plain"},
		{name: "index", target: "/", status: 200, body: "<p>home</p>", ctype: "text/html"},
		{name: "extension case-insensitive", target: "/style.CSS", status: 200, body: "body{}", ctype: "text/css"},
		{name: "json", target: "/data.json", status: 200, ctype: "application/json", body: `{"a":1}`},
		{name: "unknown type", target: "/noext", status: 200, ctype: "application/octet-stream", body: "raw"},
		{name: "encoded name", target: "/a%20b.txt", status: 200, body: "space", ctype: "text/plain"},
		{name: "directory without slash", target: "/sub?x=1", status: 301, location: "http://files.example/sub/?x=1"},
		{name: "directory without index", target: "/empty/", left: 404},
		{name: "missing", target: "/nothing.html", left: 404},
		{name: "file below a file", target: "/index.html/x", left: 404},
		{name: "other index not tried", target: "/sub2/", left: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := serve(t, stages, "GET", tt.target, "")
			if r.status != tt.status || r.left != tt.left {
				t.Fatalf("GET %s: answered %d (left %d), want %d (left %d)", tt.target, r.status, r.left, tt.status, tt.left)
			}
			if r.status == 0 {
				return
			}
			if tt.body != "" && r.body != tt.body {
				t.Errorf("body %q, want %q", r.body, tt.body)
			}
			if got := r.headers.Get("Content-Type"); tt.ctype != "" && got != tt.ctype {
				t.Errorf("Content-Type %q, want %q", got, tt.ctype)
			}
			if got := r.headers.Get("Location"); got != tt.location {
				t.Errorf("Location %q, want %q", got, tt.location)
			}
			if r.status == 200 {
				if got, want := r.headers.Get("Last-Modified"), modTime.Format(http.TimeFormat); got != want {
					t.Errorf("Last-Modified %q, want %q", got, want)
				}
			}
		})
	}
}

// TestNoEscape tries to leave the root with every encoding: the request
// path is normalised by the server first (stagetest.State does it too),
// and a sub-path that would still name a file outside must never be
// served, even if a bug upstream let one through.
func TestNoEscape(t *testing.T) {
	base := tree(t, map[string]string{"secret.txt": "SECRET", "www/ok.txt": "ok", "www/sub/x.txt": "x"})
	root := filepath.Join(base, "www")
	if err := os.Symlink(filepath.Join(base, "secret.txt"), filepath.Join(root, "link.txt")); err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{
		`<static dir="` + root + `"/>`,
		`<static regexp="(.*)" dest="` + root + `/\1"/>`,
		`<static regexp="(.*)" dest="` + root + `/\1" root="` + root + `"/>`,
	} {
		stages := compileHost(t, "", `<followsymlinks value="never"/>`+form)
		// Targets the server itself can receive.
		for _, target := range []string{
			"/..%2fsecret.txt", "/sub/..%2f..%2fsecret.txt", "/%2e%2e%2fsecret.txt", "/sub%2f..%2f..%2fsecret.txt",
			"/..%5csecret.txt", "/sub/%2e%2e/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/link.txt",
			"/sub/..%252f..%252fsecret.txt", "/ok.txt%00.html", "/.%2e/secret.txt",
		} {
			p := target
			st, ok := tryState(t, p)
			if !ok {
				continue // refused by normalisation (400)
			}
			if _, err := stagetest.Run(t, st, stages...); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if st.Answer != nil {
				w := stagetest.Write(st)
				if strings.Contains(w.Body.String(), "SECRET") {
					t.Errorf("%s %s: served a file outside the root", form, target)
				}
			}
		}
		// Sub-paths no normalised request has: they must not escape either.
		for _, sub := range []string{"../secret.txt", "sub/../../secret.txt", "%2e%2e/secret.txt", "..%2fsecret.txt", "./../secret.txt", "sub/%2E%2E/%2E%2E/secret.txt", "a%00b"} {
			st := stagetest.State(t, "GET", "/ok.txt", "h", "")
			st.SubPath = sub
			if _, err := stagetest.Run(t, st, stages...); err != nil {
				t.Fatalf("%s: %v", sub, err)
			}
			if st.Answer != nil {
				if w := stagetest.Write(st); strings.Contains(w.Body.String(), "SECRET") {
					t.Errorf("%s sub-path %q: served a file outside the root", form, sub)
				}
			}
		}
	}
}

func tryState(t *testing.T, target string) (st *stage.State, ok bool) {
	t.Helper()
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	ft := &fatalCatcher{TB: t}
	st = stagetest.State(ft, "GET", target, "h", "")
	return st, !ft.failed
}

// fatalCatcher turns Fatalf into a recorded failure and a panic, so that
// a target the normaliser refuses can be skipped.
type fatalCatcher struct {
	testing.TB
	failed bool
}

func (f *fatalCatcher) Fatalf(string, ...any) { f.failed = true; panic("refused") }

// FuzzNoEscape checks that no sub-path, whatever it contains, makes
// <static dir=> answer with a file outside its directory.
func FuzzNoEscape(f *testing.F) {
	for _, s := range []string{"ok.txt", "../secret.txt", "%2e%2e/secret.txt", "..%2fsecret.txt", "sub/../../secret.txt", "a%00", "%", "sub/"} {
		f.Add(s)
	}
	base := f.TempDir()
	root := filepath.Join(base, "www")
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	os.WriteFile(filepath.Join(base, "secret.txt"), []byte("SECRET"), 0o644)
	os.WriteFile(filepath.Join(root, "ok.txt"), []byte("ok"), 0o644)
	c := &stagetest.Compiler{}
	_, els := stagetest.Parse(f, "", `<static dir="`+root+`"/>`)
	s := Compile(c, els[0])
	f.Fuzz(func(t *testing.T, sub string) {
		st := stagetest.State(t, "GET", "/", "h", "")
		st.SubPath = sub
		if _, err := stagetest.Run(t, st, s); err != nil {
			return
		}
		if st.Answer == nil {
			return
		}
		defer st.Answer.Body.Close()
		if fb, ok := st.Answer.Body.(*fileBody); ok && !within(fb.name, root) {
			t.Fatalf("sub-path %q served %s, outside %s", sub, fb.name, root)
		}
	})
}

func TestExtendConfiguration(t *testing.T) {
	root := tree(t, map[string]string{
		"index.html":       "home",
		"sub/default.htm":  "default",
		"sub/index.html":   "index",
		"list/b.txt":       "b",
		"list/a.css":       "a",
		"list/.secret":     "s",
		"list/dir/x":       "x",
		"hide/x.css":       "x",
		"hide/x.json":      "x",
		"hide/.htpasswd":   "x",
		"hide/ok.txt":      "ok",
		"forbid/x.dat":     "x",
		"types/x.foo":      "x",
		"types/README":     "x",
		"types/page.html":  "x",
		"types/data.bin":   "x",
		"types/other.html": "x",
	})
	if err := os.Symlink(filepath.Join(root, "index.html"), filepath.Join(root, "link.html")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, host, target string
		status, left       int
		body, ctype        string
	}{
		{"defaultindex order", `<defaultindex><index>default.htm</index><index>index.html</index></defaultindex>`, "/sub/", 200, 0, "default", ""},
		{"empty defaultindex", `<defaultindex/>`, "/", 0, 404, "", ""},
		{"listdirs", `<listdirs value="true"/>`, "/list/", 200, 0, "", "text/html; charset=utf-8"},
		{"listdirs false", `<listdirs value="false"/>`, "/list/", 0, 404, "", ""},
		{"hidefile extension", `<hidefile><extension ext="css"/></hidefile>`, "/hide/x.css", 0, 404, "", ""},
		{"hidefile regexp", `<hidefile><regexp regexp=".*\.json"/></hidefile>`, "/hide/x.json", 0, 404, "", ""},
		{"hidefile file", `<hidefile><file file=".htpasswd"/></hidefile>`, "/hide/.htpasswd", 0, 404, "", ""},
		{"hidefile others served", `<hidefile><extension ext="css"/></hidefile>`, "/hide/ok.txt", 200, 0, "ok", ""},
		{"forbidfile", `<forbidfile><extension ext="dat"/></forbidfile>`, "/forbid/x.dat", 0, 403, "", ""},
		{"symlink ownermatch (default)", ``, "/link.html", 200, 0, "home", ""},
		{"symlink never", `<followsymlinks value="never"/>`, "/link.html", 0, 403, "", ""},
		{"symlink always", `<followsymlinks value="always"/>`, "/link.html", 200, 0, "home", ""},
		{"contenttype extension", `<contenttype><extension ext="foo" value="text/x-foo"/></contenttype>`, "/types/x.foo", 200, 0, "", "text/x-foo"},
		{"contenttype file", `<contenttype><file file="README" value="text/plain"/></contenttype>`, "/types/README", 200, 0, "", "text/plain"},
		{"contenttype regexp from the start", `<contenttype><regexp regexp=".*/types/page" value="text/x-page"/></contenttype>`, "/types/page.html", 200, 0, "", "text/x-page"},
		{"contenttype default", `<contenttype default="application/x-unknown"/>`, "/types/data.bin", 200, 0, "", "application/x-unknown"},
		{"later entries win", `<contenttype><extension ext="html" value="a/a"/></contenttype><contenttype><extension ext="html" value="b/b"/></contenttype>`, "/types/other.html", 200, 0, "", "b/b"},
		{"charset", `<charset default="utf-8"/>`, "/types/page.html", 200, 0, "", "text/html; charset=utf-8"},
		{"charset not on binary types", `<charset default="utf-8"/>`, "/types/data.bin", 200, 0, "", "application/octet-stream"},
		{"charset by extension", `<charset><extension ext="html" value="iso-8859-1"/></charset>`, "/types/page.html", 200, 0, "", "text/html; charset=iso-8859-1"},
		{"uploaddir accepted", `<uploaddir>/tmp</uploaddir><maxuploadfilesize>2MB</maxuploadfilesize>`, "/", 200, 0, "home", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stages := compileHost(t, "", tt.host+`<static dir="`+root+`"/>`)
			r := serve(t, stages, "GET", tt.target, "")
			if r.status != tt.status || r.left != tt.left {
				t.Fatalf("GET %s: answered %d (left %d), want %d (left %d)", tt.target, r.status, r.left, tt.status, tt.left)
			}
			if tt.body != "" && r.body != tt.body {
				t.Errorf("body %q, want %q", r.body, tt.body)
			}
			if tt.ctype != "" && r.headers.Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type %q, want %q", r.headers.Get("Content-Type"), tt.ctype)
			}
		})
	}
	// The listing leaves hidden files out and escapes names.
	stages := compileHost(t, "", `<listdirs value="true"/><hidefile><file file=".secret"/></hidefile><static dir="`+root+`"/>`)
	r := serve(t, stages, "GET", "/list/", "")
	for _, want := range []string{`href="./a.css"`, `href="./b.txt"`, `href="./dir/"`, "Index of /list/"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("listing lacks %q:\n%s", want, r.body)
		}
	}
	if strings.Contains(r.body, "secret") {
		t.Errorf("listing shows a hidden file:\n%s", r.body)
	}
}

func TestStaticRegexpForms(t *testing.T) {
	root := tree(t, map[string]string{"a.txt": "A", "sub/b.txt": "B", "404.html": "not here"})
	tests := []struct {
		name, host, target string
		status, left       int
		body               string
		headers            map[string]string
	}{
		{"regexp and dest", `<static regexp="f/(.*)\.text" dest="` + root + `/\1.txt"/>`, "/f/sub/b.text", 200, 0, "B", nil},
		{"regexp does not match: next", `<static regexp="f/(.*)" dest="` + root + `/\1"/><static regexp="g/(.*)" dest="` + root + `/\1"/>`, "/g/a.txt", 200, 0, "A", nil},
		{"regexp matches the whole sub-path", `<static regexp="a" dest="` + root + `/a.txt"/>`, "/xa", 0, 404, "", nil},
		{"regexp on the decoded path", `<static regexp="(a)\.txt" dest="` + root + `/\1.txt"/>`, "/%61.txt", 200, 0, "A", nil},
		{"root bounds the file", `<static regexp="(.*)" dest="` + root + `/sub/\1" root="` + root + `/sub"/>`, "/b.txt", 200, 0, "B", nil},
		{"code answers with the status", `<static code="40." dest="` + root + `/404.html"/>`, "/missing", 404, 0, "not here", nil},
		{"code not matching", `<static code="5.." dest="` + root + `/404.html"/>`, "/missing", 0, 404, "", nil},
		{"cache seconds", `<static dir="` + root + `" cache="60"/>`, "/a.txt", 200, 0, "A", map[string]string{"Cache-Control": "max-age=60"}},
		{"cache no", `<static dir="` + root + `" cache="no"/>`, "/a.txt", 200, 0, "A", map[string]string{"Cache-Control": "no-cache", "Expires": "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stages := compileHost(t, "", tt.host)
			r := serve(t, stages, "GET", tt.target, "")
			if r.status != tt.status || r.left != tt.left {
				t.Fatalf("GET %s: answered %d (left %d), want %d (left %d)", tt.target, r.status, r.left, tt.status, tt.left)
			}
			if r.body != tt.body {
				t.Errorf("body %q, want %q", r.body, tt.body)
			}
			for k, v := range tt.headers {
				if got := r.headers.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestConditionalAndRanges(t *testing.T) {
	root := tree(t, map[string]string{"f.txt": "0123456789"})
	lastMod := modTime.Format(http.TimeFormat)
	tests := []struct {
		name, server, method string
		headers              []string
		status               int
		body                 string
		wantHeaders          map[string]string
	}{
		{"whole", "", "GET", nil, 200, "0123456789", map[string]string{"Accept-Ranges": "bytes", "Content-Length": "10"}},
		{"head", "", "HEAD", nil, 200, "", map[string]string{"Content-Length": "10"}},
		{"range", "", "GET", []string{"Range: bytes=2-4"}, 206, "234", map[string]string{"Content-Range": "bytes 2-4/10"}},
		{"range unsatisfiable", "", "GET", []string{"Range: bytes=20-"}, 416, "", nil},
		{"not modified", "", "GET", []string{"If-Modified-Since: " + lastMod}, 304, "", nil},
		{"modified since", "", "GET", []string{"If-Modified-Since: " + modTime.Add(-time.Hour).Format(http.TimeFormat)}, 200, "0123456789", nil},
		{"unmodified since fails", "", "GET", []string{"If-Unmodified-Since: " + modTime.Add(-time.Hour).Format(http.TimeFormat)}, 412, "", nil},
		{"disablepartialrequests", "<disablepartialrequests/>", "GET", []string{"Range: bytes=2-4"}, 200, "0123456789", map[string]string{"Accept-Ranges": ""}},
		{"post refused", "", "POST", nil, 405, "405 Method Not Allowed\n", map[string]string{"Allow": "GET, HEAD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stages := compileHost(t, tt.server, `<static dir="`+root+`"/>`)
			r := serve(t, stages, tt.method, "/f.txt", "", tt.headers...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d", r.status, tt.status)
			}
			if tt.status != 416 && tt.status != 412 && r.body != tt.body {
				t.Errorf("body %q, want %q", r.body, tt.body)
			}
			for k, v := range tt.wantHeaders {
				if got := r.headers.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestSettingsAreCopied(t *testing.T) {
	// A stage never changes the settings it was given: the engine restores
	// them after a site by keeping the old pointer.
	c := &stagetest.Compiler{}
	s := CompileExtend(c, stagetest.Element(t, `<hidefile><extension ext="x"/></hidefile>`))
	st := stagetest.State(t, "GET", "/", "h", "")
	before := &Settings{Index: []string{"a"}, hide: make([]denyList, 1, 10)}
	st.Files = before
	stagetest.Run(t, st, s)
	after := st.Files.(*Settings)
	if after == before || len(before.hide) != 1 || len(after.hide) != 2 {
		t.Fatalf("settings changed in place: before %+v after %+v", before, after)
	}
	if after2 := before.hide[:2]; after2[1].exts != nil {
		t.Fatalf("shared backing array written")
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ xml, want string }{
		{`<static/>`, `missing attribute "dir", "regexp" or "code"`},
		{`<static dir="/x" regexp="a" dest="b"/>`, `dir cannot be combined`},
		{`<static regexp="a"/>`, `missing attribute "dest"`},
		{`<static regexp="(" dest="/x"/>`, `regexp`},
		{`<static regexp="a" dest="/x/\1"/>`, `group \1`},
		{`<static dir="/x" cache="soon"/>`, `cache="soon"`},
		{`<static code="404" dest="/x" root="/"/>`, `root needs regexp`},
		{`<static dir="/x" other="1"/>`, `unknown attribute "other"`},
		{`<static regexp="a" dest="$u(bob/x"/>`, `dest: "$u(bob/x": "$u(" without a closing ")"`},
		{`<static regexp="(a)" dest="/x" root="$u(\1)$u(\1)"/>`, `root: "$u(\\1)$u(\\1)": more than one $u(...)`},
		{`<listdirs value="yes"/>`, `value="yes"`},
		{`<followsymlinks value="sometimes"/>`, `value="sometimes"`},
		{`<defaultindex><file>x</file></defaultindex>`, `want <index>`},
		{`<hidefile><glob pattern="*"/></hidefile>`, `unknown element <glob>`},
		{`<hidefile><regexp regexp="("/></hidefile>`, `regexp`},
		{`<contenttype><extension ext="x"/></contenttype>`, `missing attribute "value"`},
		{`<charset bogus="1"/>`, `unknown attribute "bogus"`},
		{`<maxuploadfilesize>lots</maxuploadfilesize>`, `maxuploadfilesize`},
	}
	for _, tt := range tests {
		e := stagetest.Element(t, tt.xml)
		f := CompileExtend
		if e.Name == "static" {
			f = Compile
		}
		err := stagetest.CompileErr(t, f, tt.xml)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error containing %q", tt.xml, err, tt.want)
		}
	}
}

func TestMimeFile(t *testing.T) {
	dir := tree(t, map[string]string{
		"mime.types": "# comment\ntext/x-custom  cst  CST2\napplication/json json # trailing\n\nbad-line\n",
		"www/a.cst":  "x", "www/b.cst2": "x", "www/c.html": "x",
	})
	stages := compileHost(t, `<mimefile>`+filepath.Join(dir, "mime.types")+`</mimefile>`, `<static dir="`+dir+`/www"/>`)
	for target, want := range map[string]string{"/a.cst": "text/x-custom", "/b.cst2": "text/x-custom", "/c.html": DefaultMIMEType} {
		if got := serve(t, stages, "GET", target, "").headers.Get("Content-Type"); got != want {
			t.Errorf("%s: Content-Type %q, want %q", target, got, want)
		}
	}
	// A missing <mimefile> is reported at the staticmod <extension> line.
	cfg, _ := stagetest.Parse(t, `<mimefile>/nonexistent/mime.types</mimefile><extension findlib-package="ocsigenserver.ext.staticmod"/>`, "")
	c := &stagetest.Compiler{Cfg: cfg}
	Configure(c, &cfg.Extensions[0])
	if err := c.Errs.Err(); err == nil || !strings.Contains(err.Error(), "/nonexistent/mime.types") {
		t.Errorf("missing mimefile: got %v", err)
	}
}

func TestCharset(t *testing.T) {
	root := tree(t, map[string]string{
		"a.txt": "x", "a.html": "x", "a.css": "x", "a.xml": "x", "a.svg": "x",
		"a.js": "x", "a.json": "x", "a.png": "x", "a.bin": "x", "a.ascii": "x",
	})
	static := `<static dir="` + root + `"/>`
	tests := []struct {
		name, server string
		host         string // "" for none; else the charset attribute of <host>
		body, target string
		ctype        string
	}{
		{"no setting: no charset", "", "", static, "/a.txt", "text/plain"},
		{"server charset on text", "<charset>iso-8859-2</charset>", "", static, "/a.txt", "text/plain; charset=iso-8859-2"},
		{"server charset on html", "<charset>iso-8859-2</charset>", "", static, "/a.html", "text/html; charset=iso-8859-2"},
		{"server charset on css", "<charset>iso-8859-2</charset>", "", static, "/a.css", "text/css; charset=iso-8859-2"},
		{"xml types", "<charset>utf-8</charset>", "", static, "/a.xml", "application/xml; charset=utf-8"},
		{"+xml types", "<charset>utf-8</charset>", "", static, "/a.svg", "image/svg+xml; charset=utf-8"},
		{"not on javascript", "<charset>utf-8</charset>", "", static, "/a.js", "application/javascript"},
		{"not on json", "<charset>utf-8</charset>", "", static, "/a.json", "application/json"},
		{"not on images", "<charset>utf-8</charset>", "", static, "/a.png", "image/png"},
		{"not on the default type", "<charset>utf-8</charset>", "", static, "/a.bin", DefaultMIMEType},
		{"host charset", "", "koi8-r", static, "/a.txt", "text/plain; charset=koi8-r"},
		{"host charset over server charset", "<charset>iso-8859-2</charset>", "koi8-r", static, "/a.txt", "text/plain; charset=koi8-r"},
		{"no host charset: the server's", "<charset>iso-8859-2</charset>", "", static, "/a.txt", "text/plain; charset=iso-8859-2"},
		{"host charset=\"\" removes the server's", "<charset>iso-8859-2</charset>", `""`, static, "/a.txt", "text/plain"},
		{"charset default over host charset", "", "koi8-r", `<charset default="windows-1251"/>` + static, "/a.txt", "text/plain; charset=windows-1251"},
		{"charset entry over every default", "<charset>iso-8859-2</charset>", "koi8-r", `<charset default="windows-1251"><extension ext="txt" value="us-ascii"/></charset>` + static, "/a.txt", "text/plain; charset=us-ascii"},
		{"entry set before the host default still wins", "", "koi8-r", `<charset><file file="a.html" value="us-ascii"/></charset>` + static, "/a.html", "text/html; charset=us-ascii"},
		{"entry with an empty value: none", "<charset>utf-8</charset>", "", `<charset><extension ext="txt" value=""/></charset>` + static, "/a.txt", "text/plain"},
		{"contenttype made textual gets the charset", "<charset>utf-8</charset>", "", `<contenttype><extension ext="ascii" value="text/x-ascii"/></contenttype>` + static, "/a.ascii", "text/x-ascii; charset=utf-8"},
		{"contenttype with its own charset kept", "<charset>utf-8</charset>", "", `<contenttype><extension ext="ascii" value="text/plain; charset=us-ascii"/></contenttype>` + static, "/a.ascii", "text/plain; charset=us-ascii"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stages := compileHost(t, tt.server, tt.body)
			if tt.host != "" {
				cs := tt.host
				if cs == `""` {
					cs = ""
				}
				stages = append([]stage.Stage{CharsetDefault(xmlconf.Pos{}, "host", cs)}, stages...)
			}
			r := serve(t, stages, "GET", tt.target, "")
			if r.status != 200 {
				t.Fatalf("GET %s: status %d (left %d)", tt.target, r.status, r.left)
			}
			if got := r.headers.Get("Content-Type"); got != tt.ctype {
				t.Errorf("Content-Type %q, want %q", got, tt.ctype)
			}
		})
	}
}

// TestCharsetDefaultFresh checks that the charset stage of a host gives a
// request without settings its precomputed settings, and copies settings
// it did not make.
func TestCharsetDefaultFresh(t *testing.T) {
	s := CharsetDefault(xmlconf.Pos{}, "site", "koi8-r")
	st := stagetest.State(t, "GET", "/", "h", "")
	stagetest.Run(t, st, s)
	first := st.Files.(*Settings)
	if first.charsetDefault != "koi8-r" || !first.hasCharsetDefault || len(first.Index) != 1 {
		t.Fatalf("settings %+v", first)
	}
	before := &Settings{Index: []string{"a"}, ListDirs: true}
	st.Files = before
	stagetest.Run(t, st, s)
	after := st.Files.(*Settings)
	if after == before || before.hasCharsetDefault || !after.ListDirs || after.charsetDefault != "koi8-r" {
		t.Fatalf("settings changed in place or lost: before %+v after %+v", before, after)
	}
}
