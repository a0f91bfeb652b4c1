// Package rules compiles the request rules of an Ocsigen site:
// <revproxy> (ocsigenserver.ext.revproxy), <redirect>
// (ocsigenserver.ext.redirectmod) and <rewrite>
// (ocsigenserver.ext.rewritemod).
//
// A rule acts only on a request nobody has answered yet. Its regexp must
// match the whole subject string: the site-relative path plus "?query"
// (suburl), or the full URL (fullurl). Its destination is an Ocsigen
// template in which \0..\9 are the match's groups.
package rules

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ocsiproxy/ocsiproxy/forward"
	"github.com/ocsiproxy/ocsiproxy/pattern"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/urlpath"
	"github.com/ocsiproxy/ocsiproxy/wire"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// subject says which string a rule's regexp is matched against.
type subject int

const (
	subURL      subject = iota // the site-relative path and query
	fullURL                    // the full URL
	subThenFull                // suburl first, then fullurl (<redirect regexp=>)
)

func (s subject) String() string {
	switch s {
	case subURL:
		return "suburl"
	case fullURL:
		return "fullurl"
	}
	return "regexp"
}

// matcher is the regexp part shared by every rule.
type matcher struct {
	re   *pattern.Regexp
	subj subject
	attr string // the attribute it came from, for traces
	pos  xmlconf.Pos
}

// compileMatcher reads the one of suburl, fullurl and regexp that e must
// have. regexpMeans is what the regexp attribute means for this element.
func compileMatcher(c stage.Compiler, e *xmlconf.Element, regexpMeans subject) (*matcher, bool) {
	m := &matcher{pos: e.Pos}
	var found []string
	for _, a := range []struct {
		name string
		subj subject
	}{{"suburl", subURL}, {"fullurl", fullURL}, {"regexp", regexpMeans}} {
		if v, ok := e.Attr(a.name); ok {
			found = append(found, a.name)
			m.subj, m.attr = a.subj, a.name
			re, err := pattern.Compile(v, true, c.MatchTimeout())
			if err != nil {
				c.Errors().Add(e.Pos, "<%s>: %s: %v", e.Name, a.name, err)
				return nil, false
			}
			m.re = re
		}
	}
	switch len(found) {
	case 0:
		c.Errors().Add(e.Pos, "<%s>: missing attribute \"suburl\", \"fullurl\" or \"regexp\"", e.Name)
		return nil, false
	case 1:
		return m, true
	}
	c.Errors().Add(e.Pos, "<%s>: attributes %s are exclusive", e.Name, strings.Join(found, " and "))
	return nil, false
}

// match matches the request of st and appends the groups (PCRE
// numbering, group 0 first) to dst. ok is false when the rule does not
// apply.
func (m *matcher) match(st *stage.State, what string, dst []string) (groups []string, ok bool, err error) {
	try := func(s subject) ([]string, bool, error) {
		var in string
		if s == subURL {
			in = st.SubURL()
		} else {
			if p := m.re.RequiredPrefix(); p != "" && st.Trace == nil && !st.FullURLHasPrefix(p) {
				// The regexp would refuse the full URL on its prefix: do
				// not build it.
				return dst, false, nil
			}
			u, ok := st.FullURL()
			if !ok {
				if st.Trace != nil {
					st.Tracef(m.pos, "%s %s=\"%s\": no Host header, fullurl cannot match", what, m.attr, m.re)
				}
				return dst, false, nil
			}
			in = u
		}
		groups, ok, err := m.re.MatchGroups(in, dst)
		if err != nil {
			return dst, false, stage.Errorf(http.StatusInternalServerError, "%s at %s: %v", what, m.pos, err)
		}
		if !ok {
			attr := m.attr
			if m.subj == subThenFull {
				attr += " (as " + s.String() + ")"
			}
			if st.Trace != nil {
				st.Tracef(m.pos, "%s %s=\"%s\": no match on %q", what, attr, m.re, in)
			}
		}
		return groups, ok, nil
	}
	switch m.subj {
	case subThenFull:
		groups, ok, err := try(subURL)
		if ok || err != nil {
			return groups, ok, err
		}
		return try(fullURL)
	default:
		return try(m.subj)
	}
}

// flag reads an Ocsigen switch attribute such as keephost="keephost":
// only the attribute's own name as its value turns it on. Any other value
// leaves it off, as Ocsigen 5.0.1 does.
func flag(e *xmlconf.Element, name string) bool {
	v, _ := e.Attr(name)
	return v == name
}

