package staticmod

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/ocsiproxy/ocsiproxy/pattern"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// SymlinkPolicy says which symbolic links <static> follows
// (<followsymlinks value=>).
type SymlinkPolicy int

const (
	// OwnerMatch follows a link only when the link and its target have the
	// same owner (value="ownermatch", the default).
	OwnerMatch SymlinkPolicy = iota
	// Never follows no link (value="never").
	Never
	// Always follows every link, wherever it points (value="always").
	Always
)

func (p SymlinkPolicy) String() string {
	switch p {
	case Never:
		return "never"
	case Always:
		return "always"
	}
	return "ownermatch"
}

// assocKind is what an entry of <contenttype> or <charset> is keyed on.
type assocKind int

const (
	byExtension assocKind = iota // <extension ext= value=/>: the file name's extension, case-insensitive
	byFile                       // <file file= value=/>: the file's base name
	byRegexp                     // <regexp regexp= value=/>: the full file name, matched from its start
)

// assoc is one entry of <contenttype> or <charset>.
type assoc struct {
	kind  assocKind
	key   string
	re    *pattern.Regexp
	value string
}

// denyList is one <hidefile> or <forbidfile>: file names (the part after
// a "/"), extensions, and regexps matched against the whole file name.
type denyList struct {
	files []string
	exts  []string
	res   []*pattern.Regexp
}

// Settings are the file-serving settings of a request, as Ocsigen's
// extendconfiguration elements leave them for the instructions after
// them. The zero value is not used: [Defaults] holds Ocsigen's defaults. A
// Settings is never modified once stored in a request's state.
type Settings struct {
	// Index lists the file names tried, in order, for a directory
	// (<defaultindex>). Default: index.html.
	Index []string
	// ListDirs lists a directory that has no index (<listdirs
	// value="true"/>). Default: false, the directory is not found.
	ListDirs bool
	// Symlinks is the <followsymlinks> policy. Default: ownermatch.
	Symlinks SymlinkPolicy

	hide, forbid []denyList // newest last

	mime           []assoc // newest first
	mimeDefault    string
	hasMimeDefault bool

	charset           []assoc // newest first
	charsetDefault    string
	hasCharsetDefault bool
}

// Defaults are Ocsigen 5.0.1's settings before any extendconfiguration
// element: index.html as index, no listing, links followed when owners
// match, every file served.
var Defaults = &Settings{Index: []string{"index.html"}}

// settingsOf returns the settings of st.
func settingsOf(st *stage.State) *Settings {
	if s, ok := st.Files.(*Settings); ok {
		return s
	}
	return Defaults
}

// denied reports whether name (a cleaned file name) is listed by one of
// lists.
func denied(lists []denyList, name string) (bool, error) {
	for _, l := range lists {
		for _, f := range l.files {
			if strings.HasSuffix(name, "/"+f) {
				return true, nil
			}
		}
		for _, e := range l.exts {
			if strings.HasSuffix(name, "."+e) {
				return true, nil
			}
		}
		for _, re := range l.res {
			ok, err := re.MatchString(name)
			if err != nil || ok {
				return ok, err
			}
		}
	}
	return false, nil
}

// lookup returns the value for filename in list, "" and false when no
// entry applies. Entries are tried newest first, as Ocsigen does.
func lookup(list []assoc, filename string) (string, bool, error) {
	base := path.Base(filename)
	ext := extensionOf(base)
	for _, a := range list {
		switch a.kind {
		case byExtension:
			if ext == a.key {
				return a.value, true, nil
			}
		case byFile:
			if base == a.key {
				return a.value, true, nil
			}
		case byRegexp:
			ok, err := a.re.MatchString(filename)
			if err != nil {
				return "", false, err
			}
			if ok {
				return a.value, true, nil
			}
		}
	}
	return "", false, nil
}

// extensionOf returns the lower-case extension of a base name, without
// the dot; "" when there is none.
func extensionOf(base string) string {
	i := strings.LastIndexByte(base, '.')
	if i < 0 {
		return ""
	}
	return strings.ToLower(base[i+1:])
}

// setStage is a compiled extendconfiguration element: on an unanswered
// request it replaces the request's settings by a changed copy.
type setStage struct {
	pos   xmlconf.Pos
	desc  string
	apply func(*Settings)
	// fresh, when set, is apply's result on the defaults, computed once:
	// the settings given to a request that has none yet.
	fresh *Settings
}

func (s *setStage) Run(ctx context.Context, st *stage.State) (stage.Result, error) {
	if st.Answer != nil {
		return stage.Next, nil
	}
	if st.Files == nil && s.fresh != nil {
		st.Files = s.fresh
		st.Tracef(s.pos, "%s", s.desc)
		return stage.Next, nil
	}
	n := *settingsOf(st)
	if s.apply != nil {
		s.apply(&n)
	}
	st.Files = &n
	st.Tracef(s.pos, "%s", s.desc)
	return stage.Next, nil
}

