package engine_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/dryrun"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Nothing the loader accepts is silently ignored: every <server> option
// (xmlconf.ServerOptions, the loader's own table) and every site element
// (engine.SiteElements, the engine's extension table) either is honoured
// or is reported in Config.Notes, which --dry-run and -v print. An
// option or element added later has no case here, and the tests fail
// until one is written.

// serverOptionCases gives, for each <server> option, a snippet that sets
// it. DIR is replaced by a directory holding one <extconf> file.
var serverOptionCases = map[string]string{
	"port":                          `<port>127.0.0.1:8082</port>`,
	"ssl":                           `<ssl><certificate>c.pem</certificate><privatekey>k.pem</privatekey></ssl>`,
	"logdir":                        `<logdir>/var/log/x</logdir>`,
	"syslog":                        `<syslog>local0</syslog>`,
	"datadir":                       `<datadir>/var/lib/x</datadir>`,
	"user":                          `<user>nobody</user>`,
	"group":                         `<group>nogroup</group>`,
	"charset":                       `<charset>utf-8</charset>`,
	"findlib":                       `<findlib path="/usr/lib/ocaml"/>`,
	"extension":                     `<extension findlib-package="ocsigenserver.ext.cors"/>`,
	"require":                       `<require findlib-package="ocsigenserver.ext.redirectmod"/>`,
	"library":                       `<library findlib-package="ocsigenserver.ext.rewritemod"/>`,
	"extconf":                       `<extconf dir="DIR"/>`,
	"commandpipe":                   `<commandpipe>/run/x.cmd</commandpipe>`,
	"mimefile":                      `<mimefile>/etc/mime.types</mimefile>`,
	"uploaddir":                     `<uploaddir>/tmp</uploaddir>`,
	"maxconnected":                  `<maxconnected>10</maxconnected>`,
	"timeout":                       `<timeout>5</timeout>`,
	"clienttimeout":                 `<clienttimeout>5</clienttimeout>`,
	"servertimeout":                 `<servertimeout>5</servertimeout>`,
	"keepalivetimeout":              `<keepalivetimeout>5</keepalivetimeout>`,
	"shutdowntimeout":               `<shutdowntimeout>5</shutdowntimeout>`,
	"netbuffersize":                 `<netbuffersize>4096</netbuffersize>`,
	"filebuffersize":                `<filebuffersize>4096</filebuffersize>`,
	"maxrequestbodysize":            `<maxrequestbodysize>1MB</maxrequestbodysize>`,
	"maxuploadfilesize":             `<maxuploadfilesize>1MB</maxuploadfilesize>`,
	"maxretries":                    `<maxretries>3</maxretries>`,
	"minthreads":                    `<minthreads>2</minthreads>`,
	"maxthreads":                    `<maxthreads>4</maxthreads>`,
	"maxdetachedcomputationsqueued": `<maxdetachedcomputationsqueued>9</maxdetachedcomputationsqueued>`,
	"debugmode":                     `<debugmode/>`,
	"usedefaulthostname":            `<usedefaulthostname/>`,
	"respectpipeline":               `<respectpipeline/>`,
	"disablepartialrequests":        `<disablepartialrequests/>`,
	"host":                          `<host hostfilter="b.example"><revproxy suburl="(.*)" dest="http://127.0.0.1:8081/\1"/></host>`,
}

// serverConf is a configuration with one server option snippet.
func serverConf(snippet string) string {
	return `<ocsigen><server>
<port>127.0.0.1:8080</port>
<extension findlib-package="ocsigenserver.ext.revproxy"/>
` + snippet + `
<host><revproxy suburl="(.*)" dest="http://127.0.0.1:8081/\1"/></host>
</server></ocsigen>
`
}

// usedSelectors returns the names used after a dot (x.Name) in the
// module's non-test Go files outside xmlconf: a field of xmlconf.Config
// whose name is never used there is read by nobody. The check goes by
// name only, so it can be fooled by another field of the same name; it
// catches a field nothing reads.
func usedSelectors(t *testing.T) map[string]bool {
	t.Helper()
	used := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "xmlconf" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if s, ok := n.(*ast.SelectorExpr); ok {
				used[s.Sel.Name] = true
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return used
}

// changedFields returns the fields of Config that differ between a and b,
// leaving out Notes and Warnings.
func changedFields(a, b *xmlconf.Config) []string {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	var out []string
	for i := range va.NumField() {
		name := va.Type().Field(i).Name
		if name == "Notes" || name == "Warnings" {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, name)
		}
	}
	return out
}