// template parses the template attribute attr of e against the groups of
// m's regexp.
func template(c stage.Compiler, e *xmlconf.Element, attr string, m *matcher) (*pattern.Template, bool) {
	v, _ := e.Attr(attr)
	t, err := pattern.ParseTemplate(v, m.re)
	if err != nil {
		c.Errors().Add(e.Pos, "<%s>: %s: %v", e.Name, attr, err)
		return nil, false
	}
	return t, true
}

// RevProxy is a compiled <revproxy>: it forwards a matching request to the
// expanded destination.
type RevProxy struct {
	m          *matcher
	dest       *pattern.Template
	target     targetParser
	keepHost   bool
	noPipeline bool
	fwd        forward.Options
}

// CompileRevProxy compiles a <revproxy suburl|fullurl|regexp= dest=
// [keephost="keephost"] [nopipeline="nopipeline"] [forwarded="forwarded"]/>
// element. regexp means fullurl; forwarded sends an RFC 7239 Forwarded
// field to the backend.
func CompileRevProxy(c stage.Compiler, e *xmlconf.Element) stage.Stage {
	if !e.CheckAttrs(c.Errors(), []string{"dest"}, []string{"suburl", "fullurl", "regexp", "keephost", "nopipeline", "forwarded"}) {
		return nil
	}
	if v, ok := e.Attr("forwarded"); ok && v != "forwarded" {
		c.Errors().Add(e.Pos, "<revproxy>: forwarded=%q: want forwarded=\"forwarded\"", v)
		return nil
	}
	m, ok := compileMatcher(c, e, fullURL)
	if !ok {
		return nil
	}
	dest, ok := template(c, e, "dest", m)
	if !ok {
		return nil
	}
	if _, err := ParseTarget(sample(dest, m)); err != nil {
		c.Errors().Add(e.Pos, "<revproxy>: dest: %v", err)
		return nil
	}
	return &RevProxy{m: m, dest: dest, target: newTargetParser(dest), keepHost: flag(e, "keephost"), noPipeline: flag(e, "nopipeline"),
		fwd: forward.Options{Forwarded: flag(e, "forwarded")}}
}

// sample expands t with every group replaced by "x", to check at load time
// that the destination has the shape of a URL.
func sample(t *pattern.Template, m *matcher) string {
	n := m.re.NumGroups()
	groups := make([]string, n+1)
	groups[0] = strings.Repeat("x", n)
	for i := 1; i <= n; i++ {
		groups[i] = "x"
	}
	return t.ExpandGroups(groups)
}

// NoPipeline reports whether nopipeline="nopipeline" asks for a fresh
// backend connection for each request.
func (r *RevProxy) NoPipeline() bool { return r.noPipeline }

// Run forwards the request when it is unanswered and matches.
func (r *RevProxy) Run(ctx context.Context, st *stage.State) (stage.Result, error) {
	if st.Answer != nil {
		return stage.Next, nil
	}
	var buf [4]string
	groups, ok, err := r.m.match(st, "revproxy", buf[:0])
	if !ok || err != nil {
		return stage.Next, err
	}
	dest := r.dest.ExpandGroups(groups)
	t, err := r.target.parse(dest)
	if err != nil {
		return stage.Next, stage.Errorf(http.StatusInternalServerError, "revproxy at %s: %v", r.m.pos, err)
	}
	host := t.Host
	if r.keepHost && st.Host != "" {
		host = st.Host
	}
	if st.Trace != nil {
		st.Tracef(r.m.pos, "revproxy %s=\"%s\": match -> proxy %s %s Host: %s", r.m.subj, r.m.re, st.Method, t.URL(), host)
	}
	out := forward.NewRequest(ctx, st, &t, host, r.fwd)
	// nopipeline: the connection is not shared with other requests; it is
	// closed after this exchange.
	out.Close = r.noPipeline
	resp, err := forward.RoundTrip(st, out)
	if err != nil {
		st.AnswerPos = r.m.pos // the logs name the rule that failed
		return stage.Next, &stage.Error{
			Status: forward.ErrorStatus(ctx, err),
			Err:    fmt.Errorf("revproxy at %s: %s %s: %w", r.m.pos, st.Method, t.URL(), err),
		}
	}
	st.SetProxied(resp, out, r.m.pos)
	return stage.Next, nil
}

// Redirect is a compiled <redirect>: it answers a matching request with
// 301 (302 when temporary) and the expanded destination as Location.
type Redirect struct {
	m      *matcher
	dest   *pattern.Template
	status int
}