// CharsetDefault returns the stage of the charset attribute of a <host>
// or a <site> (owner names it in traces): it makes charset the default
// charset of the files <static> serves after it in that host or site, as
// extendconfiguration's <charset default=> does; "" means no charset. The
// engine ends a site's settings with the site, so a <site charset=> does
// not reach the instructions after the site.
func CharsetDefault(pos xmlconf.Pos, owner, charset string) stage.Stage {
	apply := func(n *Settings) { n.charsetDefault, n.hasCharsetDefault = charset, true }
	fresh := *Defaults
	apply(&fresh)
	return &setStage{
		pos:   pos,
		desc:  fmt.Sprintf("%s charset=%q: default charset of static files", owner, charset),
		apply: apply,
		fresh: &fresh,
	}
}

// ExtendElements lists the site elements of Ocsigen's extendconfiguration
// extension, which [CompileExtend] compiles.
var ExtendElements = []string{
	"listdirs", "followsymlinks", "defaultindex", "hidefile", "forbidfile",
	"contenttype", "charset", "uploaddir", "maxuploadfilesize",
}

// CompileExtend compiles an element of ocsigenserver.ext.extendconfiguration:
//   - <listdirs value="true|false"/>: list directories without an index;
//   - <followsymlinks value="never|always|ownermatch"/>;
//   - <defaultindex><index>name</index>...</defaultindex>: the index
//     files, tried in order (none: no index);
//   - <hidefile> and <forbidfile> with <file file=/>, <extension ext=/>
//     and <regexp regexp=/> children: files answered 404 or 403;
//   - <contenttype [default=]> and <charset [default=]> with
//     <extension ext= value=/>, <file file= value=/> and
//     <regexp regexp= value=/> children: the Content-Type and charset of
//     static files;
//   - <uploaddir> and <maxuploadfilesize>: accepted, no effect (request
//     bodies are streamed to backends, not parsed).
func CompileExtend(c stage.Compiler, e *xmlconf.Element) stage.Stage {
	errs := c.Errors()
	s := &setStage{pos: e.Pos}
	switch e.Name {
	case "listdirs", "followsymlinks":
		if !e.CheckAttrs(errs, []string{"value"}, nil) || !noChildren(errs, e) {
			return nil
		}
		v, _ := e.Attr("value")
		if e.Name == "listdirs" {
			if v != "true" && v != "false" {
				errs.Add(e.Pos, "<listdirs>: value=%q: want \"true\" or \"false\"", v)
				return nil
			}
			on := v == "true"
			s.apply = func(n *Settings) { n.ListDirs = on }
		} else {
			var p SymlinkPolicy
			switch v {
			case "never":
				p = Never
			case "always":
				p = Always
			case "ownermatch":
				p = OwnerMatch
			default:
				errs.Add(e.Pos, "<followsymlinks>: value=%q: want \"never\", \"always\" or \"ownermatch\"", v)
				return nil
			}
			s.apply = func(n *Settings) { n.Symlinks = p }
		}
		s.desc = fmt.Sprintf("%s: %s", e.Name, v)
	case "defaultindex":
		if !e.CheckAttrs(errs, nil, nil) || !noText(errs, e) {
			return nil
		}
		var idx []string
		ok := true
		for _, ch := range e.Children {
			if ch.Name != "index" || len(ch.Attrs) > 0 || len(ch.Children) > 0 || ch.Text == "" || strings.Contains(ch.Text, "/") {
				errs.Add(ch.Pos, "<defaultindex>: want <index>file name</index> children, got <%s>", ch.Name)
				ok = false
				continue
			}
			idx = append(idx, ch.Text)
		}
		if !ok {
			return nil
		}
		s.apply = func(n *Settings) { n.Index = idx }
		s.desc = fmt.Sprintf("defaultindex: %q", idx)
	case "hidefile", "forbidfile":
		if !e.CheckAttrs(errs, nil, nil) || !noText(errs, e) {
			return nil
		}
		d, ok := compileDenyList(c, e)
		if !ok {
			return nil
		}
		if e.Name == "hidefile" {
			s.apply = func(n *Settings) { n.hide = appendClipped(n.hide, d) }
		} else {
			s.apply = func(n *Settings) { n.forbid = appendClipped(n.forbid, d) }
		}
		s.desc = fmt.Sprintf("%s: files %q, extensions %q, %d regexps", e.Name, d.files, d.exts, len(d.res))
	case "contenttype", "charset":
		if !e.CheckAttrs(errs, nil, []string{"default"}) || !noText(errs, e) {
			return nil
		}
		list, ok := compileAssocs(c, e)
		if !ok {
			return nil
		}
		def, hasDef := e.Attr("default")
		if e.Name == "contenttype" {
			s.apply = func(n *Settings) {
				if hasDef {
					n.mimeDefault, n.hasMimeDefault = def, true
				}
				n.mime = prepend(list, n.mime)
			}
		} else {
			s.apply = func(n *Settings) {
				if hasDef {
					n.charsetDefault, n.hasCharsetDefault = def, true
				}
				n.charset = prepend(list, n.charset)
			}
		}
		s.desc = fmt.Sprintf("%s: %d entries", e.Name, len(list))
		if hasDef {
			s.desc += fmt.Sprintf(", default %q", def)
		}
	case "uploaddir", "maxuploadfilesize":
		if !e.CheckAttrs(errs, nil, nil) || !noChildren(errs, e) {
			return nil
		}
		if e.Name == "maxuploadfilesize" {
			if _, err := xmlconf.ParseSize(e.Text); err != nil {
				errs.Add(e.Pos, "<maxuploadfilesize>: %q: %v", e.Text, err)
				return nil
			}
		}
		const reason = "no effect: request bodies are streamed to backends, not parsed"
		if n, ok := c.(stage.Noter); ok {
			n.Note(e, reason)
		}
		s.desc = fmt.Sprintf("%s: accepted; %s", e.Name, reason)
	default:
		errs.Add(e.Pos, "unknown element <%s>", e.Name)
		return nil
	}
	return s
}

