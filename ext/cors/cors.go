// Package cors compiles <cors>, Ocsigen's Cross-Origin Resource Sharing
// headers (ocsigenserver.ext.cors):
//
//	<cors [max_age="seconds"] [credentials="true|false"]
//	      [exposed_headers="X-A, X-B"] [methods="GET, POST"]/>
//
// As in Ocsigen, the request's Origin is echoed in
// Access-Control-Allow-Origin (any origin is allowed), the requested
// method (Access-Control-Request-Method) in Access-Control-Allow-Methods
// when methods allows it, and the requested headers in
// Access-Control-Allow-Headers. An unanswered OPTIONS request with an
// Origin (a preflight) is answered 200 with these headers; an answer
// given before <cors> gets them added. A method that methods does not
// list gets no CORS headers at all (the browser then refuses the call).
// Answers also get "Vary: Origin", since their headers depend on it.
package cors

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Header names.
const (
	HeaderOrigin           = "Origin"
	HeaderRequestMethod    = "Access-Control-Request-Method"
	HeaderRequestHeaders   = "Access-Control-Request-Headers"
	HeaderAllowOrigin      = "Access-Control-Allow-Origin"
	HeaderAllowCredentials = "Access-Control-Allow-Credentials"
	HeaderAllowMethods     = "Access-Control-Allow-Methods"
	HeaderAllowHeaders     = "Access-Control-Allow-Headers"
	HeaderMaxAge           = "Access-Control-Max-Age"
	HeaderExposeHeaders    = "Access-Control-Expose-Headers"
	HeaderVary             = "Vary"
)

// Elements lists the site elements of ocsigenserver.ext.cors.
var Elements = []string{"cors"}

// CORS is a compiled <cors>.
type CORS struct {
	pos         xmlconf.Pos
	methods     []string // nil: every method
	credentials bool
	maxAge      string // "" when absent
	exposed     string // joined with ", "; "" when absent
}

// Configure checks the extension's <extension> line: cors takes no
// options.
func Configure(c stage.Compiler, ext *xmlconf.Extension) {
	if ext.Element != nil {
		for _, ch := range ext.Element.Children {
			c.Errors().Add(ch.Pos, "<%s>: %s takes no options", ch.Name, ext.Name)
		}
	}
}

// Compile compiles <cors>. Defaults: every method, no credentials, no
// max age, no exposed headers.
func Compile(c stage.Compiler, e *xmlconf.Element) stage.Stage {
	errs := c.Errors()
	if !e.CheckAttrs(errs, nil, []string{"max_age", "credentials", "exposed_headers", "methods"}) {
		return nil
	}
	if len(e.Children) > 0 || e.Text != "" {
		errs.Add(e.Pos, "<cors>: unexpected content")
		return nil
	}
	s := &CORS{pos: e.Pos}
	if v, ok := e.Attr("credentials"); ok {
		switch v {
		case "true":
			s.credentials = true
		case "false":
		default:
			errs.Add(e.Pos, "<cors>: credentials=%q: want \"true\" or \"false\"", v)
			return nil
		}
	}
	if v, ok := e.Attr("max_age"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs.Add(e.Pos, "<cors>: max_age=%q: want a number of seconds", v)
			return nil
		}
		s.maxAge = strconv.Itoa(n)
	}
	if v, ok := e.Attr("exposed_headers"); ok {
		s.exposed = strings.Join(splitList(v), ", ")
	}
	if v, ok := e.Attr("methods"); ok {
		s.methods = splitList(v)
		if s.methods == nil {
			s.methods = []string{}
		}
	}
	return s
}

// splitList splits a comma-separated attribute, blanks around commas
// removed, empty items dropped.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.Trim(item, " \t\r\n"); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// headers returns the CORS headers for the request, or ok false when the
// requested method is refused.
func (s *CORS) headers(st *stage.State, origin string) (h [][2]string, ok bool) {
	h = append(h, [2]string{HeaderAllowOrigin, origin})
	if s.credentials {
		h = append(h, [2]string{HeaderAllowCredentials, "true"})
	}
	if m := st.Fields().Get(HeaderRequestMethod); m != "" {
		if s.methods != nil && !contains(s.methods, m) {
			return nil, false
		}
		h = append(h, [2]string{HeaderAllowMethods, m})
	}
	if rh := st.Fields().Get(HeaderRequestHeaders); rh != "" {
		h = append(h, [2]string{HeaderAllowHeaders, rh})
	}
	if s.maxAge != "" {
		h = append(h, [2]string{HeaderMaxAge, s.maxAge})
	}
	if s.exposed != "" {
		h = append(h, [2]string{HeaderExposeHeaders, s.exposed})
	}
	return h, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Run answers a preflight, or adds the CORS headers to an answer.
func (s *CORS) Run(ctx context.Context, st *stage.State) (stage.Result, error) {
	origin := st.Fields().Get(HeaderOrigin)
	if st.Answer == nil {
		if st.Method != http.MethodOptions || origin == "" {
			return stage.Next, nil
		}
		h, ok := s.headers(st, origin)
		if !ok {
			st.Tracef(s.pos, "cors: preflight for method %q, not allowed (next)", st.Fields().Get(HeaderRequestMethod))
			return stage.Next, nil
		}
		resp := &wire.Response{
			StatusCode: http.StatusOK, ProtoMinor: 1,
			Body:          http.NoBody,
			ContentLength: 0,
		}
		set(&resp.Header, h)
		resp.Header.AddVary(HeaderOrigin)
		st.Tracef(s.pos, "cors: preflight from %q -> answer 200", origin)
		st.SetAnswer(resp, s.pos)
		return stage.Next, nil
	}
	st.Answer.Header.AddVary(HeaderOrigin)
	if origin == "" {
		return stage.Next, nil
	}
	h, ok := s.headers(st, origin)
	if !ok {
		st.Tracef(s.pos, "cors: method %q not allowed: no CORS headers", st.Fields().Get(HeaderRequestMethod))
		return stage.Next, nil
	}
	set(&st.Answer.Header, h)
	st.Tracef(s.pos, "cors: origin %q allowed%s", origin, describe(h))
	return stage.Next, nil
}

func describe(h [][2]string) string {
	var b strings.Builder
	for _, kv := range h[1:] {
		fmt.Fprintf(&b, ", %s: %s", kv[0], kv[1])
	}
	return b.String()
}

func set(h *wire.Header, kv [][2]string) {
	for _, p := range kv {
		h.Set(p[0], p[1])
	}
}