// CompileRedirect compiles a <redirect suburl|fullurl|regexp= dest=
// [temporary="temporary"]/> element. regexp tries the suburl first, then
// the fullurl.
func CompileRedirect(c stage.Compiler, e *xmlconf.Element) stage.Stage {
	if !e.CheckAttrs(c.Errors(), []string{"dest"}, []string{"suburl", "fullurl", "regexp", "temporary"}) {
		return nil
	}
	m, ok := compileMatcher(c, e, subThenFull)
	if !ok {
		return nil
	}
	dest, ok := template(c, e, "dest", m)
	if !ok {
		return nil
	}
	status := http.StatusMovedPermanently
	if flag(e, "temporary") {
		status = http.StatusFound
	}
	return &Redirect{m: m, dest: dest, status: status}
}

// Run answers with the redirection when the request is unanswered and
// matches.
func (r *Redirect) Run(ctx context.Context, st *stage.State) (stage.Result, error) {
	if st.Answer != nil {
		return stage.Next, nil
	}
	var buf [4]string
	groups, ok, err := r.m.match(st, "redirect", buf[:0])
	if !ok || err != nil {
		return stage.Next, err
	}
	loc := r.dest.ExpandGroups(groups)
	if st.Trace != nil {
		st.Tracef(r.m.pos, "redirect %s=\"%s\": match -> redirect %d Location: %s", r.m.subj, r.m.re, r.status, loc)
	}
	st.SetAnswer(NewRedirect(r.status, loc), r.m.pos)
	return stage.Next, nil
}

// NewRedirect returns a generated redirection to loc: the status, a
// Location field and an empty body.
func NewRedirect(status int, loc string) *wire.Response {
	r := &wire.Response{StatusCode: status, ProtoMinor: 1, Body: http.NoBody}
	r.Header.Add("Location", loc)
	return r
}

// Rewrite is a compiled <rewrite>: it changes the request's path and
// query, then restarts from the first host (or, with continue, lets the
// following rules see the new URL).
type Rewrite struct {
	m    *matcher
	url  *pattern.Template
	cont bool
}

// CompileRewrite compiles a <rewrite regexp= url= [continue="continue"]/>
// element; the regexp is matched on the suburl.
func CompileRewrite(c stage.Compiler, e *xmlconf.Element) stage.Stage {
	if !e.CheckAttrs(c.Errors(), []string{"regexp", "url"}, []string{"continue"}) {
		return nil
	}
	m, ok := compileMatcher(c, e, subURL)
	if !ok {
		return nil
	}
	u, ok := template(c, e, "url", m)
	if !ok {
		return nil
	}
	return &Rewrite{m: m, url: u, cont: flag(e, "continue")}
}

// ErrRewriteLoop is the cause of the 500 answered when rewrites restart a
// request more than <maxretries> times.
var ErrRewriteLoop = errors.New("too many rewrite restarts")

// Run rewrites the URL of an unanswered matching request.
func (r *Rewrite) Run(ctx context.Context, st *stage.State) (stage.Result, error) {
	if st.Answer != nil {
		return stage.Next, nil
	}
	var buf [4]string
	groups, ok, err := r.m.match(st, "rewrite", buf[:0])
	if !ok || err != nil {
		return stage.Next, err
	}
	u := r.url.ExpandGroups(groups)
	path, query, hasQuery := u, "", false
	if i := strings.IndexByte(u, '?'); i >= 0 {
		path, query, hasQuery = u[:i], u[i+1:], true
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	norm, err := urlpath.Normalize(EscapeTarget(path))
	if err != nil {
		return stage.Next, stage.Errorf(http.StatusInternalServerError, "rewrite at %s: new path %q: %v", r.m.pos, path, err)
	}
	st.Path, st.RawQuery, st.HasQuery = norm, EscapeTarget(query), hasQuery
	if !r.cont {
		if st.Trace != nil {
			st.Tracef(r.m.pos, "rewrite regexp=\"%s\": match -> rewrite -> %s (restart)", r.m.re, requestURI(st))
		}
		return stage.Restart, nil
	}
	if st.Trace != nil {
		st.Tracef(r.m.pos, "rewrite regexp=\"%s\": match -> rewrite -> %s (continue)", r.m.re, requestURI(st))
	}
	sub, ok := stage.SubPathOf(st.Path, st.Site)
	if !ok {
		if st.Trace != nil {
			st.Tracef(r.m.pos, "new path leaves the site: rest of the site skipped")
		}
		return stage.StopSite, nil
	}
	st.SubPath = sub
	return stage.Next, nil
}

func requestURI(st *stage.State) string {
	if st.HasQuery {
		return st.Path + "?" + st.RawQuery
	}
	return st.Path
}
