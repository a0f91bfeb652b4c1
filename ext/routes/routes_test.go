package routes

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/stagetest"
	"github.com/ocsiproxy/ocsiproxy/pool"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

// recorder is a Transport that records the request and answers 200.
type recorder struct{ last *wire.Request }

func (r *recorder) Send(req *wire.Request) (*wire.Response, error) {
	r.last = req
	return &wire.Response{StatusCode: 200, Body: http.NoBody}, nil
}

// run runs the routes (XML) on a request and returns the URL and Host
// sent upstream, "" when no route answered.
func run(t *testing.T, routesXML, method, target, host, site string, headers ...string) (url, hostHdr string, out *wire.Request) {
	t.Helper()
	stages := compileAll(t, routesXML)
	st := stagetest.State(t, method, target, host, site, headers...)
	rec := &recorder{}
	st.Env.Transport = rec
	if _, err := stagetest.Run(t, st, stages...); err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	if rec.last == nil {
		return "", "", nil
	}
	r := rec.last
	return r.Scheme + "://" + r.Backend + r.Target, r.Host, r
}

// compileAll compiles every <route> of routesXML.
func compileAll(t *testing.T, routesXML string) []stage.Stage {
	t.Helper()
	var stages []stage.Stage
	_, els := stagetest.Parse(t, "", routesXML)
	for _, e := range els {
		c := &stagetest.Compiler{}
		s := Compile(c, e)
		if err := c.Errs.Err(); err != nil {
			t.Fatalf("%v", err)
		}
		stages = append(stages, s)
	}
	return stages
}

// mongooseIM is the example of MongooseIM's mod_revproxy documentation.
const mongooseIM = `
<route host="www.erlang-solutions.com" path="/admin" upstream="https://www.erlang-solutions.com/"/>
<route host=":var.com" path="/:var" upstream="http://localhost:8080/"/>
<route host=":domain.com" path="/" upstream="http://localhost:8080/:domain"/>`

func TestMongooseIMExample(t *testing.T) {
	tests := []struct {
		host, target, want string
	}{
		{"www.erlang-solutions.com", "/admin/resources/case-studies", "https://www.erlang-solutions.com/resources/case-studies"},
		{"domain.com", "/domain/index.html", "http://localhost:8080/index.html"},
		{"abc.com", "/def", "http://localhost:8080/abc/def"},
		// More of the same table.
		{"www.erlang-solutions.com", "/admin", "https://www.erlang-solutions.com/"},
		{"www.erlang-solutions.com", "/admin/", "https://www.erlang-solutions.com/"},
		{"www.erlang-solutions.com", "/administrator", ""},
		{"WWW.Erlang-Solutions.COM", "/admin/x?q=1", "https://www.erlang-solutions.com/x?q=1"},
		{"domain.com", "/other/index.html", "http://localhost:8080/domain/other/index.html"},
		{"abc.com", "/", "http://localhost:8080/abc"},
		{"abc.com", "/abc", "http://localhost:8080/"},
		{"a.b.com", "/x", ""},
		{"abc.org", "/x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.target, func(t *testing.T) {
			got, _, _ := run(t, mongooseIM, "GET", tt.target, tt.host, "")
			if got != tt.want {
				t.Errorf("%s%s: got %q, want %q", tt.host, tt.target, got, tt.want)
			}
		})
	}
}

