// Package accesscontrol implements Ocsigen's accesscontrol extension
// (findlib package ocsigenserver.ext.accesscontrol) as compiled
// stages: the <if> conditions, the actions that end or skip processing
// (<notfound/>, <forbidden/>, <nextsite/>, <nexthost/>, <stop/>), the
// blocks that depend on whether the request was answered (<iffound>,
// <ifnotfound>), and the two instructions that let a trusted proxy tell
// the client's address and scheme (<allow-forward-for/>,
// <allow-forward-proto/>).
//
// Every element is checked at load time: an unknown element, an unknown
// attribute, a bad address, port or regexp is reported with its position.
// Where Ocsigen 5.0.1 differs from the specification, the specification
// wins; in particular <allow-forward-for/> walks X-Forwarded-For from the
// right (see [WalkForwardedFor]) instead of trusting its left-most entry.
package accesscontrol

import (
	"context"
	"net/http"
	"strconv"

	"github.com/ocsiproxy/ocsiproxy/pattern"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Extension is the findlib package that loads this extension.
const Extension = "ocsigenserver.ext.accesscontrol"

// Elements lists the site instructions [Compile] handles. Conditions
// (<ip>, <and>...) and the <then>/<else> branches are not instructions:
// they are only valid inside <if>.
var Elements = []string{
	"if",
	"notfound",
	"forbidden",
	"nextsite",
	"nexthost",
	"stop",
	"iffound",
	"ifnotfound",
	"allow-forward-for",
	"allow-forward-proto",
}

// Handles reports whether name is one of [Elements].
func Handles(name string) bool {
	for _, n := range Elements {
		if n == name {
			return true
		}
	}
	return false
}

// Compile compiles one accesscontrol site instruction. Nested instruction
// blocks (<then>, <else>, <iffound>, <ifnotfound>) are compiled with
// c.Block, so they may hold any site instruction. When e is wrong, Compile
// reports every problem into c.Errors(), each with its position, and
// returns nil; problems inside nested blocks are reported by c.Block and
// do not make Compile return nil.
func Compile(c stage.Compiler, e *xmlconf.Element) stage.Stage {
	errs := c.Errors()
	switch e.Name {
	case "if":
		return compileIf(c, e)
	case "notfound", "forbidden":
		if !checkLeaf(errs, e, nil, nil) {
			return nil
		}
		if e.Name == "notfound" {
			return &statusStage{pos: e.Pos, name: e.Name, status: http.StatusNotFound}
		}
		return &statusStage{pos: e.Pos, name: e.Name, status: http.StatusForbidden}
	case "nextsite", "nexthost", "stop":
		if !checkLeaf(errs, e, nil, nil) {
			return nil
		}
		r := map[string]stage.Result{
			"nextsite": stage.StopSite,
			"nexthost": stage.StopHost,
			"stop":     stage.StopAll,
		}[e.Name]
		return &skipStage{pos: e.Pos, name: e.Name, result: r}
	case "iffound":
		ok := e.CheckAttrs(errs, nil, nil)
		ok = checkNoText(errs, e) && ok
		block := c.Block(e.Children)
		if !ok {
			return nil
		}
		return &ifFoundStage{pos: e.Pos, block: block}
	case "ifnotfound":
		ok := e.CheckAttrs(errs, nil, []string{"code"})
		ok = checkNoText(errs, e) && ok
		var code *pattern.Regexp
		if s, present := e.Attr("code"); present {
			re, err := pattern.Compile(s, true, c.MatchTimeout())
			if err != nil {
				errs.Add(e.Pos, "<ifnotfound>: code: %v", err)
				ok = false
			}
			code = re
		}
		block := c.Block(e.Children)
		if !ok {
			return nil
		}
		return &ifNotFoundStage{pos: e.Pos, code: code, block: block}
	case "allow-forward-for":
		return compileForwardFor(c, e)
	case "allow-forward-proto":
		if !checkLeaf(errs, e, nil, nil) {
			return nil
		}
		return &forwardProtoStage{pos: e.Pos}
	}
	errs.Add(e.Pos, "<%s>: not an accesscontrol instruction", e.Name)
	return nil
}

// checkLeaf checks the attributes of an element that takes no content,
// and that it has none.
func checkLeaf(errs *xmlconf.ErrorList, e *xmlconf.Element, required, allowed []string) bool {
	ok := e.CheckAttrs(errs, required, allowed)
	for _, ch := range e.Children {
		errs.Add(ch.Pos, "<%s>: unexpected child <%s>", e.Name, ch.Name)
		ok = false
	}
	return checkNoText(errs, e) && ok
}

func checkNoText(errs *xmlconf.ErrorList, e *xmlconf.Element) bool {
	if e.Text != "" {
		errs.Add(e.Pos, "<%s>: unexpected text", e.Name)
		return false
	}
	return true
}

// ifStage is <if> COND <then>...</then> [<else>...</else>] </if>.
type ifStage struct {
	pos     xmlconf.Pos
	cond    cond
	then    []stage.Stage
	els     []stage.Stage
	hasElse bool
}

// compileIf compiles <if> with its one condition and its <then> and
// <else> branches.
func compileIf(c stage.Compiler, e *xmlconf.Element) stage.Stage {
	errs := c.Errors()
	ok := e.CheckAttrs(errs, nil, nil)
	ok = checkNoText(errs, e) && ok
	s := &ifStage{pos: e.Pos}
	kids := e.Children
	if len(kids) == 0 || kids[0].Name == "then" || kids[0].Name == "else" {
		errs.Add(e.Pos, "<if>: missing condition: <if> takes one condition, then <then> and an optional <else>")
		ok = false
	} else {
		s.cond = compileCond(c, kids[0])
		ok = s.cond != nil && ok
		kids = kids[1:]
	}
	switch {
	case len(kids) == 0:
		errs.Add(e.Pos, "<if>: missing <then>")
		ok = false
	case kids[0].Name != "then":
		errs.Add(kids[0].Pos, "<if>: expected <then> after the condition, found <%s> (<if> takes exactly one condition; combine several with <and> or <or>)", kids[0].Name)
		ok = false
		kids = nil
	default:
		ok = branchOK(errs, kids[0]) && ok
		s.then = c.Block(kids[0].Children)
		kids = kids[1:]
	}
	if len(kids) > 0 {
		if kids[0].Name == "else" {
			ok = branchOK(errs, kids[0]) && ok
			s.els = c.Block(kids[0].Children)
			s.hasElse = true
			kids = kids[1:]
		}
		for _, k := range kids {
			errs.Add(k.Pos, "<if>: unexpected <%s> after the branches", k.Name)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return s
}

func branchOK(errs *xmlconf.ErrorList, e *xmlconf.Element) bool {
	ok := e.CheckAttrs(errs, nil, nil)
	return checkNoText(errs, e) && ok
}

func (s *ifStage) Run(ctx context.Context, st *stage.State) (stage.Result, error) {
	v, err := s.cond.eval(st)
	if err != nil {
		return stage.Next, err
	}
	if v {
		if st.Trace != nil {
			st.Tracef(s.pos, "if %s: true -> then", s.cond)
		}
		return stage.RunBlock(ctx, st, s.then)
	}
	if !s.hasElse {
		if st.Trace != nil {
			st.Tracef(s.pos, "if %s: false (no else)", s.cond)
		}
		return stage.Next, nil
	}
	if st.Trace != nil {
		st.Tracef(s.pos, "if %s: false -> else", s.cond)
	}
	return stage.RunBlock(ctx, st, s.els)
}

// statusStage is <notfound/> or <forbidden/>: it ends processing with its
// status, dropping any answer found before it.
type statusStage struct {
	pos    xmlconf.Pos
	name   string
	status int
}

func (s *statusStage) Run(_ context.Context, st *stage.State) (stage.Result, error) {
	if st.Answer != nil {
		if st.Trace != nil {
			st.Tracef(s.pos, "%s -> %d (answer dropped)", s.name, s.status)
		}
		st.DropAnswer()
	} else {
		if st.Trace != nil {
			st.Tracef(s.pos, "%s -> %d", s.name, s.status)
		}
	}
	st.Status = s.status
	return stage.StopAll, nil
}

// skipStage is <nextsite/>, <nexthost/> or <stop/>. Like Ocsigen, an
// unanswered request skips with status 404 (Ocsigen's Ext_stop_* carry
// Not_found), and an answered one is answered at once.
type skipStage struct {
	pos    xmlconf.Pos
	name   string
	result stage.Result
}

func (s *skipStage) Run(_ context.Context, st *stage.State) (stage.Result, error) {
	if st.Answer != nil {
		if st.Trace != nil {
			st.Tracef(s.pos, "%s: answered -> send the answer now", s.name)
		}
		return stage.StopAll, nil
	}
	st.Status = http.StatusNotFound
	switch s.result {
	case stage.StopSite:
		if st.Trace != nil {
			st.Tracef(s.pos, "%s: unanswered -> skip the rest of the site", s.name)
		}
	case stage.StopHost:
		if st.Trace != nil {
			st.Tracef(s.pos, "%s: unanswered -> skip the rest of the host", s.name)
		}
	default:
		if st.Trace != nil {
			st.Tracef(s.pos, "%s: unanswered -> stop -> 404", s.name)
		}
	}
	return s.result, nil
}

// ifFoundStage is <iffound>: its block runs only on an answered request.
type ifFoundStage struct {
	pos   xmlconf.Pos
	block []stage.Stage
}

func (s *ifFoundStage) Run(ctx context.Context, st *stage.State) (stage.Result, error) {
	if st.Answer == nil {
		if st.Trace != nil {
			st.Tracef(s.pos, "iffound: unanswered -> skip")
		}
		return stage.Next, nil
	}
	if st.Trace != nil {
		st.Tracef(s.pos, "iffound: answered -> run")
	}
	return stage.RunBlock(ctx, st, s.block)
}

// ifNotFoundStage is <ifnotfound [code=RE]>: its block runs only on an
// unanswered request whose status matches code (anchored), if given.
type ifNotFoundStage struct {
	pos   xmlconf.Pos
	code  *pattern.Regexp
	block []stage.Stage
}

func (s *ifNotFoundStage) Run(ctx context.Context, st *stage.State) (stage.Result, error) {
	if st.Answer != nil {
		if st.Trace != nil {
			st.Tracef(s.pos, "ifnotfound: answered -> skip")
		}
		return stage.Next, nil
	}
	status := st.Status
	if status == 0 {
		status = http.StatusNotFound
	}
	if s.code != nil {
		m, err := s.code.MatchString(statusString(status))
		if err != nil {
			return stage.Next, matchError(s.pos, "ifnotfound", err)
		}
		if !m {
			if st.Trace != nil {
				st.Tracef(s.pos, "ifnotfound code=%q: status %d does not match -> skip", s.code, status)
			}
			return stage.Next, nil
		}
		if st.Trace != nil {
			st.Tracef(s.pos, "ifnotfound code=%q: status %d -> run", s.code, status)
		}
	} else {
		if st.Trace != nil {
			st.Tracef(s.pos, "ifnotfound: status %d -> run", status)
		}
	}
	return stage.RunBlock(ctx, st, s.block)
}

// statusString is strconv.Itoa without an allocation for the usual
// three-digit statuses.
func statusString(n int) string {
	if n >= 100 && n <= 999 {
		return statusStrings[n-100]
	}
	return strconv.Itoa(n)
}

var statusStrings = func() (s [900]string) {
	for i := range s {
		s[i] = strconv.Itoa(i + 100)
	}
	return s
}()
