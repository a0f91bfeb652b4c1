package xmlconf

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/beevik/etree"
)

// maxDepth bounds element nesting. etree refuses more than 1024 levels;
// the pre-pass stops earlier, with a position.
const maxDepth = 512

// passThrough is the CharsetReader of both decoders: like xml-light, the
// bytes are read as they are whatever encoding the XML declaration names,
// so that offsets stay those of the file.
func passThrough(_ string, r io.Reader) (io.Reader, error) { return r, nil }

// readTree reads one XML file in Ocsigen's dialect into a positioned
// [Element] tree and returns its root element. Every problem found is
// added to errs; the tree is nil if the file is not well-formed.
//
// The tree is built by etree. etree has no positions, so a pre-pass with
// encoding/xml's Decoder.Token records the offset of every start tag; the
// i-th element of etree's tree in pre-order gets the i-th position. The
// pre-pass also finds what etree accepts silently: duplicate attributes,
// a second root element, text outside the root.
func readTree(name string, src []byte, errs *ErrorList) *Element {
	s := newSource(name, src)
	before := errs.Len()
	cp := s.escape(errs)
	starts, ok := s.prepass(cp, errs)
	if !ok {
		return nil
	}
	doc := etree.NewDocument()
	doc.ReadSettings.CharsetReader = passThrough
	if err := doc.ReadFromBytes(cp); err != nil {
		// The pre-pass accepted the file: this should not happen.
		errs.Add(s.pos(0), "xml: %v", err)
		return nil
	}
	var elems []*etree.Element
	for _, e := range doc.ChildElements() {
		elems = appendPreorder(elems, e)
	}
	if len(elems) != len(starts) {
		errs.Add(s.pos(0), "xml: internal error: %d elements but %d start tags", len(elems), len(starts))
		return nil
	}
	if len(elems) == 0 {
		if errs.Len() == before {
			errs.Add(s.pos(0), "no root element; want <ocsigen>")
		}
		return nil
	}
	next := 0
	root := convert(doc.ChildElements()[0], starts, &next)
	return root
}

// appendPreorder appends e and its descendants in document order.
func appendPreorder(list []*etree.Element, e *etree.Element) []*etree.Element {
	list = append(list, e)
	for c := range e.ChildElementsSeq() {
		list = appendPreorder(list, c)
	}
	return list
}

// convert turns an etree element into an [Element], taking positions from
// starts in pre-order.
func convert(e *etree.Element, starts []Pos, next *int) *Element {
	out := &Element{Name: e.FullTag(), Pos: starts[*next]}
	*next++
	for _, a := range e.Attr {
		out.Attrs = append(out.Attrs, Attr{Name: a.FullKey(), Value: unescapeAttr(a.Value)})
	}
	var text strings.Builder
	for _, t := range e.Child {
		switch t := t.(type) {
		case *etree.CharData:
			text.WriteString(t.Data)
		case *etree.Element:
			out.Children = append(out.Children, convert(t, starts, next))
		}
	}
	out.Text = strings.TrimSpace(text.String())
	return out
}

// openElem is an element whose end tag the pre-pass has not seen yet.
type openElem struct {
	name string
	pos  Pos
}

// prepass decodes the rewritten copy with encoding/xml, returning the
// position of every start tag in document order. It reports syntax errors
// with their positions; ok is false if the file is not well-formed.
func (s *source) prepass(cp []byte, errs *ErrorList) (starts []Pos, ok bool) {
	d := xml.NewDecoder(bytes.NewReader(cp))
	d.Strict = true
	d.CharsetReader = passThrough
	var stack []openElem
	roots := 0
	textOutside := false
	for {
		off := int(d.InputOffset())
		tok, err := d.Token()
		if err == io.EOF {
			return starts, true
		}
		if err != nil {
			s.syntaxError(d, off, err, stack, errs)
			return starts, false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			p := s.copyPos(off)
			name := rawName(cp, off, t.Name)
			starts = append(starts, p)
			if len(stack) == 0 {
				roots++
				if roots == 2 {
					errs.Add(p, "second root element <%s>; a configuration has one root element", name)
				}
			}
			for i, a := range t.Attr {
				for _, b := range t.Attr[:i] {
					if a.Name == b.Name {
						errs.Add(p, "<%s>: duplicate attribute %q", name, qname(a.Name))
						break
					}
				}
			}
			if len(stack) >= maxDepth {
				errs.Add(p, "<%s>: elements nested more than %d deep", name, maxDepth)
				return starts, false
			}
			stack = append(stack, openElem{name, p})
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 && !textOutside && strings.TrimLeft(string(t), " \t\r\n\ufeff") != "" {
				textOutside = true
				errs.Add(s.copyPos(off), "text outside the root element")
			}
		}
	}
}

// syntaxError reports a decoding error. off is the offset of the token
// being read.
func (s *source) syntaxError(d *xml.Decoder, off int, err error, stack []openElem, errs *ErrorList) {
	var se *xml.SyntaxError
	if !errors.As(err, &se) {
		errs.Add(s.copyPos(int(d.InputOffset())), "%s", clean(lowerFirst(err.Error())))
		return
	}
	msg := se.Msg
	switch {
	case msg == "unexpected EOF" && len(stack) > 0:
		top := stack[len(stack)-1]
		msg = fmt.Sprintf("unexpected end of file: <%s> at %d:%d is not closed", top.name, top.pos.Line, top.pos.Col)
	case msg == "unexpected EOF":
		msg = "unexpected end of file"
	case strings.Contains(msg, " closed by </"), strings.HasPrefix(msg, "unexpected end element"):
		// The token is the end tag: point at it.
		if len(stack) > 0 {
			top := stack[len(stack)-1]
			msg += fmt.Sprintf(" (opened at %d:%d)", top.pos.Line, top.pos.Col)
		}
		errs.Add(s.copyPos(off), "%s", clean(msg))
		return
	}
	errs.Add(s.copyPos(int(d.InputOffset())), "%s", clean(lowerFirst(msg)))
}

// qname returns an attribute's name, with its prefix or namespace if it
// has one.
func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// rawName returns the name of the start tag at cp[off:] as written, with
// its prefix: Token has replaced the prefix by the namespace, which can
// hold anything.
func rawName(cp []byte, off int, n xml.Name) string {
	if off >= len(cp) || cp[off] != '<' {
		return n.Local
	}
	end := off + 1
	for end < len(cp) && end-off < 100 && !strings.ContainsRune(" \t\r\n/>", rune(cp[end])) {
		end++
	}
	return clean(string(cp[off+1 : end]))
}

// clean escapes control characters, so that a message stays on one line.
func clean(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func lowerFirst(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return s
	}
	return string(s[0]+'a'-'A') + s[1:]
}