func TestProxyPassSemantics(t *testing.T) {
	tests := []struct {
		name, route, target, site, want string
	}{
		// nginx: "proxy_pass http://b" passes the URI unchanged.
		{"bare upstream keeps the whole path", `<route path="/app" upstream="http://b:8080"/>`, "/app/x/y?q", "", "http://b:8080/app/x/y?q"},
		{"bare upstream inside a site", `<route path="/app" upstream="http://b"/>`, "/s/app/x", "s", "http://b/s/app/x"},
		// nginx: "proxy_pass http://b/" replaces the matched prefix.
		{"slash upstream strips the prefix", `<route path="/app" upstream="http://b/"/>`, "/app/x/y", "", "http://b/x/y"},
		{"slash upstream, exact path", `<route path="/app" upstream="http://b/"/>`, "/app", "", "http://b/"},
		{"slash upstream, trailing slash", `<route path="/app/" upstream="http://b/"/>`, "/app/", "", "http://b/"},
		{"base path joined with one slash", `<route path="/app" upstream="http://b/base"/>`, "/app/x", "", "http://b/base/x"},
		{"base path with slash joined with one slash", `<route path="/app" upstream="http://b/base/"/>`, "/app/x", "", "http://b/base/x"},
		{"base path, exact", `<route path="/app" upstream="http://b/base"/>`, "/app", "", "http://b/base"},
		{"base path with slash, exact", `<route path="/app" upstream="http://b/base/"/>`, "/app", "", "http://b/base/"},
		{"base path, trailing slash kept", `<route path="/app" upstream="http://b/base"/>`, "/app/dir/", "", "http://b/base/dir/"},
		{"prefix is whole segments", `<route path="/app" upstream="http://b/"/>`, "/apple", "", ""},
		{"root route", `<route path="/" upstream="http://b/v1/"/>`, "/x", "", "http://b/v1/x"},
		{"any path", `<route path="_" upstream="http://b/v1"/>`, "/x/y", "", "http://b/v1/x/y"},
		{"wildcard segment", `<route path="/_/edit" upstream="http://b/"/>`, "/page/edit/now", "", "http://b/now"},
		{"wildcard needs a segment", `<route path="/_/edit" upstream="http://b/"/>`, "/edit", "", ""},
		{"path binding", `<route path="/u/:user" upstream="http://b/users/:user/home"/>`, "/u/bob/pics", "", "http://b/users/bob/home/pics"},
		{"binding bound twice, same", `<route path="/:a/:a" upstream="http://b/:a"/>`, "/x/x/y", "", "http://b/x/y"},
		{"binding bound twice, different", `<route path="/:a/:a" upstream="http://b/:a"/>`, "/x/z/y", "", ""},
		{"binding keeps the encoding", `<route path="/u/:user" upstream="http://b/:user"/>`, "/u/a%20b", "", "http://b/a%20b"},
		{"literal compared decoded", `<route path="/a b" upstream="http://b/"/>`, "/a%20b/x", "", "http://b/x"},
		{"relative to the site", `<route path="/v1" upstream="http://b/api/"/>`, "/s/v1/items", "s", "http://b/api/items"},
		{"query kept", `<route path="/a" upstream="http://b/z"/>`, "/a/q?x=1&y", "", "http://b/z/q?x=1&y"},
		{"empty query kept", `<route path="/a" upstream="http://b/z"/>`, "/a?", "", "http://b/z?"},
		{"https upstream", `<route path="/" upstream="https://b:8443/"/>`, "/x", "", "https://b:8443/x"},
		{"encoded slash stays a segment", `<route path="/a" upstream="http://b/"/>`, "/a/x%2Fy", "", "http://b/x%2Fy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, _ := run(t, tt.route, "GET", tt.target, "h.example", tt.site)
			if got != tt.want {
				t.Errorf("%s %s: got %q, want %q", tt.route, tt.target, got, tt.want)
			}
		})
	}
}

func TestHostAndMethod(t *testing.T) {
	tests := []struct {
		name, route, method, host, want string
	}{
		{"any host", `<route path="/" upstream="http://b/"/>`, "GET", "anything.example", "http://b/"},
		{"no Host header, host given", `<route host="a.example" path="/" upstream="http://b/"/>`, "GET", "", ""},
		{"no Host header, any host", `<route path="/" upstream="http://b/"/>`, "GET", "", "http://b/"},
		{"port ignored", `<route host="a.example" path="/" upstream="http://b/"/>`, "GET", "a.example:8080", "http://b/"},
		{"host binding into the upstream host", `<route host=":t.example" path="/" upstream="http://:t.internal:9000/"/>`, "GET", "api.example", "http://api.internal:9000/"},
		{"wildcard label", `<route host="_.example" path="/" upstream="http://b/"/>`, "GET", "x.example", "http://b/"},
		{"wildcard label counts", `<route host="_.example" path="/" upstream="http://b/"/>`, "GET", "x.y.example", ""},
		{"method given", `<route method="POST" path="/" upstream="http://b/"/>`, "POST", "h", "http://b/"},
		{"method lower-case in config", `<route method="post" path="/" upstream="http://b/"/>`, "POST", "h", "http://b/"},
		{"method refused", `<route method="POST" path="/" upstream="http://b/"/>`, "GET", "h", ""},
		{"method list", `<route method="GET HEAD" path="/" upstream="http://b/"/>`, "HEAD", "h", "http://b/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, _ := run(t, tt.route, tt.method, "/", tt.host, "")
			if got != tt.want {
				t.Errorf("%s %s Host %q: got %q, want %q", tt.route, tt.method, tt.host, got, tt.want)
			}
		})
	}
}

