package difftest

import (
	"compress/gzip"
	"compress/zlib"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The scenarios of issue 6: Ocsigen's staticmod (with extendconfiguration),
// authbasic, cors and deflatemod, and of issue 17: the charsets of static
// files and $u(...) user directories, run by TestDifferentialExtensions with
// the same harness as TestDifferential. They live apart so that the files
// they serve can be made first: both servers read the same directory.
//
// Answers made from files are marked with <outputfilter header="X-Recorder"
// dest="file"/> after the instructions, on both servers: the harness then
// takes them as content, not as pages the proxy made, and compares their
// bodies and Content-Type too.

// Rows proposed for SPEC.md section 8 by these scenarios: where Ocsigen
// 5.0.1's extensions differ from what issues 6 and 17 ask. Like the other
// PROPOSED rows, they apply only to the requests that name them.
const (
	rowXValidators  = "PROPOSED: staticmod sends no Last-Modified and no Accept-Ranges [issue 6]"
	rowXConditional = "PROPOSED: staticmod ignores If-Modified-Since and Range: always 200 with the whole file [issue 6]"
	rowXMethods     = "PROPOSED: staticmod answers every method (POST, PUT...) with the file [issue 6]"
	rowXListing     = "PROPOSED: `<listdirs value=\"true\"/>` answers 500 (listing not implemented) [issue 6]"
	rowXRegexpNext  = "PROPOSED: a `<static regexp>` that does not match answers 500 (Staticmod.Not_concerned) instead of trying what follows [issue 6]"
	rowXAuthScheme  = "PROPOSED: authbasic answers 400 to credentials of another scheme (Bearer) instead of 401 [issue 6]"
	rowXCorsVary    = "PROPOSED: cors sends no `Vary: Origin` although its headers depend on Origin [issue 6]"
	rowXCorsRefused = "PROPOSED: cors answers 500 (Cors.Refused) when an answered request asks for a method `methods` does not list [issue 6]"
	rowXProxied     = "PROPOSED: deflatemod on a proxied answer keeps the backend's Content-Length and sends the chunk-encoded stream as the body: a corrupt or stalled answer (also for tiny or already encoded answers) [issue 6]"
	rowXNoBody      = "PROPOSED: deflatemod labels an answer without body (204) Content-Encoding: gzip [issue 6]"
	rowXTiny        = "PROPOSED: deflatemod compresses answers of a few bytes [issue 6]"
	rowXVary        = "PROPOSED: deflatemod sends no `Vary: Accept-Encoding` [issue 6]"
	rowXCharset     = "PROPOSED: staticmod ignores every charset setting (`<charset>`, `<host charset>`, `<site charset>`, extendconfiguration's `<charset>`): no file gets a charset (files are sent by cohttp's respond_file) [issue 17]"
	// rowXDecoded is not a difference: compressed bodies are compared
	// decoded, since two zlib implementations produce different bytes.
	rowXDecoded = "NORMALISED: compressed bodies compared decoded (zlib streams differ byte for byte) [issue 6]"
)

// extMTime is the modification time of every file served.
var extMTime = time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)

const extLastModified = "Mon, 04 Mar 2024 05:06:07 GMT"

