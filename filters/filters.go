// Package filters compiles Ocsigen's output filters
// (ocsigenserver.ext.outputfilter): <outputfilter>, which rewrites or sets
// a response header, and <sethttpcode>, which sets the status.
//
// A filter acts only on an answer given by an instruction before it in
// document order; on an unanswered request it does nothing.
package filters

import (
	"context"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"

	"github.com/ocsiproxy/ocsiproxy/pattern"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// replaceMode is what <outputfilter header= dest=> without regexp does.
type replaceMode int

const (
	addIfAbsent replaceMode = iota // replace unset: add only if absent
	addAnother                     // replace="false": add another value
	replaceAll                     // replace="true": replace every value
)

// OutputFilter is a compiled <outputfilter>.
type OutputFilter struct {
	header string // canonical header name
	re     *pattern.Regexp
	dest   *pattern.Template
	mode   replaceMode
	pos    xmlconf.Pos
	// value is the expanded dest of a filter without regexp.
	value string
}

// CompileOutputFilter compiles <outputfilter header= regexp= dest=/>
// (every match of the unanchored regexp in every value of the header is
// replaced by dest expanded) or <outputfilter header= dest=
// [replace="true|false"]/> (the header is set; unset replace adds it only
// when absent).
func CompileOutputFilter(c stage.Compiler, e *xmlconf.Element) stage.Stage {
	if !e.CheckAttrs(c.Errors(), []string{"header", "dest"}, []string{"regexp", "replace"}) {
		return nil
	}
	h, _ := e.Attr("header")
	dest, _ := e.Attr("dest")
	f := &OutputFilter{header: textproto.CanonicalMIMEHeaderKey(h), pos: e.Pos}
	if h == "" {
		c.Errors().Add(e.Pos, "<outputfilter>: empty header name")
		return nil
	}
	rs, hasRe := e.Attr("regexp")
	rp, hasReplace := e.Attr("replace")
	if hasRe && hasReplace {
		c.Errors().Add(e.Pos, "<outputfilter>: attributes regexp and replace are exclusive")
		return nil
	}
	if hasRe {
		re, err := pattern.Compile(rs, false, c.MatchTimeout())
		if err != nil {
			c.Errors().Add(e.Pos, "<outputfilter>: regexp: %v", err)
			return nil
		}
		f.re = re
	}
	t, err := pattern.ParseTemplate(dest, f.re)
	if err != nil {
		c.Errors().Add(e.Pos, "<outputfilter>: dest: %v", err)
		return nil
	}
	f.dest = t
	if f.re == nil {
		f.value = t.Expand(nil)
	}
	if hasReplace {
		switch rp {
		case "true":
			f.mode = replaceAll
		case "false":
			f.mode = addAnother
		default:
			c.Errors().Add(e.Pos, "<outputfilter>: replace=%q: want \"true\" or \"false\"", rp)
			return nil
		}
	}
	return f
}

// Run applies the filter to the answer, if there is one.
func (f *OutputFilter) Run(ctx context.Context, st *stage.State) (stage.Result, error) {
	if st.Answer == nil {
		return stage.Next, nil
	}
	h := &st.Answer.Header
	if f.re == nil {
		v := f.value
		switch {
		case f.mode == replaceAll:
			h.Set(f.header, v)
		case f.mode == addAnother:
			h.Add(f.header, v)
		case !h.Has(f.header):
			h.Add(f.header, v)
		default:
			if st.Trace != nil {
				st.Tracef(f.pos, "outputfilter header=%q: present, kept", f.header)
			}
			return stage.Next, nil
		}
		if st.Trace != nil {
			st.Tracef(f.pos, "outputfilter header=%q: set %q", f.header, v)
		}
		return stage.Next, nil
	}
	values := h.Values(f.header)
	if len(values) == 0 {
		if st.Trace != nil {
			st.Tracef(f.pos, "outputfilter header=%q: absent", f.header)
		}
		return stage.Next, nil
	}
	out := values // copied at the first value that changes
	for i, v := range values {
		r, err := f.re.ReplaceAll(v, f.dest)
		if err != nil {
			return stage.Next, stage.Errorf(http.StatusInternalServerError, "outputfilter at %s: %v", f.pos, err)
		}
		if r == v {
			continue
		}
		if &out[0] == &values[0] {
			out = slices.Clone(values)
		}
		out[i] = r
	}
	if &out[0] != &values[0] {
		// The header's values replaced by the new ones, in order.
		h.Del(f.header)
		for _, v := range out {
			h.Add(f.header, v)
		}
	}
	if st.Trace != nil {
		st.Tracef(f.pos, "outputfilter header=%q regexp=\"%s\": %q -> %q", f.header, f.re, values, out)
	}
	return stage.Next, nil
}

// SetHTTPCode is a compiled <sethttpcode code=N/>: it sets the status of
// the answer and keeps its body.
type SetHTTPCode struct {
	code int
	pos  xmlconf.Pos
}

// CompileSetHTTPCode compiles <sethttpcode code=N/>. N must be a known
// status, as Ocsigen requires, and not 1xx, which cannot end a response.
func CompileSetHTTPCode(c stage.Compiler, e *xmlconf.Element) stage.Stage {
	if !e.CheckAttrs(c.Errors(), []string{"code"}, nil) {
		return nil
	}
	v, _ := e.Attr("code")
	n, err := strconv.Atoi(v)
	if err != nil || n < 200 || n > 599 || http.StatusText(n) == "" {
		c.Errors().Add(e.Pos, "<sethttpcode>: code=%q: want a known HTTP status from 200 to 599", v)
		return nil
	}
	return &SetHTTPCode{code: n, pos: e.Pos}
}

// Run sets the answer's status, if there is an answer.
func (s *SetHTTPCode) Run(ctx context.Context, st *stage.State) (stage.Result, error) {
	if st.Answer == nil {
		return stage.Next, nil
	}
	if st.Trace != nil {
		st.Tracef(s.pos, "sethttpcode: %d -> %d", st.Answer.StatusCode, s.code)
	}
	st.Answer.StatusCode = s.code
	st.Answer.Status = ""
	return stage.Next, nil
}