func TestServerOptionsHonouredOrNoted(t *testing.T) {
	dir := t.TempDir()
	ext := `<ocsigen><server><host hostfilter="c.example"><revproxy suburl="(.*)" dest="http://127.0.0.1:8081/\1"/></host></server></ocsigen>`
	if err := os.WriteFile(filepath.Join(dir, "a.conf"), []byte(ext), 0o644); err != nil {
		t.Fatal(err)
	}
	used := usedSelectors(t)
	base, err := xmlconf.Parse("base.conf", []byte(serverConf("")))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range xmlconf.ServerOptions() {
		t.Run(name, func(t *testing.T) {
			snippet, ok := serverOptionCases[name]
			if !ok {
				t.Fatalf("no case for <%s>: add one to serverOptionCases, and honour the option or note it", name)
			}
			cfg, err := xmlconf.Parse("base.conf", []byte(serverConf(strings.ReplaceAll(snippet, "DIR", dir))))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, n := range cfg.Notes {
				if n.Option == name && n.Pos.Line == 4 && n.Reason != "" {
					return // noted, with its position and a reason
				}
			}
			changed := changedFields(base, cfg)
			if len(changed) == 0 {
				t.Fatalf("<%s> changes no field of Config and has no note", name)
			}
			if !slices.ContainsFunc(changed, func(f string) bool { return used[f] }) {
				t.Errorf("<%s> sets %v, which nothing outside xmlconf reads, and has no note", name, changed)
			}
		})
	}
}

// TestSSLChildrenHonouredOrNoted covers the children of <ssl>: the
// certificate and key are used by the HTTPS ports; the others are noted.
func TestSSLChildrenHonouredOrNoted(t *testing.T) {
	for _, tt := range []struct {
		child  string
		noted  bool
		fields func(*xmlconf.SSL) string
	}{
		{"certificate", false, func(s *xmlconf.SSL) string { return s.Certificate }},
		{"privatekey", false, func(s *xmlconf.SSL) string { return s.PrivateKey }},
		{"ciphers", true, nil},
		{"dhfile", true, nil},
		{"curve", true, nil},
	} {
		cfg, err := xmlconf.Parse("s.conf", []byte(serverConf(fmt.Sprintf("<ssl><%s>v</%[1]s></ssl>", tt.child))))
		if err != nil {
			t.Fatalf("<%s>: %v", tt.child, err)
		}
		noted := slices.ContainsFunc(cfg.Notes, func(n xmlconf.Note) bool { return n.Option == tt.child })
		if noted != tt.noted {
			t.Errorf("<ssl><%s>: noted %v, want %v", tt.child, noted, tt.noted)
		}
		if tt.fields != nil && (cfg.SSL == nil || tt.fields(cfg.SSL) != "v") {
			t.Errorf("<ssl><%s>: value not read", tt.child)
		}
	}
}

// siteCase sets a site element: with and without are two host bodies
// that differ by the element, and the request shows the difference.
type siteCase struct {
	with, without string
	url           string
	headers       []string
}