func TestHeadersAndHost(t *testing.T) {
	route := `<route path="/" upstream="http://b:81/"><header name="x-custom" value="v1"/><header name="X-Over" value="mine"/></route>`
	_, host, out := run(t, route, "GET", "/x", "client.example", "", "X-Over: client", "X-Kept: k")
	if host != "b:81" {
		t.Errorf("Host: got %q, want b:81", host)
	}
	for name, want := range map[string]string{"X-Custom": "v1", "X-Over": "mine", "X-Kept": "k"} {
		if got := out.Header.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	_, host, _ = run(t, `<route path="/" upstream="http://b/"><header name="Host" value="virtual.example"/></route>`, "GET", "/", "c.example", "")
	if host != "virtual.example" {
		t.Errorf("<header name=Host>: got %q", host)
	}
	_, host, _ = run(t, `<route path="/" upstream="http://b/" keephost="keephost"/>`, "GET", "/", "C.example:8080", "")
	if host != "C.example:8080" {
		t.Errorf("keephost: got %q", host)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ xml, want string }{
		{`<route path="/" />`, `missing attribute "upstream"`},
		{`<route upstream="http://b/"/>`, `missing attribute "path"`},
		{`<route path="x" upstream="http://b/"/>`, `must start with "/"`},
		{`<route path="/" upstream="ftp://b/"/>`, `scheme must be http or https`},
		{`<route path="/" upstream="b:80"/>`, `want http://host`},
		{`<route path="/" upstream="http://b/:who"/>`, `binding :who is not bound`},
		{`<route path="/" upstream="http://:who.b/"/>`, `binding :who is not bound`},
		{`<route path="/:" upstream="http://b/"/>`, `bad binding`},
		{`<route host="a..b" path="/" upstream="http://b/"/>`, `empty label`},
		{`<route host="a:80" path="/" upstream="http://b/"/>`, `not allowed in a host name`},
		{`<route path="/" upstream="http://b/?q"/>`, `no query`},
		{`<route path="/" upstream="http://b:99999/"/>`, `bad port`},
		{`<route path="/" upstream="http://b/" timeout="soon"/>`, `timeout="soon"`},
		{`<route path="/" upstream="http://b/" timeout="0"/>`, `timeout="0"`},
		{`<route path="/" upstream="http://b/" body_length="lots"/>`, `body_length="lots"`},
		{`<route path="/" upstream="http://b/" verb="GET"/>`, `unknown attribute "verb"`},
		{`<route path="/" upstream="http://b/"><set/></route>`, `unknown element <set>`},
		{`<route path="/" upstream="http://b/"><header name="Connection" value="x"/></route>`, `managed by the proxy`},
		{`<route path="/" upstream="http://b/"><header name="Bad Name" value="x"/></route>`, `invalid header`},
		{`<route path="/" upstream="http://b/" method="G(ET"/>`, `not a method name`},
		{`<route path="/" upstream="http://b/" keephost="yes"/>`, `keephost="yes"`},
	}
	for _, tt := range tests {
		err := stagetest.CompileErr(t, Compile, tt.xml)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error containing %q", tt.xml, err, tt.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "test.conf:") {
			t.Errorf("%s: error %q has no position", tt.xml, err)
		}
	}
}

