// Package routes compiles <route>, the regexp-free proxy rule of
// MongooseIM's mod_revproxy, loaded by
// <extension findlib-package="ocsiproxy.ext.routes"/>:
//
//	<route host="_ | www.example.com | :sub.example.com" path="/admin | /:user | /"
//	       method="_ | GET" upstream="http://h:p | http://h:p/base/:user"
//	       [timeout="5000|5s|infinity"] [body_length="bytes|infinity"] [keephost="keephost"]>
//	  <header name="X-Name" value="v"/>
//	</route>
//
// The <extension> element itself takes the module-wide defaults of
// MongooseIM's mod_revproxy, which a route overrides: timeout= and
// body_length= attributes, and <header> children (a route's <header> of
// the same name replaces the module's; a route with keephost drops a
// module-wide Host header). It also takes the <pool> and <upstream>
// elements of the backend pool, as the revproxy <extension> does (read
// by pool.ParseConfig; there is one set of pools for both):
//
//	<extension findlib-package="ocsiproxy.ext.routes" timeout="5s" body_length="1MiB">
//	  <pool workers="8" strategy="next_worker"/>
//	  <upstream url="http://10.0.0.2:8080/api" workers="4"/>
//	  <header name="X-Proxy" value="ocsiproxy"/>
//	</extension>
//
// A route matches host labels and path segments one for one: "_" is any
// one label or segment (alone, any host or any path), ":name" binds one
// (a name bound twice must bind the same text), anything else must be
// equal (host names case-insensitively; path segments after
// percent-decoding). The path is matched against the site-relative path,
// as a prefix of whole segments.
//
// The upstream follows nginx's proxy_pass: an upstream without a path
// ("http://h:p") receives the whole request path; an upstream with a path,
// even just "/", receives its own path (bindings substituted) with the
// remainder after the matched segments appended, joined by one slash. The
// query is passed on.
package routes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"

	"github.com/ocsiproxy/ocsiproxy/forward"
	"github.com/ocsiproxy/ocsiproxy/rules"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// segKind is what one label or segment of a pattern is.
type segKind int

const (
	literal  segKind = iota
	binding          // ":name"
	wildcard         // "_"
)

type seg struct {
	kind segKind
	text string // the literal (lower-case for host labels, decoded for path segments), or the binding's name
}

func (s seg) String() string {
	switch s.kind {
	case binding:
		return ":" + s.text
	case wildcard:
		return "_"
	}
	return s.text
}

// Route is a compiled <route>.
type Route struct {
	pos      xmlconf.Pos
	src      string // host, path and method as written, for traces
	anyHost  bool
	host     []seg
	anyPath  bool
	path     []seg
	methods  []string // nil: any
	up       upstream
	timeout  time.Duration // 0: the server's <timeout> only
	limit    int64         // largest request body; -1: none
	headers  [][2]string   // <header> children, Host excluded
	hostHdr  string        // <header name="Host">; "" when absent
	keepHost bool
	fwd      forward.Options
}

// upstream is a parsed upstream URL.
type upstream struct {
	scheme  string // "http" or "https"
	host    []seg  // labels; literal or binding
	port    string // ":8080" or ""
	hasPath bool
	path    []string // segments; ":name" ones are substituted
	slash   bool     // the path ends with "/"
	raw     string
}

// Elements lists the site elements of ocsiproxy.ext.routes.
var Elements = []string{"route"}