func init() {
	knownDiffs = append(knownDiffs,
		knownDiff{
			row: rowXTiny,
			ocsigen: func(x *exchange) bool {
				enc := fieldValue(x.oc, "Content-Encoding")
				body, err := decodeBody(enc, x.oc.Body)
				return enc != "" && err == nil && len(body) < 256
			},
			fix: func(x *exchange) {
				x.oc.Body, _ = decodeBody(fieldValue(x.oc, "Content-Encoding"), x.oc.Body)
				delField(x.oc, "Content-Encoding")
			},
		},
		knownDiff{
			row: rowXProxied,
			ocsigen: func(x *exchange) bool {
				enc := fieldValue(x.oc, "Content-Encoding")
				if enc == "" {
					return false
				}
				_, err := decodeBody(enc, x.oc.Body)
				return x.oc.Err != "" || err != nil
			},
			ocsiproxy: checkDeflated,
		},
		knownDiff{
			row:     rowXNoBody,
			ocsigen: func(x *exchange) bool { return x.oc.Status == 204 && fieldValue(x.oc, "Content-Encoding") != "" },
			fix:     func(x *exchange) { delField(x.oc, "Content-Encoding") },
		},
		knownDiff{
			row: rowXDecoded,
			ocsigen: func(x *exchange) bool {
				enc := fieldValue(x.oc, "Content-Encoding")
				return enc == "gzip" || enc == "deflate"
			},
			fix: func(x *exchange) {
				enc := fieldValue(x.oc, "Content-Encoding")
				x.oc.Body, _ = decodeBody(enc, x.oc.Body)
				if x.op != nil && fieldValue(x.op, "Content-Encoding") == enc {
					// x.op is ocsiproxy's own outcome: it is decoded the same
					// way, so that the decoded bodies are compared.
					if b, err := decodeBody(enc, x.op.Body); err == nil {
						x.op.Body = b
					} else {
						x.op.Body = "undecodable " + enc + " body: " + err.Error()
					}
				}
			},
		},
		knownDiff{
			row:     rowXVary,
			ocsigen: func(x *exchange) bool { return !strings.Contains(fieldValue(x.oc, "Vary"), "Accept-Encoding") },
			fix:     func(x *exchange) { x.oc.Fields = append(x.oc.Fields, field{"Vary", "Accept-Encoding"}) },
		},
		knownDiff{
			row: rowXValidators,
			ocsigen: func(x *exchange) bool {
				return x.oc.Status == 200 && fieldValue(x.oc, "Last-Modified") == ""
			},
			fix: func(x *exchange) {
				x.oc.Fields = append(x.oc.Fields, field{"Last-Modified", extLastModified})
				if fieldValue(x.oc, "Content-Encoding") == "" {
					x.oc.Fields = append(x.oc.Fields, field{"Accept-Ranges", "bytes"})
				}
			},
		},
		knownDiff{
			row: rowXCharset,
			ocsigen: func(x *exchange) bool {
				_, ok := charsetWants[x.req]
				return ok && x.oc.Status == 200 && !strings.Contains(fieldValue(x.oc, "Content-Type"), "charset=")
			},
			fix: func(x *exchange) {
				setRespField(x.oc, "Content-Type", fieldValue(x.oc, "Content-Type")+"; charset="+charsetWants[x.req])
			},
		},
		knownDiff{row: rowXConditional, ocsigen: func(x *exchange) bool { return x.oc.Status == 200 }, ocsiproxy: checkWant},
		knownDiff{row: rowXMethods, ocsigen: func(x *exchange) bool { return x.oc.Status == 200 }, ocsiproxy: checkWant},
		knownDiff{row: rowXListing, ocsigen: func(x *exchange) bool { return x.oc.Status == 500 }, ocsiproxy: checkWant},
		knownDiff{row: rowXRegexpNext, ocsigen: func(x *exchange) bool { return x.oc.Status == 500 }, ocsiproxy: checkWant},
		knownDiff{row: rowXAuthScheme, ocsigen: func(x *exchange) bool { return x.oc.Status == 400 }, ocsiproxy: checkWant},
		knownDiff{row: rowXCorsRefused, ocsigen: func(x *exchange) bool { return x.oc.Status == 500 }, ocsiproxy: checkWant},
		knownDiff{
			row:     rowXCorsVary,
			ocsigen: func(x *exchange) bool { return !strings.Contains(fieldValue(x.oc, "Vary"), "Origin") },
			fix:     func(x *exchange) { x.oc.Fields = append(x.oc.Fields, field{"Vary", "Origin"}) },
		},
	)
}

// deflated says what ocsiproxy must answer to a request through
// <deflate> whose Ocsigen answer is unusable: the Content-Encoding, the
// body once decoded, and whether Vary lists Accept-Encoding.
type deflated struct {
	enc  string
	body string
	vary bool
}