// siteElementCases gives a case for every site element. D is replaced
// by a directory of test files.
var siteElementCases = map[string]siteCase{
	"revproxy":     {with: `<revproxy suburl="(.*)" dest="http://127.0.0.1:8081/\1"/>`, url: "http://x/a"},
	"redirect":     {with: `<redirect suburl="(.*)" dest="http://y/\1"/>`, url: "http://x/a"},
	"rewrite":      {with: `<rewrite regexp="a(.*)" url="b\1" continue="continue"/>` + proxy, without: proxy, url: "http://x/a1"},
	"outputfilter": {with: proxy + `<outputfilter header="X-T" dest="v"/>`, without: proxy, url: "http://x/a"},
	"sethttpcode":  {with: proxy + `<sethttpcode code="418"/>`, without: proxy, url: "http://x/a"},
	"if":           {with: `<if><ip value="127.0.0.1"/><then><forbidden/></then></if>` + proxy, without: proxy, url: "http://x/a"},
	"notfound":     {with: proxy + `<notfound/>`, without: proxy, url: "http://x/a"},
	"forbidden":    {with: proxy + `<forbidden/>`, without: proxy, url: "http://x/a"},
	"nextsite":     {with: `<site path="s"><nextsite/>` + proxy + `</site>`, without: `<site path="s">` + proxy + `</site>`, url: "http://x/s/a"},
	"nexthost":     {with: `<nexthost/>` + proxy, without: proxy, url: "http://x/a"},
	"stop":         {with: `<stop/>` + proxy, without: proxy, url: "http://x/a"},
	"iffound":      {with: proxy + `<iffound><sethttpcode code="418"/></iffound>`, without: proxy, url: "http://x/a"},
	"ifnotfound":   {with: `<ifnotfound>` + proxy + `</ifnotfound>`, url: "http://x/a"},
	"allow-forward-for": {with: `<allow-forward-for/>` + proxy, without: proxy, url: "http://x/a",
		headers: []string{"X-Forwarded-For: 203.0.113.7"}},
	"allow-forward-proto": {with: `<allow-forward-proto/>` + proxy, without: proxy, url: "http://x/a",
		headers: []string{"X-Forwarded-Proto: https"}},
	"authbasic": {with: `<authbasic realm="r"><plain login="a" password="b"/></authbasic>` + proxy, without: proxy, url: "http://x/a"},
	"cors":      {with: proxy + `<cors/>`, without: proxy, url: "http://x/a", headers: []string{"Origin: http://o.example"}},
	"deflate": {with: static + `<deflate compress="only"><type>text/*</type></deflate>`, without: static, url: "http://x/a.txt",
		headers: []string{"Accept-Encoding: gzip"}},
	"static":            {with: static, url: "http://x/a.txt"},
	"listdirs":          {with: `<listdirs value="true"/>` + static, without: static, url: "http://x/sub/"},
	"followsymlinks":    {with: `<followsymlinks value="never"/>` + static, without: static, url: "http://x/link.txt"},
	"defaultindex":      {with: `<defaultindex><index>a.txt</index></defaultindex>` + static, without: static, url: "http://x/"},
	"hidefile":          {with: `<hidefile><extension ext="bak"/></hidefile>` + static, without: static, url: "http://x/a.bak"},
	"forbidfile":        {with: `<forbidfile><extension ext="bak"/></forbidfile>` + static, without: static, url: "http://x/a.bak"},
	"contenttype":       {with: `<contenttype><extension ext="txt" value="text/x-t"/></contenttype>` + static, without: static, url: "http://x/a.txt"},
	"charset":           {with: `<charset><extension ext="txt" value="latin1"/></charset>` + static, without: static, url: "http://x/a.txt"},
	"uploaddir":         {with: `<uploaddir>/tmp</uploaddir>` + static, without: static, url: "http://x/a.txt"},
	"maxuploadfilesize": {with: `<maxuploadfilesize>1MB</maxuploadfilesize>` + static, without: static, url: "http://x/a.txt"},
	"route":             {with: `<route path="_" upstream="http://127.0.0.1:8081"/>`, url: "http://x/a"},
}

const (
	proxy  = `<revproxy suburl="(.*)" dest="http://127.0.0.1:8081/\1"/>`
	static = `<static dir="D"/>`
)

// siteConf is a configuration loading every extension, with body in its
// host.
func siteConf(body string) string {
	var b strings.Builder
	b.WriteString("<ocsigen><server>\n<port>127.0.0.1:8080</port>\n")
	var exts []string
	for _, ext := range engine.SiteElements() {
		if !slices.Contains(exts, ext) {
			exts = append(exts, ext)
		}
	}
	slices.Sort(exts)
	for _, ext := range exts {
		fmt.Fprintf(&b, "<extension findlib-package=%q/>\n", ext)
	}
	b.WriteString("<host>\n" + body + "\n</host>\n</server></ocsigen>\n")
	return b.String()
}

// siteFiles makes the files the static cases serve.
func siteFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	text := strings.Repeat("some text to compress ", 40)
	for name, body := range map[string]string{"index.html": "<html>" + text, "a.txt": text, "a.bak": "old", "sub/f.txt": "f"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "a.txt"), filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// decide runs one request on a configuration and returns its decision,
// without the position of the answering rule, and the configuration.
func decide(t *testing.T, src string, c siteCase) (dryrun.Decision, *xmlconf.Config) {
	t.Helper()
	cfg, err := xmlconf.Parse("site.conf", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
	d, err := dryrun.New(cfg, engine.Options{})
	if err != nil {
		t.Fatalf("compile: %v\n%s", err, src)
	}
	defer d.Close()
	res, err := d.Run(dryrun.Request{URL: c.url, Method: "GET", Headers: c.headers, From: "127.0.0.1"})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	res.Decision.Rule = ""
	return res.Decision, cfg
}

func TestSiteElementsHonouredOrNoted(t *testing.T) {
	dir := siteFiles(t)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range engine.SiteElements() {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			c, ok := siteElementCases[name]
			if !ok {
				t.Fatalf("no case for <%s>: add one to siteElementCases, and honour the element or note it", name)
			}
			with, cfg := decide(t, siteConf(strings.ReplaceAll(c.with, `"D"`, `"`+dir+`"`)), c)
			without, _ := decide(t, siteConf(strings.ReplaceAll(c.without, `"D"`, `"`+dir+`"`)), c)
			if slices.ContainsFunc(cfg.Notes, func(n xmlconf.Note) bool { return n.Option == name && n.Reason != "" }) {
				return // noted
			}
			if reflect.DeepEqual(with, without) {
				t.Errorf("<%s> changes nothing for %s (decision %s) and has no note", name, c.url, with)
			}
		})
	}
}
