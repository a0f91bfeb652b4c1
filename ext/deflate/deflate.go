// Package deflate compiles <deflate>, Ocsigen's response compression
// (ocsigenserver.ext.deflatemod):
//
//	<deflate compress="only|allbut">
//	  <type>text/*</type> <type>application/json</type>
//	  <extension>.css</extension>
//	</deflate>
//
// compress="only" compresses the answers whose Content-Type matches a
// <type> ("*" for any part) or whose request sub-path ends with an
// <extension>; compress="allbut" compresses all the others. The level is
// the global <compress level="0-9"/> child of the extension's
// <extension> line (default 6); <buffer size=/> is accepted there too.
//
// The coding is negotiated from Accept-Encoding as Ocsigen does: gzip or
// deflate (the zlib format, as HTTP's "deflate" coding is), the higher
// q-value winning, gzip on a tie, identity when listed with a higher
// q-value; 406 when identity is refused and nothing else is acceptable.
// An answer is never compressed twice (one with a Content-Encoding is
// left alone), nor when it is shorter than [MinLength] bytes, has no
// body (HEAD keeps the headers), is partial (206), or says
// "Cache-Control: no-transform". A compressed answer gets Vary:
// Accept-Encoding, loses its Content-Length and Accept-Ranges (a static
// file is then sent whole, never as ranges), and a strong ETag becomes
// weak. Compression streams: the body is compressed as it is read, and
// a body of unknown length (server-sent events, long polling) is flushed
// piece by piece.
package deflate

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"

	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// MinLength is the smallest body compressed: below it, the coding's
// overhead outweighs the gain.
const MinLength = 256

// DefaultLevel is the compression level without <compress level=/>.
const DefaultLevel = 6

// Header names.
const (
	HeaderAcceptEncoding  = "Accept-Encoding"
	HeaderContentEncoding = "Content-Encoding"
	HeaderVary            = "Vary"
)

// Elements lists the site elements of ocsigenserver.ext.deflatemod.
var Elements = []string{"deflate"}

// typePattern is one <type>: "" matches any type or subtype.
type typePattern struct{ typ, sub string }

// Deflate is a compiled <deflate>.
type Deflate struct {
	pos   xmlconf.Pos
	only  bool
	types []typePattern
	exts  []string
	level int
}

// Configure reads the children of the <extension> line: <compress
// level="0-9"/> and <buffer size="N"/>.
func Configure(c stage.Compiler, ext *xmlconf.Extension) {
	globalLevel(ext, c.Errors())
}

// globalLevel returns the level the <extension> element sets, reporting
// problems into errs when it is not nil.
func globalLevel(ext *xmlconf.Extension, errs *xmlconf.ErrorList) int {
	report := func(pos xmlconf.Pos, format string, args ...any) {
		if errs != nil {
			errs.Add(pos, format, args...)
		}
	}
	level := DefaultLevel
	if ext.Element == nil {
		return level
	}
	var scratch xmlconf.ErrorList
	for _, ch := range ext.Element.Children {
		switch ch.Name {
		case "compress":
			if !ch.CheckAttrs(&scratch, []string{"level"}, nil) {
				report(ch.Pos, "<compress>: want <compress level=\"0-9\"/>")
				continue
			}
			v, _ := ch.Attr("level")
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 9 {
				report(ch.Pos, "<compress>: level=%q: want an integer from 0 to 9", v)
				continue
			}
			level = n
		case "buffer":
			if !ch.CheckAttrs(&scratch, []string{"size"}, nil) {
				report(ch.Pos, "<buffer>: want <buffer size=\"bytes\"/>")
				continue
			}
			v, _ := ch.Attr("size")
			if n, err := strconv.Atoi(v); err != nil || n <= 0 {
				report(ch.Pos, "<buffer>: size=%q: want a positive integer", v)
			}
		default:
			report(ch.Pos, "<%s>: unknown deflatemod option; want <compress level=/> or <buffer size=/>", ch.Name)
		}
	}
	return level
}