// Compile compiles a <route> element.
func Compile(c stage.Compiler, e *xmlconf.Element) stage.Stage {
	errs := c.Errors()
	if !e.CheckAttrs(errs, []string{"path", "upstream"}, []string{"host", "method", "timeout", "body_length", "keephost", "forwarded"}) {
		return nil
	}
	if e.Text != "" {
		errs.Add(e.Pos, "<route>: unexpected text %q", e.Text)
		return nil
	}
	r := &Route{pos: e.Pos, limit: -1}
	host, ok := e.Attr("host")
	if !ok {
		host = "_"
	}
	method, ok := e.Attr("method")
	if !ok {
		method = "_"
	}
	path, _ := e.Attr("path")
	r.src = fmt.Sprintf("route host=%q path=%q method=%q", host, path, method)
	bound := map[string]bool{}
	var err error
	if host == "_" {
		r.anyHost = true
	} else if r.host, err = parseHost(host, true); err != nil {
		errs.Add(e.Pos, "<route>: host=%q: %v", host, err)
		return nil
	}
	for _, s := range r.host {
		if s.kind == binding {
			bound[s.text] = true
		}
	}
	if path == "_" {
		r.anyPath = true
	} else if r.path, err = parsePath(path); err != nil {
		errs.Add(e.Pos, "<route>: path=%q: %v", path, err)
		return nil
	}
	for _, s := range r.path {
		if s.kind == binding {
			bound[s.text] = true
		}
	}
	if method != "_" {
		for _, m := range strings.Fields(strings.ReplaceAll(method, ",", " ")) {
			if !httpsyntax.IsToken(m) {
				errs.Add(e.Pos, "<route>: method=%q: %q is not a method name", method, m)
				return nil
			}
			r.methods = append(r.methods, strings.ToUpper(m))
		}
		if len(r.methods) == 0 {
			errs.Add(e.Pos, "<route>: empty method; use \"_\" for any")
			return nil
		}
	}
	upS, _ := e.Attr("upstream")
	if r.up, err = parseUpstream(upS, bound); err != nil {
		errs.Add(e.Pos, "<route>: upstream=%q: %v", upS, err)
		return nil
	}
	mod := moduleDefaults(c)
	r.timeout, r.limit = mod.timeout, mod.limit
	if _, ok := e.Attr("timeout"); ok {
		if r.timeout, ok = parseTimeout(e, errs); !ok {
			return nil
		}
	}
	if _, ok := e.Attr("body_length"); ok {
		if r.limit, ok = parseBodyLength(e, errs); !ok {
			return nil
		}
	}
	if v, ok := e.Attr("keephost"); ok {
		if v != "keephost" {
			errs.Add(e.Pos, "<route>: keephost=%q: want keephost=\"keephost\"", v)
			return nil
		}
		r.keepHost = true
	}
	if v, ok := e.Attr("forwarded"); ok {
		if v != "forwarded" {
			errs.Add(e.Pos, "<route>: forwarded=%q: want forwarded=\"forwarded\"", v)
			return nil
		}
		r.fwd.Forwarded = true
	}
	var own []header
	for _, ch := range e.Children {
		if ch.Name != "header" {
			errs.Add(ch.Pos, "<route>: unknown element <%s>; want <header name= value=/>", ch.Name)
			return nil
		}
		h, ok := parseHeader(ch, errs)
		if !ok {
			return nil
		}
		if h.name == "Host" && r.keepHost {
			errs.Add(ch.Pos, "<header name=\"Host\">: cannot be combined with keephost")
			return nil
		}
		own = append(own, h)
	}
	// The module's headers first, each replaced by the route's header of
	// the same name.
	for _, h := range mod.headers {
		if h.name == "Host" && r.keepHost || slices.ContainsFunc(own, func(o header) bool { return o.name == h.name }) {
			continue
		}
		r.addHeader(h)
	}
	for _, h := range own {
		r.addHeader(h)
	}
	return r
}

// addHeader adds a <header> to the headers r sends.
func (r *Route) addHeader(h header) {
	if h.name == "Host" {
		r.hostHdr = h.value
		return
	}
	r.headers = append(r.headers, [2]string{h.name, h.value})
}

// header is one <header name= value=/> element, its name canonical.
type header struct{ name, value string }

