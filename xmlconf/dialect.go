package xmlconf

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Ocsigen reads its files with xml-light, which is laxer than XML in a few
// ways existing files rely on. Before encoding/xml sees a file, escape
// rewrites a copy of its bytes so that the decoder reads what xml-light
// reads, and records every rewrite so that positions in the copy can be
// mapped back to the original bytes:
//
//   - a "&" that does not start a valid reference ("&amp;", "&lt;", "&gt;",
//     "&quot;", "&apos;", "&#NN;", "&#xHH;") becomes "&amp;", so it is kept
//     literally, in text and in attribute values;
//   - a "<" inside an attribute value is reported (encoding/xml refuses it)
//     and becomes "&lt;" so that reading goes on and later problems are
//     reported too;
//   - inside an attribute value quoted with q, a "\" followed by q is
//     xml-light's escaped quote: it becomes the entity for q.
//
// After decoding, unescapeAttr turns "\\" into "\" in attribute values, the
// other half of xml-light's quoted-string rule.

// source is one file being read: its original bytes, the rewritten copy's
// edits, and the offsets of its lines, for positions.
type source struct {
	name  string
	orig  []byte
	lines []int // offset of the first byte of each line; lines[0] == 0
	edits []edit
}

// edit records that orig[origStart:origEnd] became copy[copyStart:copyEnd].
type edit struct {
	origStart, origEnd int
	copyStart, copyEnd int
}

func newSource(name string, b []byte) *source {
	s := &source{name: name, orig: b, lines: []int{0}}
	for i, c := range b {
		if c == '\n' {
			s.lines = append(s.lines, i+1)
		}
	}
	return s
}

// origOffset maps an offset in the rewritten copy to the original bytes.
// An offset inside a rewrite maps to the start of the rewritten text.
func (s *source) origOffset(off int) int {
	i := sort.Search(len(s.edits), func(i int) bool { return s.edits[i].copyStart > off }) - 1
	if i < 0 {
		return off
	}
	e := s.edits[i]
	if off < e.copyEnd {
		return e.origStart
	}
	return off - e.copyEnd + e.origEnd
}

// pos returns the position of an offset in the original bytes.
func (s *source) pos(off int) Pos {
	if off < 0 {
		off = 0
	}
	if off > len(s.orig) {
		off = len(s.orig)
	}
	line := sort.Search(len(s.lines), func(i int) bool { return s.lines[i] > off })
	return Pos{File: s.name, Line: line, Col: off - s.lines[line-1] + 1}
}

// copyPos returns the position of an offset in the rewritten copy.
func (s *source) copyPos(off int) Pos { return s.pos(s.origOffset(off)) }

// escape returns the rewritten copy of s.orig, reporting into errs every
// "<" inside an attribute value.
func (s *source) escape(errs *ErrorList) []byte {
	e := escaper{src: s, b: s.orig, errs: errs, out: make([]byte, 0, len(s.orig)+64)}
	e.run()
	return e.out
}

type escaper struct {
	src  *source
	b    []byte
	i    int
	out  []byte
	errs *ErrorList
}

// replace writes with in place of the n bytes at e.i and moves past them.
func (e *escaper) replace(n int, with string) {
	e.src.edits = append(e.src.edits, edit{
		origStart: e.i, origEnd: e.i + n,
		copyStart: len(e.out), copyEnd: len(e.out) + len(with),
	})
	e.out = append(e.out, with...)
	e.i += n
}

// copyN copies n bytes unchanged.
func (e *escaper) copyN(n int) {
	if e.i+n > len(e.b) {
		n = len(e.b) - e.i
	}
	e.out = append(e.out, e.b[e.i:e.i+n]...)
	e.i += n
}

// copyThrough copies up to and including the first end after the
// current position, or to the end of the input.
func (e *escaper) copyThrough(end string) {
	if k := bytes.Index(e.b[e.i:], []byte(end)); k >= 0 {
		e.copyN(k + len(end))
		return
	}
	e.copyN(len(e.b) - e.i)
}

// amp handles a "&" at the current position.
func (e *escaper) amp() {
	if n := refLen(e.b[e.i:]); n > 0 {
		e.copyN(n)
		return
	}
	e.replace(1, "&amp;")
}

func (e *escaper) run() {
	for e.i < len(e.b) {
		switch c := e.b[e.i]; {
		case c == '&':
			e.amp()
		case c == '<':
			e.markup()
		default:
			e.copyN(1)
		}
	}
}

