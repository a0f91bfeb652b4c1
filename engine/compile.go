// Package engine is the request engine: it compiles the hosts, sites and
// site instructions of a loaded configuration into an immutable tree of
// stages (compile.go), chooses the host and walks the tree for each
// request (engine.go, hostfilter.go), and turns the outcome into the
// answer (handler.go: the Handler every server of ocsiproxy serves, which
// takes the HTTP/1 server's requests as wire.Inbound values and net/http's
// as http.Request, and tells its Observers, the logs and metrics, about
// each request). It knows nothing of listeners or of the wire's syntax.
package engine

import (
	"slices"
	"strings"
	"time"

	"github.com/ocsiproxy/ocsiproxy/accesscontrol"
	"github.com/ocsiproxy/ocsiproxy/ext/authbasic"
	"github.com/ocsiproxy/ocsiproxy/ext/cors"
	"github.com/ocsiproxy/ocsiproxy/ext/deflate"
	"github.com/ocsiproxy/ocsiproxy/ext/routes"
	"github.com/ocsiproxy/ocsiproxy/ext/staticmod"
	"github.com/ocsiproxy/ocsiproxy/filters"
	"github.com/ocsiproxy/ocsiproxy/pattern"
	"github.com/ocsiproxy/ocsiproxy/rules"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// compileFunc compiles one site instruction; it returns nil after
// reporting a problem.
type compileFunc func(stage.Compiler, *xmlconf.Element) stage.Stage

// extension is an Ocsigen extension ocsiproxy implements, with the site
// elements it provides.
type extension struct {
	name     string // findlib package, e.g. "ocsigenserver.ext.revproxy"
	elements map[string]compileFunc
	// configure, when set, checks the extension's <extension> line and
	// its children (the extension's global options) once per
	// configuration.
	configure func(stage.Compiler, *xmlconf.Extension)
	// attrs are the attributes the <extension> element takes besides
	// the one naming the extension; any other is an error.
	attrs []string
	// external is set when the children of the <extension> element are
	// read outside the engine (pool, forward and admin read them). When
	// neither configure nor external is set, a child is an error, as
	// Ocsigen refuses content inside an extension that takes none.
	external bool
}

// extensions lists the implemented extensions by short name: the last
// part of the findlib package, or the module file name without its
// extension.
var extensions = map[string]*extension{
	// The children of the revproxy <extension> element are read by
	// pool.ParseConfig (<pool>, <upstream>) and forward.ParseConfig
	// (<forwarded/>).
	"revproxy":    {name: "ocsigenserver.ext.revproxy", elements: map[string]compileFunc{"revproxy": rules.CompileRevProxy}, external: true},
	"redirectmod": {name: "ocsigenserver.ext.redirectmod", elements: map[string]compileFunc{"redirect": rules.CompileRedirect}},
	"rewritemod":  {name: "ocsigenserver.ext.rewritemod", elements: map[string]compileFunc{"rewrite": rules.CompileRewrite}},
	"outputfilter": {name: "ocsigenserver.ext.outputfilter", elements: map[string]compileFunc{
		"outputfilter": filters.CompileOutputFilter,
		"sethttpcode":  filters.CompileSetHTTPCode,
	}},
	"accesscontrol": {name: "ocsigenserver.ext.accesscontrol", elements: accessControlElements()},
	// admin provides no site element: its <extension> element configures
	// the admin listener (package admin).
	"admin": {name: "ocsiproxy.ext.admin", external: true},
	"staticmod": {name: "ocsigenserver.ext.staticmod", elements: map[string]compileFunc{"static": staticmod.Compile},
		configure: staticmod.Configure},
	"extendconfiguration": {name: "ocsigenserver.ext.extendconfiguration", elements: elementsOf(staticmod.ExtendElements, staticmod.CompileExtend),
		configure: staticmod.Configure},
	"authbasic":  {name: "ocsigenserver.ext.authbasic", elements: elementsOf(authbasic.Elements, authbasic.Compile), configure: authbasic.Configure},
	"cors":       {name: "ocsigenserver.ext.cors", elements: elementsOf(cors.Elements, cors.Compile), configure: cors.Configure},
	"deflatemod": {name: "ocsigenserver.ext.deflatemod", elements: elementsOf(deflate.Elements, deflate.Compile), configure: deflate.Configure},
	// routes is ocsiproxy's own: MongooseIM-style routes without regexps.
	// Its <pool> and <upstream> children are read by pool.ParseConfig,
	// the others by routes.Configure.
	"routes": {name: "ocsiproxy.ext.routes", elements: elementsOf(routes.Elements, routes.Compile),
		configure: routes.Configure, attrs: routes.ExtensionAttrs},
}

// elementsOf maps every name to f.
func elementsOf(names []string, f compileFunc) map[string]compileFunc {
	m := make(map[string]compileFunc)
	for _, n := range names {
		m[n] = f
	}
	return m
}

func accessControlElements() map[string]compileFunc {
	m := make(map[string]compileFunc)
	for _, name := range accesscontrol.Elements {
		m[name] = accesscontrol.Compile
	}
	return m
}

// elementOwner maps each site element to its extension's short name.
var elementOwner = func() map[string]string {
	m := make(map[string]string)
	for short, ext := range extensions {
		for el := range ext.elements {
			m[el] = short
		}
	}
	return m
}()

// SiteElements returns every site element ocsiproxy compiles, with the
// findlib package of the extension that provides it, e.g. "revproxy":
// "ocsigenserver.ext.revproxy".
func SiteElements() map[string]string {
	m := make(map[string]string, len(elementOwner))
	for el, short := range elementOwner {
		m[el] = extensions[short].name
	}
	return m
}

// Options are the run-time settings of a compiled tree that do not come
// from the configuration file.
type Options struct {
	// MatchTimeout bounds each regexp match; 0 means
	// pattern.DefaultMatchTimeout (100 ms).
	MatchTimeout time.Duration
	// NoIndex turns off the rule index: every rule is tried in turn.
	// The results are the same; only the cost differs.
	NoIndex bool
}

// compiler implements stage.Compiler over one configuration.
type compiler struct {
	cfg     *xmlconf.Config
	errs    xmlconf.ErrorList
	loaded  map[string]bool // short names of the loaded extensions
	timeout time.Duration
	noIndex bool
	site    []string // segments of the site being compiled
	host    *hostDefaults
}

func (c *compiler) Errors() *xmlconf.ErrorList  { return &c.errs }
func (c *compiler) Config() *xmlconf.Config     { return c.cfg }
func (c *compiler) MatchTimeout() time.Duration { return c.timeout }

// Note records a site element accepted with no effect in the
// configuration's Notes, once per element however often the
// configuration is compiled.
func (c *compiler) Note(e *xmlconf.Element, reason string) {
	n := xmlconf.Note{Pos: e.Pos, Option: e.Name, Reason: reason}
	if !slices.Contains(c.cfg.Notes, n) {
		c.cfg.Notes = append(c.cfg.Notes, n)
	}
}

// Block compiles instructions nested in an extension's element; sites are
// not allowed there.
func (c *compiler) Block(elems []*xmlconf.Element) []stage.Stage {
	return c.body(elems, false)
}

// body compiles a host's or a site's children in document order.
func (c *compiler) body(elems []*xmlconf.Element, sitesAllowed bool) []stage.Stage {
	var stages []stage.Stage
	for _, e := range elems {
		var s stage.Stage
		if e.Name == "site" {
			if !sitesAllowed {
				c.errs.Add(e.Pos, "<site> is not allowed here")
				continue
			}
			s = c.compileSite(e)
		} else {
			s = c.instruction(e)
		}
		if s != nil {
			stages = append(stages, s)
		}
	}
	if c.noIndex {
		return stages
	}
	return indexRuns(stages)
}

// indexRuns replaces every run of at least rules.MinIndexed consecutive
// rules by one rules.Index, so that a request tries only the rules that
// can match it.
func indexRuns(stages []stage.Stage) []stage.Stage {
	var out []stage.Stage
	for i := 0; i < len(stages); {
		j := i
		for j < len(stages) && rules.Indexable(stages[j]) {
			j++
		}
		switch {
		case j-i >= rules.MinIndexed:
			out = append(out, rules.NewIndex(stages[i:j]))
			i = j
		case j > i:
			out = append(out, stages[i:j]...)
			i = j
		default:
			out = append(out, stages[i])
			i++
		}
	}
	return out
}

func (c *compiler) instruction(e *xmlconf.Element) stage.Stage {
	short, known := elementOwner[e.Name]
	if !known {
		c.errs.Add(e.Pos, "unknown element <%s>", e.Name)
		return nil
	}
	if !c.loaded[short] {
		c.errs.Add(e.Pos, "<%s> needs <extension findlib-package=%q/>", e.Name, extensions[short].name)
		return nil
	}
	return extensions[short].elements[e.Name](c, e)
}

// compileSite compiles a <site path=> element and its body, with the
// site's segments pushed while its children compile.
func (c *compiler) compileSite(e *xmlconf.Element) stage.Stage {
	if !e.CheckAttrs(&c.errs, []string{"path"}, []string{"charset"}) {
		return nil
	}
	p, _ := e.Attr("path")
	var segs []string
	for _, s := range strings.Split(strings.Trim(p, "/"), "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	parent := c.site
	c.site = append(append([]string(nil), parent...), segs...)
	s := &siteStage{segs: c.site, pos: e.Pos, host: c.host}
	s.name = s.display()
	s.body = c.body(e.Children, true)
	if cs, ok := e.Attr("charset"); ok {
		s.body = c.withCharset(e.Pos, "site", cs, s.body)
	}
	c.site = parent
	return s
}

// withCharset puts the stage of a charset attribute of a <host> or <site>
// in front of its body when staticmod is loaded: the charset is the
// default charset of the files <static> serves there (nothing else
// in ocsiproxy sends a charset taken from the configuration).
func (c *compiler) withCharset(pos xmlconf.Pos, owner, charset string, body []stage.Stage) []stage.Stage {
	if !c.loaded["staticmod"] {
		return body
	}
	return append([]stage.Stage{staticmod.CharsetDefault(pos, owner, charset)}, body...)
}

// checkExtension reports the attributes of an <extension> element that
// its extension does not take, and its children when nothing reads them.
func (c *compiler) checkExtension(impl *extension, ext *xmlconf.Extension) {
	e := ext.Element
	if e == nil {
		return
	}
	for _, a := range e.Attrs {
		if a.Name != ext.Attr && !slices.Contains(impl.attrs, a.Name) {
			c.errs.Add(e.Pos, "<%s>: unknown attribute %q for %s", e.Name, a.Name, ext.Name)
		}
	}
	if impl.configure == nil && !impl.external {
		for _, ch := range e.Children {
			c.errs.Add(ch.Pos, "<%s>: %s takes no options", ch.Name, ext.Name)
		}
	}
}

// Compile compiles cfg into an immutable tree, reporting every problem
// found, each "file:line:col: message".
func Compile(cfg *xmlconf.Config, env *stage.Env, opts Options) (*Tree, error) {
	timeout := opts.MatchTimeout
	if timeout <= 0 {
		timeout = pattern.DefaultMatchTimeout
	}
	c := &compiler{cfg: cfg, loaded: make(map[string]bool), timeout: timeout, noIndex: opts.NoIndex}
	for i, ext := range cfg.Extensions {
		short, ok := ext.ShortName()
		impl := extensions[short]
		if !ok || impl == nil {
			c.errs.Add(ext.Pos, "extension %q is not implemented by ocsiproxy", ext.Name)
			continue
		}
		c.loaded[short] = true
		c.checkExtension(impl, &cfg.Extensions[i])
		if impl.configure != nil {
			impl.configure(c, &cfg.Extensions[i])
		}
	}
	t := &Tree{env: env, cfg: cfg, maxRetries: cfg.MaxRetries, debug: cfg.DebugMode}
	for _, h := range cfg.Hosts {
		pats, err := parseHostFilter(h.Filter)
		if err != nil {
			c.errs.Add(h.Pos, "<host>: %v", err)
		}
		hd := &hostDefaults{
			name:      h.DefaultHostname,
			httpPort:  h.DefaultHTTPPort,
			httpsPort: h.DefaultHTTPSPort,
			always:    cfg.UseDefaultHostname,
		}
		c.host, c.site = hd, nil
		body := c.body(h.Body, true)
		if h.HasCharset {
			body = c.withCharset(h.Pos, "host", h.Charset, body)
		}
		t.hosts = append(t.hosts, &host{patterns: pats, filter: h.Filter, pos: h.Pos, body: body})
	}
	if err := c.errs.Err(); err != nil {
		return nil, err
	}
	return t, nil
}