// TestTimeoutAndBodyLength runs routes against a real loopback backend.
func TestTimeoutAndBodyLength(t *testing.T) {
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		io.WriteString(w, "got "+strings.Repeat("x", int(n%10)))
	}))
	defer be.Close()
	defer close(release)
	up := strings.TrimPrefix(be.URL, "http://")
	routes := `<route path="/slow" upstream="http://` + up + `/slow" timeout="20"/>
<route path="/upload" upstream="http://` + up + `/upload" body_length="10"/>`
	stages := compileAll(t, routes)
	tr := pool.New(pool.Config{Defaults: pool.DefaultSettings(30 * time.Second)})
	defer tr.Close()
	tests := []struct {
		name       string
		target     string
		body       io.Reader
		length     int64
		wantStatus int
	}{
		{"slower than the timeout", "/slow", nil, 0, http.StatusGatewayTimeout},
		{"body within the limit", "/upload", strings.NewReader("0123456789"), 10, 0},
		{"declared body over the limit", "/upload", strings.NewReader("0123456789a"), 11, http.StatusRequestEntityTooLarge},
		{"chunked body over the limit", "/upload", io.MultiReader(strings.NewReader("0123456"), strings.NewReader("789abc")), -1, http.StatusRequestEntityTooLarge},
		{"chunked body within the limit", "/upload", io.MultiReader(strings.NewReader("01234"), strings.NewReader("5")), -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := stagetest.State(t, "POST", tt.target, "h", "")
			st.In.Body = io.NopCloser(orEmpty(tt.body))
			st.In.ContentLength = tt.length
			st.Env.Transport = tr
			_, err := stagetest.Run(t, st, stages...)
			if tt.wantStatus == 0 {
				if err != nil || st.Answer == nil || st.Answer.StatusCode != 200 {
					t.Fatalf("want a 200 answer, got %v %v", err, st.Answer)
				}
				st.Answer.Body.Close()
				return
			}
			if got := stage.StatusOf(err); err == nil || got != tt.wantStatus {
				t.Fatalf("got error %v (status %d), want status %d", err, stage.StatusOf(err), tt.wantStatus)
			}
		})
	}
}

func orEmpty(r io.Reader) io.Reader {
	if r == nil {
		return strings.NewReader("")
	}
	return r
}

// compileWithModule compiles one <route> in a configuration whose routes
// <extension> element is ext, returning the route and the problems
// Configure and Compile reported.
func compileWithModule(t *testing.T, ext, route string) (*Route, error) {
	t.Helper()
	cfg, els := stagetest.Parse(t, ext, route)
	c := &stagetest.Compiler{Cfg: cfg}
	for i := range cfg.Extensions {
		Configure(c, &cfg.Extensions[i])
	}
	s := Compile(c, els[0])
	if err := c.Errs.Err(); err != nil {
		return nil, err
	}
	return s.(*Route), nil
}