// markup handles everything that starts with "<".
func (e *escaper) markup() {
	rest := e.b[e.i:]
	switch {
	case bytes.HasPrefix(rest, []byte("<!--")):
		e.copyN(4)
		e.copyThrough("-->")
	case bytes.HasPrefix(rest, []byte("<![CDATA[")):
		e.copyN(9)
		e.copyThrough("]]>")
	case bytes.HasPrefix(rest, []byte("<?")):
		e.copyN(2)
		e.copyThrough("?>")
	case bytes.HasPrefix(rest, []byte("<!")):
		e.declaration()
	default:
		e.tag()
	}
}

// declaration copies a "<!DOCTYPE ...>"-like declaration, with its
// internal subset in brackets and its quoted strings.
func (e *escaper) declaration() {
	e.copyN(2)
	depth := 0
	for e.i < len(e.b) {
		switch c := e.b[e.i]; c {
		case '"', '\'':
			e.copyN(1)
			if k := bytes.IndexByte(e.b[e.i:], c); k >= 0 {
				e.copyN(k + 1)
			} else {
				e.copyN(len(e.b) - e.i)
			}
		case '[':
			depth++
			e.copyN(1)
		case ']':
			depth--
			e.copyN(1)
		case '<':
			if bytes.HasPrefix(e.b[e.i:], []byte("<!--")) {
				e.copyN(4)
				e.copyThrough("-->")
			} else {
				e.copyN(1)
			}
		case '>':
			e.copyN(1)
			if depth <= 0 {
				return
			}
		default:
			e.copyN(1)
		}
	}
}

// tag copies a start or end tag, rewriting its attribute values.
func (e *escaper) tag() {
	e.copyN(1)
	for e.i < len(e.b) {
		switch c := e.b[e.i]; c {
		case '"', '\'':
			e.value(c)
		case '>':
			e.copyN(1)
			return
		case '<':
			// A tag not closed: leave it to the decoder to report.
			return
		default:
			e.copyN(1)
		}
	}
}

// value copies an attribute value quoted with q.
func (e *escaper) value(q byte) {
	e.copyN(1)
	for e.i < len(e.b) {
		switch c := e.b[e.i]; c {
		case q:
			e.copyN(1)
			return
		case '\\':
			switch {
			case e.i+1 < len(e.b) && e.b[e.i+1] == '\\':
				e.copyN(2) // unescapeAttr turns it into one "\"
			case e.i+1 < len(e.b) && e.b[e.i+1] == q:
				if q == '"' {
					e.replace(2, "&quot;")
				} else {
					e.replace(2, "&apos;")
				}
			default:
				e.copyN(1)
			}
		case '<':
			e.errs.Add(e.src.pos(e.i), `unescaped "<" in attribute value; write &lt; instead`)
			e.replace(1, "&lt;")
		case '&':
			e.amp()
		default:
			e.copyN(1)
		}
	}
}

// maxRefLen bounds the length of a reference refLen looks for, so that a
// file full of "&" is read in linear time. A longer reference, such as
// "&#" followed by dozens of zeros, is kept literally.
const maxRefLen = 40

// refLen returns the length of the entity or character reference that b
// starts with, or 0 if b does not start with one that encoding/xml
// decodes: one of the five predefined entities, "&#" decimal digits ";" or
// "&#x" hexadecimal digits ";" naming a code point.
func refLen(b []byte) int {
	if len(b) > maxRefLen {
		b = b[:maxRefLen]
	}
	semi := bytes.IndexByte(b, ';')
	if semi < 0 {
		return 0
	}
	name := string(b[1:semi])
	switch name {
	case "amp", "lt", "gt", "quot", "apos":
		return semi + 1
	}
	if !strings.HasPrefix(name, "#") {
		return 0
	}
	digits, base := name[1:], 10
	if strings.HasPrefix(digits, "x") {
		digits, base = digits[1:], 16
	}
	if digits == "" {
		return 0
	}
	for _, c := range digits {
		if !('0' <= c && c <= '9' || base == 16 && ('a' <= c && c <= 'f' || 'A' <= c && c <= 'F')) {
			return 0
		}
	}
	n, err := strconv.ParseUint(digits, base, 64)
	if err != nil || n > unicode.MaxRune {
		return 0
	}
	return semi + 1
}

// unescapeAttr applies xml-light's rule for quoted strings to a decoded
// attribute value: "\\" becomes "\"; any other backslash is kept ("\1",
// "\d" stay as written).
func unescapeAttr(v string) string {
	if !strings.Contains(v, `\\`) {
		return v
	}
	return strings.ReplaceAll(v, `\\`, `\`)
}