// Compile compiles <deflate compress="only|allbut"> with <type> and
// <extension> children (at least one).
func Compile(c stage.Compiler, e *xmlconf.Element) stage.Stage {
	errs := c.Errors()
	if !e.CheckAttrs(errs, []string{"compress"}, nil) {
		return nil
	}
	d := &Deflate{pos: e.Pos, level: DefaultLevel}
	switch v, _ := e.Attr("compress"); v {
	case "only":
		d.only = true
	case "allbut":
	default:
		errs.Add(e.Pos, "<deflate>: compress=%q: want \"only\" or \"allbut\"", v)
		return nil
	}
	if e.Text != "" {
		errs.Add(e.Pos, "<deflate>: unexpected text %q", e.Text)
		return nil
	}
	for _, ch := range e.Children {
		if !ch.CheckAttrs(errs, nil, nil) {
			return nil
		}
		if len(ch.Children) > 0 || ch.Text == "" {
			errs.Add(ch.Pos, "<%s>: want text only", ch.Name)
			return nil
		}
		switch ch.Name {
		case "type":
			typ, sub, ok := strings.Cut(ch.Text, "/")
			if !ok || typ == "" || sub == "" || strings.ContainsAny(ch.Text, " ;") {
				errs.Add(ch.Pos, "<type>: %q: want type/subtype, \"*\" for any part", ch.Text)
				return nil
			}
			d.types = append(d.types, typePattern{star(typ), star(sub)})
		case "extension":
			d.exts = append(d.exts, ch.Text)
		default:
			errs.Add(ch.Pos, "<deflate>: unknown element <%s>; want <type> or <extension>", ch.Name)
			return nil
		}
	}
	if len(d.types)+len(d.exts) == 0 {
		errs.Add(e.Pos, "<deflate>: at least one <type> or <extension> is needed")
		return nil
	}
	if cs, ok := c.(stage.ConfigSource); ok && cs.Config() != nil {
		for i := range cs.Config().Extensions {
			ext := &cs.Config().Extensions[i]
			if strings.HasSuffix(ext.Name, "deflatemod") || strings.HasSuffix(ext.Name, "deflatemod.cmxs") {
				d.level = globalLevel(ext, nil)
			}
		}
	}
	return d
}

func star(s string) string {
	if s == "*" {
		return ""
	}
	return strings.ToLower(s)
}

// selected reports whether the answer's type or the request's sub-path is
// chosen by the configuration.
func (d *Deflate) selected(ctype, sub string) bool {
	listed := false
	if mt, _, err := mime.ParseMediaType(ctype); err == nil {
		typ, subtype, _ := strings.Cut(mt, "/")
		for _, p := range d.types {
			if (p.typ == "" || p.typ == typ) && (p.sub == "" || p.sub == subtype) {
				listed = true
			}
		}
	}
	for _, e := range d.exts {
		if strings.HasSuffix(sub, e) {
			listed = true
		}
	}
	return listed == d.only
}

// Run compresses the answer, if there is one and it qualifies.
func (d *Deflate) Run(ctx context.Context, st *stage.State) (stage.Result, error) {
	resp := st.Answer
	if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return stage.Next, nil
	}
	h := &resp.Header
	if h.Get(HeaderContentEncoding) != "" {
		st.Tracef(d.pos, "deflate: already encoded (%s), left alone", h.Get(HeaderContentEncoding))
		return stage.Next, nil
	}
	if stage.IsStandIn(resp.Body) {
		// The stand-in for a backend's answer: its headers are unknown.
		st.Tracef(d.pos, "deflate: decided on the backend's answer (its Content-Type, length and encoding)")
		return stage.Next, nil
	}
	acc := negotiate(st.Fields().Values(HeaderAcceptEncoding))
	coding := acc.best
	ctype := h.Get("Content-Type")
	why := ""
	switch {
	case ctype == "":
		why = "no Content-Type"
	case !d.selected(ctype, st.SubPath):
		why = fmt.Sprintf("%s not selected", ctype)
	case !bodyAllowed(resp.StatusCode) || resp.StatusCode == http.StatusPartialContent:
		why = fmt.Sprintf("status %d", resp.StatusCode)
	case resp.ContentLength >= 0 && resp.ContentLength < MinLength && !acc.identityRefused:
		why = fmt.Sprintf("%d bytes, under %d", resp.ContentLength, MinLength)
	case httpsyntax.HasToken(h.Values("Cache-Control"), "no-transform"):
		why = "Cache-Control: no-transform"
	case isWriter(resp.Body) && resp.StatusCode != http.StatusOK:
		why = fmt.Sprintf("a file answered with status %d", resp.StatusCode)
	}
	if coding == notAcceptable {
		// Identity is refused and neither gzip nor deflate is acceptable.
		st.DropAnswer()
		st.Status = http.StatusNotAcceptable
		st.Tracef(d.pos, "deflate: Accept-Encoding %q refuses identity, gzip and deflate -> 406", strings.Join(st.Fields().Values(HeaderAcceptEncoding), ", "))
		return stage.StopAll, nil
	}
	if why != "" {
		st.Tracef(d.pos, "deflate: not compressed: %s", why)
		return stage.Next, nil
	}
	h.AddVary(HeaderAcceptEncoding)
	if coding == identity {
		st.Tracef(d.pos, "deflate: compressible, but the client asks for identity")
		return stage.Next, nil
	}
	h.Set(HeaderContentEncoding, coding.String())
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	if et := h.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		h.Set("ETag", "W/"+et)
	}
	unknown := resp.ContentLength < 0
	resp.ContentLength = -1
	if aw, ok := resp.Body.(stage.AnswerWriter); ok {
		resp.Body = &encodedAnswer{inner: aw, coding: coding, level: d.level}
	} else {
		resp.Body = newCompressReader(resp.Body, coding, d.level, unknown)
	}
	st.Tracef(d.pos, "deflate: %s, %s (level %d)", ctype, coding, d.level)
	return stage.Next, nil
}

func isWriter(b any) bool {
	_, ok := b.(stage.AnswerWriter)
	return ok
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