// TestModuleDefaults: timeout=, body_length= and <header> on the routes
// <extension> element apply to every route that does not set its own.
func TestModuleDefaults(t *testing.T) {
	const plain = `<extension findlib-package="ocsiproxy.ext.routes"/>`
	tests := []struct {
		name, ext, route string
		timeout          time.Duration
		limit            int64
		headers          [][2]string
		hostHdr          string
	}{
		{"no defaults", plain, `<route path="/" upstream="http://b/"/>`, 0, -1, nil, ""},
		{"route timeout in milliseconds", plain, `<route path="/" upstream="http://b/" timeout="5000"/>`, 5 * time.Second, -1, nil, ""},
		{"route timeout as a Go duration", plain, `<route path="/" upstream="http://b/" timeout="250ms"/>`, 250 * time.Millisecond, -1, nil, ""},
		{"module timeout", `<extension findlib-package="ocsiproxy.ext.routes" timeout="5s"/>`,
			`<route path="/" upstream="http://b/"/>`, 5 * time.Second, -1, nil, ""},
		{"route overrides module timeout", `<extension findlib-package="ocsiproxy.ext.routes" timeout="5s"/>`,
			`<route path="/" upstream="http://b/" timeout="1s"/>`, time.Second, -1, nil, ""},
		{"route timeout infinity", `<extension findlib-package="ocsiproxy.ext.routes" timeout="5s"/>`,
			`<route path="/" upstream="http://b/" timeout="infinity"/>`, 0, -1, nil, ""},
		{"module body_length", `<extension findlib-package="ocsiproxy.ext.routes" body_length="1kiB"/>`,
			`<route path="/" upstream="http://b/"/>`, 0, 1024, nil, ""},
		{"route body_length infinity", `<extension findlib-package="ocsiproxy.ext.routes" body_length="1kiB"/>`,
			`<route path="/" upstream="http://b/" body_length="infinity"/>`, 0, -1, nil, ""},
		{"module headers, one replaced", `<extension findlib-package="ocsiproxy.ext.routes"><header name="x-a" value="m"/><header name="X-B" value="m"/></extension>`,
			`<route path="/" upstream="http://b/"><header name="x-b" value="r"/></route>`, 0, -1, [][2]string{{"X-A", "m"}, {"X-B", "r"}}, ""},
		{"module Host header", `<extension findlib-package="ocsiproxy.ext.routes"><header name="Host" value="v.example"/></extension>`,
			`<route path="/" upstream="http://b/"/>`, 0, -1, nil, "v.example"},
		{"keephost drops the module Host header", `<extension findlib-package="ocsiproxy.ext.routes"><header name="Host" value="v.example"/></extension>`,
			`<route path="/" upstream="http://b/" keephost="keephost"/>`, 0, -1, nil, ""},
		{"pool and upstream are the pool's", `<extension findlib-package="ocsiproxy.ext.routes"><pool workers="8"/><upstream url="http://b"/></extension>`,
			`<route path="/" upstream="http://b/"/>`, 0, -1, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := compileWithModule(t, tt.ext, tt.route)
			if err != nil {
				t.Fatal(err)
			}
			if r.timeout != tt.timeout || r.limit != tt.limit || r.hostHdr != tt.hostHdr || !slices.Equal(r.headers, tt.headers) {
				t.Errorf("timeout %v, limit %d, headers %q, Host %q; want %v, %d, %q, %q",
					r.timeout, r.limit, r.headers, r.hostHdr, tt.timeout, tt.limit, tt.headers, tt.hostHdr)
			}
		})
	}
}

// TestModuleErrors: problems on the routes <extension> element are
// reported with their positions; nothing in it is silently ignored.
func TestModuleErrors(t *testing.T) {
	const route = `<route path="/" upstream="http://b/"/>`
	tests := []struct{ ext, want string }{
		{`<extension findlib-package="ocsiproxy.ext.routes" timeout="soon"/>`,
			`test.conf:2:1: <extension>: timeout="soon": want a duration ("5000" milliseconds, "5s") or "infinity"`},
		{`<extension findlib-package="ocsiproxy.ext.routes" timeout="0"/>`, `test.conf:2:1: <extension>: timeout="0": want`},
		{`<extension findlib-package="ocsiproxy.ext.routes" body_length="lots"/>`, `test.conf:2:1: <extension>: body_length="lots": `},
		{`<extension findlib-package="ocsiproxy.ext.routes">
<route path="/" upstream="http://b/"/></extension>`,
			`test.conf:3:1: unknown element <route> in the routes <extension> (want <pool>, <upstream> or <header>)`},
		{`<extension findlib-package="ocsiproxy.ext.routes"><forwarded/></extension>`,
			`test.conf:2:51: unknown element <forwarded> in the routes <extension>`},
		{`<extension findlib-package="ocsiproxy.ext.routes"><header name="Connection" value="x"/></extension>`,
			`test.conf:2:51: <header>: Connection is managed by the proxy`},
		{`<extension findlib-package="ocsiproxy.ext.routes"><header name="X"/></extension>`,
			`test.conf:2:51: <header>: missing attribute "value"`},
	}
	for _, tt := range tests {
		_, err := compileWithModule(t, tt.ext, route)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s:\n got %v\nwant %s...", tt.ext, err, tt.want)
		}
	}
}