// compileDenyList compiles the <hidefile> and <forbidfile> children of e.
func compileDenyList(c stage.Compiler, e *xmlconf.Element) (denyList, bool) {
	var d denyList
	ok := true
	for _, ch := range e.Children {
		var attr string
		switch ch.Name {
		case "file":
			attr = "file"
		case "extension":
			attr = "ext"
		case "regexp":
			attr = "regexp"
		default:
			c.Errors().Add(ch.Pos, "<%s>: unknown element <%s>; want <file file=/>, <extension ext=/> or <regexp regexp=/>", e.Name, ch.Name)
			ok = false
			continue
		}
		if !ch.CheckAttrs(c.Errors(), []string{attr}, nil) || !noChildren(c.Errors(), ch) {
			ok = false
			continue
		}
		v, _ := ch.Attr(attr)
		switch ch.Name {
		case "file":
			d.files = append(d.files, v)
		case "extension":
			d.exts = append(d.exts, v)
		case "regexp":
			re, err := pattern.Compile(v, true, c.MatchTimeout())
			if err != nil {
				c.Errors().Add(ch.Pos, "<%s>: regexp: %v", e.Name, err)
				ok = false
				continue
			}
			d.res = append(d.res, re)
		}
	}
	return d, ok
}

// compileAssocs compiles the file-name associations listed under e
// (content types, charsets).
func compileAssocs(c stage.Compiler, e *xmlconf.Element) ([]assoc, bool) {
	var list []assoc
	ok := true
	for _, ch := range e.Children {
		var a assoc
		var attr string
		switch ch.Name {
		case "extension":
			a.kind, attr = byExtension, "ext"
		case "file":
			a.kind, attr = byFile, "file"
		case "regexp":
			a.kind, attr = byRegexp, "regexp"
		default:
			c.Errors().Add(ch.Pos, "<%s>: unknown element <%s>; want <extension ext= value=/>, <file file= value=/> or <regexp regexp= value=/>", e.Name, ch.Name)
			ok = false
			continue
		}
		if !ch.CheckAttrs(c.Errors(), []string{attr, "value"}, nil) || !noChildren(c.Errors(), ch) {
			ok = false
			continue
		}
		a.key, _ = ch.Attr(attr)
		a.value, _ = ch.Attr("value")
		switch a.kind {
		case byExtension:
			a.key = strings.ToLower(strings.TrimPrefix(a.key, "."))
		case byRegexp:
			// Ocsigen matches from the start of the file name, not to its
			// end.
			re, err := pattern.Compile("^(?:"+a.key+")", false, c.MatchTimeout())
			if err != nil {
				c.Errors().Add(ch.Pos, "<%s>: regexp: %v", e.Name, err)
				ok = false
				continue
			}
			a.re = re
		}
		// Later entries of one element take precedence, as in Ocsigen.
		list = append([]assoc{a}, list...)
	}
	return list, ok
}

func noChildren(errs *xmlconf.ErrorList, e *xmlconf.Element) bool {
	for _, ch := range e.Children {
		errs.Add(ch.Pos, "<%s>: unexpected element <%s>", e.Name, ch.Name)
		return false
	}
	return true
}

func noText(errs *xmlconf.ErrorList, e *xmlconf.Element) bool {
	if e.Text != "" {
		errs.Add(e.Pos, "<%s>: unexpected text %q", e.Name, e.Text)
		return false
	}
	return true
}

// appendClipped appends to a copy, never to the shared backing array.
func appendClipped[T any](s []T, v ...T) []T {
	out := make([]T, 0, len(s)+len(v))
	return append(append(out, s...), v...)
}

// prepend returns front followed by s, in a new slice.
func prepend[T any](front, s []T) []T {
	return appendClipped(front, s...)
}

// methodAllowed reports whether a file can be sent for method.
func methodAllowed(method string) bool {
	return method == http.MethodGet || method == http.MethodHead
}