var deflateWants = map[*request]deflated{}

func (r *request) deflates(d deflated) *request {
	deflateWants[r] = d
	return r
}

// checkDeflated checks ocsiproxy's answer against the request's want and
// its deflated expectation.
func checkDeflated(x *exchange) error {
	if err := checkWant(x); err != nil {
		return err
	}
	d, ok := deflateWants[x.req]
	if !ok {
		return fmt.Errorf("harness: request names %q without a deflated expectation", rowXProxied)
	}
	if x.op.Err != "" {
		return fmt.Errorf("incomplete answer: %s", x.op.Err)
	}
	if enc := fieldValue(x.op, "Content-Encoding"); enc != d.enc {
		return fmt.Errorf("Content-Encoding %q, want %q", enc, d.enc)
	}
	body, err := decodeBody(d.enc, x.op.Body)
	if err != nil {
		return fmt.Errorf("body does not decode as %s: %v", d.enc, err)
	}
	if body != d.body {
		return fmt.Errorf("decoded body %s, want %s", showBody(body), showBody(d.body))
	}
	if vary := strings.Contains(fieldValue(x.op, "Vary"), "Accept-Encoding"); vary != d.vary {
		return fmt.Errorf("Vary: Accept-Encoding %v, want %v", vary, d.vary)
	}
	return nil
}

// charsetWants holds the charset the configuration gives the file a
// request names, for the requests that witness rowXCharset.
var charsetWants = map[*request]string{}

// withCharset declares that the file r asks for is text that its
// configuration gives charset cs, which Ocsigen 5.0.1 does not send.
func (r *request) withCharset(cs string) *request {
	charsetWants[r] = cs
	return r.witness(rowXCharset)
}

// fieldValue returns the values of a response header of o, joined.
func fieldValue(o *outcome, name string) string {
	if o == nil {
		return ""
	}
	return strings.Join(headerValues(o.Fields, name), ", ")
}

func delField(o *outcome, name string) {
	o.Fields = slices.DeleteFunc(o.Fields, func(f field) bool { return strings.EqualFold(f.Name, name) })
}

func setRespField(o *outcome, name, value string) {
	delField(o, name)
	o.Fields = append(o.Fields, field{name, value})
}

// decodeBody decodes a gzip or deflate (zlib) body.
func decodeBody(enc, body string) (string, error) {
	var r io.Reader
	var err error
	switch enc {
	case "gzip":
		r, err = gzip.NewReader(strings.NewReader(body))
	case "deflate":
		r, err = zlib.NewReader(strings.NewReader(body))
	default:
		return body, nil
	}
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(r)
	return string(b), err
}

// extFiles makes the directory both servers serve: www/ and, outside it,
// secret.txt. Every file has the modification time extMTime.
func extFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"secret.txt":     "SECRET\n",
		"www/index.html": "<!DOCTYPE html>\n<html><head><title>Index</title></head>\n<body>" + strings.Repeat("<p>Some text, to be worth compressing.</p>\n", 12) + "</body></html>\n",
		"www/page.txt":   strings.Repeat("A plain text page, line after line.\n", 40),
		"www/small.css":  "body{margin:0}\n",
		"www/data.json":  `{"items":[1,2,3]}` + "\n",
		"www/img.png":    "\x89PNG\r\n\x1a\n" + strings.Repeat("\x00", 600),
		"www/sub/a.txt":  "a\n",
		"www/.hidden":    "dot file\n",
		"www/x.bak":      "backup\n",
		"www/404.html":   "<html><body>custom not found page</body></html>\n",
		"www/empty/":     "",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			os.MkdirAll(p, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error {
		os.Chtimes(p, extMTime, extMTime)
		return nil
	})
	return dir
}

const extLines = `<extension findlib-package="ocsigenserver.ext.staticmod"/>
    <extension findlib-package="ocsigenserver.ext.extendconfiguration"/>
    <extension findlib-package="ocsigenserver.ext.authbasic"/>
    <extension findlib-package="ocsigenserver.ext.cors"/>
    <extension findlib-package="ocsigenserver.ext.deflatemod"/>`