// parseHeader reads a <header name= value=/> element of a route or of
// the module.
func parseHeader(ch *xmlconf.Element, errs *xmlconf.ErrorList) (header, bool) {
	if !ch.CheckAttrs(errs, []string{"name", "value"}, nil) {
		return header{}, false
	}
	if len(ch.Children) > 0 || ch.Text != "" {
		errs.Add(ch.Pos, "<header>: want an empty element")
		return header{}, false
	}
	name, _ := ch.Attr("name")
	value, _ := ch.Attr("value")
	if !httpsyntax.IsToken(name) || strings.ContainsAny(value, "\r\n\x00") {
		errs.Add(ch.Pos, "<header>: invalid header name or value")
		return header{}, false
	}
	name = textproto.CanonicalMIMEHeaderKey(name)
	if name != "Host" && forbiddenHeader(name) {
		errs.Add(ch.Pos, "<header>: %s is managed by the proxy and cannot be set", name)
		return header{}, false
	}
	return header{name, value}, true
}

// parseTimeout reads the timeout= attribute of e (a route or the
// <extension> element): "5000" milliseconds, "5s", or "infinity" (0: no
// bound but the server's <timeout>).
func parseTimeout(e *xmlconf.Element, errs *xmlconf.ErrorList) (time.Duration, bool) {
	v, _ := e.Attr("timeout")
	d, ok := xmlconf.ParseDuration(v)
	if !ok || d == 0 {
		errs.Add(e.Pos, "<%s>: timeout=%q: want a duration (\"5000\" milliseconds, \"5s\") or \"infinity\"", e.Name, v)
		return 0, false
	}
	if d == xmlconf.InfiniteDuration {
		d = 0
	}
	return d, true
}

// parseBodyLength reads the body_length= attribute of e: a size, or
// "infinity" (-1).
func parseBodyLength(e *xmlconf.Element, errs *xmlconf.ErrorList) (int64, bool) {
	v, _ := e.Attr("body_length")
	n, err := xmlconf.ParseSize(v)
	if err != nil {
		errs.Add(e.Pos, "<%s>: body_length=%q: %v", e.Name, v, err)
		return 0, false
	}
	return int64(n), true
}

// module is the module-wide defaults of the routes <extension> elements.
type module struct {
	timeout time.Duration // 0: none
	limit   int64         // -1: none
	headers []header
}

// ExtensionAttrs are the attributes the routes <extension> element takes
// besides the one naming it.
var ExtensionAttrs = []string{"timeout", "body_length"}

// Configure checks the routes <extension> element: its timeout= and
// body_length= attributes and its <header> children; <pool> and
// <upstream> children are left to pool.ParseConfig. Any other child is
// an error with its position.
func Configure(c stage.Compiler, ext *xmlconf.Extension) {
	if ext.Element != nil {
		readModule(ext.Element, c.Errors(), true)
	}
}

// readModule reads one routes <extension> element into m. With check,
// a child that is neither <header>, <pool> nor <upstream> is reported.
func readModule(e *xmlconf.Element, errs *xmlconf.ErrorList, check bool) module {
	m := module{limit: -1}
	if _, ok := e.Attr("timeout"); ok {
		m.timeout, _ = parseTimeout(e, errs)
	}
	if _, ok := e.Attr("body_length"); ok {
		if n, ok := parseBodyLength(e, errs); ok {
			m.limit = n
		}
	}
	for _, ch := range e.Children {
		switch ch.Name {
		case "header":
			if h, ok := parseHeader(ch, errs); ok {
				m.headers = append(m.headers, h)
			}
		case "pool", "upstream":
			// Read by pool.ParseConfig.
		default:
			if check {
				errs.Add(ch.Pos, "unknown element <%s> in the routes <extension> (want <pool>, <upstream> or <header>)", ch.Name)
			}
		}
	}
	return m
}

// moduleDefaults returns the module-wide defaults of the configuration c
// compiles (none when c does not give the configuration). With several
// routes <extension> elements, a later one's values override an earlier
// one's, and their headers add up.
func moduleDefaults(c stage.Compiler) module {
	m := module{limit: -1}
	cs, ok := c.(stage.ConfigSource)
	if !ok || cs.Config() == nil {
		return m
	}
	var scratch xmlconf.ErrorList // Configure reports the problems
	for _, ext := range cs.Config().Extensions {
		if short, _ := ext.ShortName(); short != "routes" || ext.Element == nil {
			continue
		}
		e := ext.Element
		one := readModule(e, &scratch, false)
		if _, ok := e.Attr("timeout"); ok {
			m.timeout = one.timeout
		}
		if _, ok := e.Attr("body_length"); ok {
			m.limit = one.limit
		}
		m.headers = append(m.headers, one.headers...)
	}
	return m
}

// forbiddenHeader lists the headers a <header> may not set: hop-by-hop
// and framing headers.
func forbiddenHeader(name string) bool { return forward.IsHopByHop(name) || name == "Content-Length" }

// parseHost splits a host pattern into labels. wild allows "_" labels.
func parseHost(h string, wild bool) ([]seg, error) {
	if h == "" {
		return nil, errors.New("empty host; use \"_\" for any")
	}
	var out []seg
	for _, l := range strings.Split(h, ".") {
		switch {
		case l == "":
			return nil, errors.New("empty label")
		case l[0] == ':':
			if !validName(l[1:]) {
				return nil, fmt.Errorf("bad binding %q: want \":name\" (letters, digits, _)", l)
			}
			out = append(out, seg{binding, l[1:]})
		case l == "_" && wild:
			out = append(out, seg{wildcard, ""})
		default:
			for i := 0; i < len(l); i++ {
				if !labelByte(l[i]) {
					return nil, fmt.Errorf("label %q: %q is not allowed in a host name", l, l[i])
				}
			}
			out = append(out, seg{literal, strings.ToLower(l)})
		}
	}
	return out, nil
}

func labelByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// parsePath splits a path pattern into segments; empty segments (a
// trailing slash, "//") are ignored, as in MongooseIM.
func parsePath(p string) ([]seg, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, errors.New("must start with \"/\" (or be \"_\" for any)")
	}
	var out []seg
	for _, s := range strings.Split(p, "/") {
		switch {
		case s == "":
		case s[0] == ':':
			if !validName(s[1:]) {
				return nil, fmt.Errorf("bad binding %q: want \":name\" (letters, digits, _)", s)
			}
			out = append(out, seg{binding, s[1:]})
		case s == "_":
			out = append(out, seg{wildcard, ""})
		default:
			d, err := url.PathUnescape(s)
			if err != nil {
				return nil, fmt.Errorf("segment %q: %v", s, err)
			}
			if d == "." || d == ".." {
				return nil, fmt.Errorf("segment %q: dot segments never match a normalised path", s)
			}
			out = append(out, seg{literal, d})
		}
	}
	return out, nil
}

// parseUpstream parses "http[s]://host[:port][/path]". Host labels and
// path segments may be ":name" bindings, which bound must define.
func parseUpstream(u string, bound map[string]bool) (upstream, error) {
	up := upstream{raw: u}
	i := strings.Index(u, "://")
	if i < 0 {
		return up, errors.New("want http://host[:port][/path] or https://...")
	}
	up.scheme = strings.ToLower(u[:i])
	if up.scheme != "http" && up.scheme != "https" {
		return up, errors.New("scheme must be http or https")
	}
	rest := u[i+3:]
	if strings.ContainsAny(rest, "?#") {
		return up, errors.New("an upstream has no query or fragment")
	}
	hostport, path, hasPath := strings.Cut(rest, "/")
	host := hostport
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return up, errors.New("unclosed [ in host")
		}
		host, up.port = hostport[:end+1], hostport[end+1:]
		up.host = []seg{{literal, host}}
	} else {
		if c := strings.LastIndexByte(hostport, ':'); c > 0 && allDigits(hostport[c+1:]) {
			host, up.port = hostport[:c], hostport[c:]
		}
		labels, err := parseHost(host, false)
		if err != nil {
			return up, err
		}
		up.host = labels
	}
	if up.port != "" && !(strings.HasPrefix(up.port, ":") && isPort(up.port[1:])) {
		return up, fmt.Errorf("bad port %q", up.port)
	}
	for _, l := range up.host {
		if l.kind == binding && !bound[l.text] {
			return up, fmt.Errorf("binding :%s is not bound by host or path", l.text)
		}
	}
	if hasPath {
		up.hasPath = true
		up.slash = path == "" || strings.HasSuffix(path, "/")
		for _, s := range strings.Split(path, "/") {
			if s == "" {
				continue
			}
			if s[0] == ':' {
				if !validName(s[1:]) {
					return up, fmt.Errorf("bad binding %q: want \":name\"", s)
				}
				if !bound[s[1:]] {
					return up, fmt.Errorf("binding %s is not bound by host or path", s)
				}
			}
			up.path = append(up.path, s)
		}
	}
	// The shape must be a valid destination with every binding filled.
	if _, err := rules.ParseTarget(up.expand(func(string) string { return "x" }, "", "")); err != nil {
		return up, err
	}
	return up, nil
}

func allDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func isPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}

// expand builds the destination URL: bindings substituted; fullPath is
// the request's whole path (for an upstream without path), rem the
// remainder after the matched segments ("" or beginning with "/").
func (u *upstream) expand(val func(string) string, fullPath, rem string) string {
	var b strings.Builder
	b.WriteString(u.scheme + "://")
	for i, l := range u.host {
		if i > 0 {
			b.WriteByte('.')
		}
		if l.kind == binding {
			b.WriteString(val(l.text))
		} else {
			b.WriteString(l.text)
		}
	}
	b.WriteString(u.port)
	if !u.hasPath {
		if fullPath == "" {
			fullPath = "/"
		}
		b.WriteString(fullPath)
		return b.String()
	}
	var base strings.Builder
	for _, s := range u.path {
		base.WriteByte('/')
		if s[0] == ':' {
			base.WriteString(val(s[1:]))
		} else {
			base.WriteString(s)
		}
	}
	p := base.String()
	switch {
	case rem != "":
		p += rem
	case u.slash:
		p += "/"
	}
	b.WriteString(p)
	return b.String()
}

// match matches the route against st. It returns the bindings and the
// remainder of the site-relative path after the matched segments ("" or
// beginning with "/"), or why it did not match.
func (r *Route) match(st *stage.State) (bindings map[string]string, rem string, why string) {
	if r.methods != nil {
		ok := false
		for _, m := range r.methods {
			ok = ok || m == st.Method
		}
		if !ok {
			return nil, "", "method " + st.Method
		}
	}
	bindings = map[string]string{}
	bind := func(name, v string) bool {
		if old, ok := bindings[name]; ok {
			return old == v
		}
		bindings[name] = v
		return true
	}
	if !r.anyHost {
		if st.HostName == "" {
			return nil, "", "no Host header"
		}
		labels := strings.Split(strings.TrimSuffix(st.HostName, "."), ".")
		if len(labels) != len(r.host) {
			return nil, "", "host " + st.HostName
		}
		for i, p := range r.host {
			l := labels[i]
			switch p.kind {
			case literal:
				if l != p.text {
					return nil, "", "host " + st.HostName
				}
			case binding:
				// A bound label is substituted into the upstream: only
				// host-name characters may take part.
				if l == "" || !allLabelBytes(l) || !bind(p.text, l) {
					return nil, "", "host " + st.HostName
				}
			}
		}
	}
	if r.anyPath {
		return bindings, "/" + st.SubPath, ""
	}
	var segs []string
	if st.SubPath != "" {
		segs = strings.Split(st.SubPath, "/")
	}
	if len(segs) < len(r.path) {
		return nil, "", "path /" + st.SubPath
	}
	for i, p := range r.path {
		s := segs[i]
		switch p.kind {
		case literal:
			d, err := url.PathUnescape(s)
			if err != nil || d != p.text {
				return nil, "", "path /" + st.SubPath
			}
		case binding:
			if s == "" || !bind(p.text, s) {
				return nil, "", "path /" + st.SubPath
			}
		case wildcard:
			if s == "" {
				return nil, "", "path /" + st.SubPath
			}
		}
	}
	if rest := segs[len(r.path):]; len(rest) > 0 {
		rem = "/" + strings.Join(rest, "/")
	}
	return bindings, rem, ""
}

func allLabelBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		if !labelByte(s[i]) {
			return false
		}
	}
	return true
}

// Run forwards an unanswered matching request to the route's upstream.
func (r *Route) Run(ctx context.Context, st *stage.State) (stage.Result, error) {
	if st.Answer != nil {
		return stage.Next, nil
	}
	b, rem, why := r.match(st)
	if why != "" {
		st.Tracef(r.pos, "%s: no match (%s)", r.src, why)
		return stage.Next, nil
	}
	dest := r.up.expand(func(n string) string { return b[n] }, st.Path, rem)
	if st.HasQuery {
		dest += "?" + st.RawQuery
	}
	t, err := rules.ParseTarget(dest)
	if err != nil {
		return stage.Next, stage.Errorf(http.StatusInternalServerError, "route at %s: %v", r.pos, err)
	}
	host := t.Host
	switch {
	case r.hostHdr != "":
		host = r.hostHdr
	case r.keepHost && st.Host != "":
		host = st.Host
	}
	st.Tracef(r.pos, "%s: match -> proxy %s %s Host: %s", r.src, st.Method, t.URL(), host)
	in := st.In
	if r.limit >= 0 && in.ContentLength > r.limit {
		st.AnswerPos = r.pos // the logs name the route that refused
		return stage.Next, stage.Errorf(http.StatusRequestEntityTooLarge,
			"route at %s: request body of %d bytes is over body_length %d", r.pos, in.ContentLength, r.limit)
	}
	rctx, cancel := context.WithCancelCause(ctx)
	out := forward.NewRequest(rctx, st, t, host, r.fwd)
	var lim *limitedBody
	if r.limit >= 0 && out.Body != nil && out.ContentLength < 0 {
		lim = &limitedBody{rc: out.Body, left: r.limit, limit: r.limit}
		out.Body = lim
	}
	for _, h := range r.headers {
		out.Header.Set(h[0], h[1])
	}
	var timer *time.Timer
	if r.timeout > 0 {
		timer = time.AfterFunc(r.timeout, func() { cancel(errTimeout) })
	}
	resp, err := forward.RoundTrip(st, out)
	if timer != nil && !timer.Stop() && err == nil {
		// The timeout fired as the head arrived: the body would be cut.
		resp.Body.Close()
		err = errTimeout
	}
	if err != nil {
		cancel(nil)
		st.AnswerPos = r.pos // the logs name the route that failed
		status := forward.ErrorStatus(ctx, err)
		switch {
		case lim != nil && lim.over.Load():
			status = http.StatusRequestEntityTooLarge
		case errors.Is(context.Cause(rctx), errTimeout) || errors.Is(err, errTimeout):
			status = http.StatusGatewayTimeout
			err = fmt.Errorf("%w (%v)", errTimeout, r.timeout)
		}
		return stage.Next, &stage.Error{Status: status, Err: fmt.Errorf("route at %s: %s %s: %w", r.pos, st.Method, t.URL(), err)}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// A tunnel keeps the connection itself as its body (the server
		// needs its CloseWrite); it ends with the client's request, which
		// ends rctx too.
		context.AfterFunc(ctx, func() { cancel(nil) })
	} else {
		resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	}
	st.SetProxied(resp, out, r.pos)
	return stage.Next, nil
}

// errTimeout is the cause of a route's timeout.
var errTimeout = errors.New("upstream did not answer within the route's timeout")

// cancelBody ends the request's context when the answer's body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

// Unwrap returns the body it ends the context of.
func (b *cancelBody) Unwrap() io.ReadCloser { return b.ReadCloser }

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// limitedBody fails a request body of unknown length once it exceeds the
// route's body_length.
type limitedBody struct {
	rc    io.ReadCloser
	left  int64
	limit int64
	over  atomic.Bool
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, &http.MaxBytesError{Limit: l.limit}
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.rc.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		l.over.Store(true)
		return n - 1, &http.MaxBytesError{Limit: l.limit}
	}
	return n, err
}

func (l *limitedBody) Close() error { return l.rc.Close() }