// withMethod returns a request built like get, with another method.
func withMethod(method, target string, lines ...string) *request {
	return build(method, target, "HTTP/1.1", lines...)
}

// homeFiles makes a directory in the home directory of the user running
// the tests, for the $u(...) scenarios, and returns the user's name and
// the directory's name relative to the home; "" when there is no such
// home or it cannot be written. The directory is removed at the end.
func homeFiles(t *testing.T) (name, sub string) {
	t.Helper()
	me, err := user.Current()
	if err != nil || !filepath.IsAbs(me.HomeDir) || strings.ContainsAny(me.Username, "/:~") {
		return "", ""
	}
	d, err := os.MkdirTemp(me.HomeDir, ".ocsiproxy-difftest-")
	if err != nil {
		t.Logf("$u(...) scenarios skipped: %v", err)
		return "", ""
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	for name, content := range map[string]string{"f.txt": "a file in a home directory\n", "p/index.html": "<p>user page</p>\n"} {
		p := filepath.Join(d, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	filepath.Walk(d, func(p string, _ os.FileInfo, _ error) error {
		os.Chtimes(p, extMTime, extMTime)
		return nil
	})
	return me.Username, filepath.Base(d)
}

func extScenarios(dir, homeUser, homeSub string) []*scenario {
	www := filepath.Join(dir, "www")
	basic := func(s string) string { return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	file := func(r *request) *request { return r.witness(rowXValidators) }
	var userdir []*scenario
	if homeUser != "" {
		u, sub := homeUser, homeSub
		userdir = append(userdir, &scenario{
			name:   "ext-staticmod-userdir",
			spec:   "issue 17 (staticmod $u(...))",
			server: extLines,
			hosts: fmt.Sprintf(`<host hostfilter="*" defaulthostname="dflt.example">
      <site path="ud"><static regexp="~([^/]*)(.*)" dest="$u(\1)\2"/></site>
      <site path="lit"><static regexp="(.*)" dest="$u(%[1]s)/%[2]s/\1"/></site>
      <site path="rt"><static regexp="~([^/]*)/(.*)" dest="$u(\1)/%[2]s/\2" root="$u(\1)/%[2]s"/></site>
      <site path="nf"><static code="404" dest="$u(%[1]s)/%[2]s/f.txt"/></site>
      <outputfilter header="X-Recorder" dest="file"/>
    </host>`, u, sub),
			reqs: []*request{
				file(get("/ud/~" + u + "/" + sub + "/f.txt")).withNote("the user's home"),
				file(get("/ud/~" + u + "/" + sub + "/p/")).withNote("index in a home"),
				get("/ud/~" + u + "/" + sub + "/missing.txt"),
				get("/ud/~ocsiproxy-no-such-user-7f3a/f.txt").withNote("unknown user"),
				get("/ud/~/f.txt").withNote("empty user name"),
				file(get("/lit/f.txt")).withNote("literal user name"),
				file(get("/rt/~" + u + "/p/index.html")).withNote("root with $u"),
				get("/nf/nothing").withNote("code= page in a home"),
			},
		})
	}
	// big is the backend's "X-Want: big" body.
	big := strings.Repeat("0123456789abcdef", 8192)
	proxied := func(r *request, d deflated) *request {
		return r.witness(rowXProxied).wants(want{status: 200, target: requestTarget(r)}).deflates(d)
	}
	return append(userdir, []*scenario{
		{
			name:   "ext-staticmod-charset",
			spec:   "issue 17 (charsets of static files)",
			server: extLines + "\n    <charset>iso-8859-2</charset>",
			hosts: fmt.Sprintf(`<host hostfilter="other.example" defaulthostname="other.example">
      <static dir="%[1]s"/>
      <outputfilter header="X-Recorder" dest="file"/>
    </host>
    <host hostfilter="*" defaulthostname="dflt.example" charset="koi8-r">
      <site path="s" charset="windows-1251"><static dir="%[1]s"/></site>
      <site path="n" charset=""><static dir="%[1]s"/></site>
      <site path="e">
        <charset default="us-ascii"><extension ext="css" value="utf-8"/></charset>
        <static dir="%[1]s"/>
      </site>
      <static dir="%[1]s"/>
      <outputfilter header="X-Recorder" dest="file"/>
    </host>`, www),
			reqs: []*request{
				file(get("/page.txt", "Host: other.example")).withCharset("iso-8859-2").withNote("server <charset>"),
				file(get("/page.txt")).withCharset("koi8-r").withNote("host charset"),
				file(get("/index.html")).withCharset("koi8-r").withNote("host charset"),
				file(get("/small.css")).withCharset("koi8-r").withNote("host charset"),
				file(get("/data.json")).withNote("no charset on JSON"),
				file(get("/img.png")).withNote("no charset on images"),
				file(get("/s/page.txt")).withCharset("windows-1251").withNote("site charset"),
				file(get("/n/page.txt")).withNote(`site charset=""`),
				file(get("/e/page.txt")).withCharset("us-ascii").withNote("extendconfiguration <charset default>"),
				file(get("/e/small.css")).withCharset("utf-8").withNote("extendconfiguration <charset> entry"),
			},
		},
		{
			name:   "ext-staticmod",
			spec:   "issue 6 (staticmod, extendconfiguration)",
			server: extLines,
			hosts: fmt.Sprintf(`<host hostfilter="*" defaulthostname="dflt.example">
      <site path="nr">
        <!-- No X-Recorder here: Ocsigen raises the directory redirect past
             the filters, ocsiproxy answers it (filters see it). -->
        <static dir="%[1]s"/>
        <stop/>
      </site>
      <site path="ld"><listdirs value="true"/><static dir="%[1]s"/></site>
      <site path="cfg">
        <defaultindex><index>page.txt</index></defaultindex>
        <hidefile><extension ext="css"/></hidefile>
        <forbidfile><extension ext="bak"/></forbidfile>
        <static dir="%[1]s"/>
      </site>
      <site path="re">
        <static regexp="t/(.*)\.text" dest="%[1]s/\1.txt"/>
        <static regexp="u/(.*)" dest="%[1]s/\1"/>
      </site>
      <site path="nf">
        <static code="404" dest="%[1]s/404.html"/>
      </site>
      <static dir="%[1]s"/>
      <outputfilter header="X-Recorder" dest="file"/>
    </host>`, www),
			reqs: []*request{
				file(get("/index.html")),
				file(get("/")),
				file(build("HEAD", "/page.txt", "HTTP/1.1")),
				file(get("/data.json")),
				file(get("/img.png")),
				file(get("/.hidden")),
				file(get("/sub/a.txt?x=1")),
				get("/nr/sub").withNote("directory without slash"),
				get("/nr/sub?q=1").withNote("directory without slash, query"),
				file(get("/nr/sub/a.txt")).withNote("the stop in site nr"),
				get("/empty/").withNote("directory without index"),
				get("/nothing.html"),
				get("/sub/..%2f..%2fsecret.txt").withNote("encoded slash").witness(rowRAmbiguous).wants(want{status: 400}),
				get("/..%2fsecret.txt").withNote("encoded slash").witness(rowRAmbiguous).wants(want{status: 400}),
				get("/sub%2f..%2f..%2fsecret.txt").withNote("encoded slash").witness(rowRAmbiguous).wants(want{status: 400}),
				get("/sub/%2e%2e/%2e%2e/secret.txt").witness(rowPClimb).wants(want{status: 400}),
				get("/../secret.txt").witness(rowPClimb).wants(want{status: 400}),
				get("/index.html", "If-Modified-Since: "+extLastModified).witness(rowXConditional).wants(want{status: 304}),
				get("/page.txt", "Range: bytes=0-9").witness(rowXConditional).wants(want{status: 206}),
				withMethod("POST", "/index.html", "Content-Type: text/plain", "", "data").witness(rowXMethods).wants(want{status: 405}),
				get("/ld/sub/").witness(rowXListing).wants(want{status: 200}),
				file(get("/cfg/")).withNote("defaultindex"),
				get("/cfg/small.css").withNote("hidefile"),
				get("/cfg/x.bak").withNote("forbidfile"),
				file(get("/re/t/page.text")),
				get("/re/u/index.html").witness(rowXRegexpNext).wants(want{status: 200}),
				get("/nf/missing").withNote("code=404 page"),
			},
		},
		{
			name:   "ext-authbasic",
			spec:   "issue 6 (authbasic)",
			server: extLines,
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <site path="admin">
        <authbasic realm="Admin area"><plain login="admin" password="s3cret"/></authbasic>
        <revproxy suburl="(.*)" dest="http://{B}/admin/\1"/>
      </site>
    </host>`,
			reqs: []*request{
				get("/admin/x").withNote("no credentials"),
				get("/admin/x", basic("admin:s3cret")),
				get("/admin/x", basic("admin:wrong")),
				get("/admin/x", basic("admin:s3cret:x")),
				get("/admin/x", basic("Admin:s3cret")),
				get("/admin/x", basic(":")),
				get("/admin/x", "Authorization: Basic !!!").withNote("malformed"),
				get("/admin/x", "Authorization: Bearer abc").witness(rowXAuthScheme).wants(want{status: 401}),
			},
		},
		{
			name:   "ext-cors",
			spec:   "issue 6 (cors)",
			server: extLines,
			hosts: `<host hostfilter="*" defaulthostname="dflt.example">
      <site path="api">
        <cors max_age="86400" credentials="true" exposed_headers="X-A, X-B" methods="GET, POST"/>
        <revproxy suburl="(.*)" dest="http://{B}/api/\1"/>
        <cors max_age="86400" credentials="true" exposed_headers="X-A, X-B" methods="GET, POST"/>
      </site>
      <site path="open">
        <revproxy suburl="(.*)" dest="http://{B}/open/\1"/>
        <cors/>
      </site>
    </host>`,
			reqs: []*request{
				get("/api/x", "Origin: https://app.example").witness(rowXCorsVary),
				get("/api/x").witness(rowXCorsVary).withNote("no Origin"),
				withMethod("OPTIONS", "/api/x", "Origin: https://app.example", "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: X-Token, Content-Type").witness(rowXCorsVary),
				withMethod("OPTIONS", "/api/x").witness(rowXCorsVary).withNote("OPTIONS without Origin"),
				withMethod("OPTIONS", "/api/x", "Origin: https://app.example", "Access-Control-Request-Method: DELETE").
					witness(rowXCorsRefused).wants(want{status: 200, target: "/api/x"}),
				get("/api/x", "Origin: https://app.example", "Access-Control-Request-Method: PUT").
					witness(rowXCorsRefused).wants(want{status: 200, target: "/api/x"}),
				get("/open/x", "Origin: https://other.example", "Access-Control-Request-Method: PATCH").witness(rowXCorsVary),
				get("/nothing", "Origin: https://app.example").withNote("unanswered"),
			},
		},
		{
			name:   "ext-deflatemod",
			spec:   "issue 6 (deflatemod)",
			server: extLines,
			hosts: fmt.Sprintf(`<host hostfilter="*" defaulthostname="dflt.example">
      <site path="z">
        <revproxy suburl="(.*)" dest="http://{B}/z/\1"/>
        <deflate compress="only"><type>text/*</type></deflate>
      </site>
      <site path="enc">
        <revproxy suburl="(.*)" dest="http://{B}/enc/\1"/>
        <outputfilter header="Content-Encoding" dest="br" replace="true"/>
        <deflate compress="only"><type>text/*</type></deflate>
      </site>
      <site path="s">
        <static dir="%[1]s"/>
        <deflate compress="allbut"><type>image/*</type></deflate>
        <outputfilter header="X-Recorder" dest="file"/>
      </site>
    </host>`, www),
			reqs: []*request{
				proxied(get("/z/x", "X-Want: big", "Accept-Encoding: gzip"), deflated{"gzip", big, true}),
				proxied(get("/z/x", "X-Want: big", "Accept-Encoding: deflate"), deflated{"deflate", big, true}),
				proxied(get("/z/x", "X-Want: big", "Accept-Encoding: deflate;q=1, gzip;q=0.5"), deflated{"deflate", big, true}),
				get("/z/x", "X-Want: big").witness(rowXVary).withNote("no Accept-Encoding"),
				get("/z/x", "X-Want: big", "Accept-Encoding: br").witness(rowXVary),
				get("/z/x", "X-Want: big", "Accept-Encoding: gzip;q=0").witness(rowXVary),
				get("/z/x", "X-Want: big", "Accept-Encoding: identity;q=0"),
				build("HEAD", "/z/x", "HTTP/1.1", "X-Want: big", "Accept-Encoding: gzip").witness(rowXVary),
				proxied(get("/z/x", "Accept-Encoding: gzip"), deflated{"", backendBody, false}).withNote("a few bytes"),
				get("/z/x", "X-Want: nocontent", "Accept-Encoding: gzip").witness(rowXNoBody).withNote("204"),
				proxied(get("/enc/x", "X-Want: big", "Accept-Encoding: gzip"), deflated{"br", big, false}).withNote("already encoded"),
				get("/s/page.txt", "Accept-Encoding: gzip").witness(rowXDecoded, rowXVary, rowXValidators),
				get("/s/index.html", "Accept-Encoding: deflate").witness(rowXDecoded, rowXVary, rowXValidators),
				get("/s/img.png", "Accept-Encoding: gzip").witness(rowXValidators),
				get("/s/small.css", "Accept-Encoding: gzip").witness(rowXTiny, rowXValidators),
			},
		},
	}...)
}

// TestDifferentialExtensions runs the issue 6 scenarios against Ocsigen
// 5.0.1 and ocsiproxy, as TestDifferential runs the others.
func TestDifferentialExtensions(t *testing.T) {
	skipUnlessOcsigen(t)
	bin, why := ocsiproxyBinary()
	if bin == "" {
		if _, err := os.Stat("../main.go"); err == nil && !*ocsigenOnly {
			t.Fatalf("ocsiproxy: %s", why)
		}
		t.Logf("ocsiproxy side skipped, Ocsigen alone: %s", why)
	}
	ty := &tally{rowHits: map[string]int{}, declaredRows: map[string]int{}}
	if *dumpFile != "" {
		f, err := os.Create(*dumpFile + ".ext")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ty.dump = f
	}
	dir := extFiles(t)
	homeUser, homeSub := homeFiles(t)
	for _, sc := range extScenarios(dir, homeUser, homeSub) {
		t.Run(sc.name, func(t *testing.T) {
			runScenario(t, sc, bin, ty)
		})
	}
	normalised := ty.declaredRows[rowXDecoded]
	summary := fmt.Sprintf("%d compared, %d declared differences (%d of them the decoding of compressed bodies), %d undeclared",
		ty.compared, ty.declared, normalised, ty.undeclared)
	if bin == "" {
		summary += fmt.Sprintf(" (Ocsigen alone: %d requests sent, nothing compared)", ty.sent)
	}
	t.Log(summary)
	fmt.Println("difftest (issue 6 extensions): " + summary)
	var rows []string
	for _, kd := range knownDiffs {
		if strings.HasSuffix(kd.row, "[issue 6]") || strings.HasSuffix(kd.row, "[issue 17]") || kd.row == rowPClimb {
			rows = append(rows, fmt.Sprintf("  %3d %3d  %s", ty.rowHits[kd.row], ty.declaredRows[kd.row], kd.row))
		}
	}
	t.Logf("rows (seen on Ocsigen, declared differences, row):\n%s", strings.Join(rows, "\n"))
}
