// Package wire is ocsiproxy's own form of the HTTP messages it receives
// from clients and exchanges with backends: an [Inbound] is a client's
// request as the server read it; a [Header] is a list of fields in the
// order they are sent, looked up by name without a map; a [Request] is a
// backend request whose head [Request.AppendHead] writes; a [Response] is
// a backend answer. They replace net/http's Request, Response and Header
// on the plain path, where a map per header block and the copies between
// them cost more than the work they do (issue 19).
package wire

import (
	"net/http"
	"net/textproto"
	"slices"
	"strings"
)

// Field is one header field: its name, in canonical form
// ([textproto.CanonicalMIMEHeaderKey]) when set through Header's methods,
// and its value.
type Field struct {
	Name, Value string
}

// Header is the header fields of a message in the order they are sent.
// Names are compared without regard to ASCII case, as http.Header's
// methods do after canonicalising them; a name that is not a token is
// kept as given. The zero value is an empty header. A Header copied by
// value shares its fields with the original, as a copied http.Header
// shares its map: Clone makes one of its own.
type Header struct {
	fields []Field
}

// MakeHeader returns an empty header that appends into buf's free
// capacity first: a caller that owns an array gives it here and the
// usual header costs no allocation.
func MakeHeader(buf []Field) Header { return Header{fields: buf[:0]} }

// Len returns the number of fields.
func (h *Header) Len() int { return len(h.fields) }

// Fields returns the fields in order. The slice is the header's own: it
// is read, not modified.
func (h *Header) Fields() []Field { return h.fields }

// index returns the index of the first field named name, or -1.
func (h *Header) index(name string) int {
	for i := range h.fields {
		if EqualName(h.fields[i].Name, name) {
			return i
		}
	}
	return -1
}

// Get returns the value of the first field named name, or "".
func (h *Header) Get(name string) string {
	if i := h.index(name); i >= 0 {
		return h.fields[i].Value
	}
	return ""
}

// Lookup returns the value of the first field named name and whether
// there is one.
func (h *Header) Lookup(name string) (string, bool) {
	if i := h.index(name); i >= 0 {
		return h.fields[i].Value, true
	}
	return "", false
}

// Has reports whether a field named name is present.
func (h *Header) Has(name string) bool { return h.index(name) >= 0 }

// Values returns the values of the fields named name, in order, in a new
// slice; nil when there is none.
func (h *Header) Values(name string) []string {
	return h.AppendValues(nil, name)
}

// AppendValues appends the values of the fields named name to dst, in
// order, and returns the result: with room in dst (an array of the
// caller's), nothing is allocated.
func (h *Header) AppendValues(dst []string, name string) []string {
	for i := range h.fields {
		if EqualName(h.fields[i].Name, name) {
			dst = append(dst, h.fields[i].Value)
		}
	}
	return dst
}

// AddVary records that the answer h heads depends on the request field
// name (RFC 9110 section 12.5.5): it appends "Vary: name" unless a Vary
// field lists name already (in any letter case) or is "*".
func (h *Header) AddVary(name string) {
	for _, f := range h.fields {
		if !EqualName(f.Name, "Vary") {
			continue
		}
		for v := range strings.SplitSeq(f.Value, ",") {
			v = strings.TrimSpace(v)
			if v == "*" || strings.EqualFold(v, name) {
				return
			}
		}
	}
	h.Add("Vary", name)
}

// Add appends a field.
func (h *Header) Add(name, value string) {
	h.fields = append(h.fields, Field{textproto.CanonicalMIMEHeaderKey(name), value})
}

// AddCanonical appends a field whose name is already in canonical form
// (a parser's), without working that form out again.
func (h *Header) AddCanonical(name, value string) {
	h.fields = append(h.fields, Field{name, value})
}

// Set replaces the fields named name by one with value, at the place of
// the first of them (appended when there is none).
func (h *Header) Set(name, value string) {
	i := h.index(name)
	if i < 0 {
		h.Add(name, value)
		return
	}
	h.fields[i] = Field{textproto.CanonicalMIMEHeaderKey(name), value}
	h.delFrom(i+1, name)
}

// DelFunc removes the fields whose name del reports true for.
func (h *Header) DelFunc(del func(name string) bool) {
	j := 0
	for _, f := range h.fields {
		if !del(f.Name) {
			h.fields[j] = f
			j++
		}
	}
	clear(h.fields[j:])
	h.fields = h.fields[:j]
}

// Del removes the fields named name.
func (h *Header) Del(name string) { h.delFrom(0, name) }

// delFrom removes the fields named name from index i on.
func (h *Header) delFrom(i int, name string) {
	j := i
	for ; i < len(h.fields); i++ {
		if !EqualName(h.fields[i].Name, name) {
			h.fields[j] = h.fields[i]
			j++
		}
	}
	clear(h.fields[j:])
	h.fields = h.fields[:j]
}

// Reset empties h, keeping its memory.
func (h *Header) Reset() {
	clear(h.fields)
	h.fields = h.fields[:0]
}

// Clone returns a copy of h that shares no memory with it.
func (h *Header) Clone() Header {
	return Header{fields: slices.Clone(h.fields)}
}

// FromHTTP returns hh's fields as a Header: the names in sorted order,
// each name's values in their order (a name with no value is left out,
// as net/http's writer leaves it out).
func FromHTTP(hh http.Header) Header {
	return AppendHTTP(Header{}, hh)
}

// AppendHTTP appends hh's fields to h as FromHTTP orders them and returns
// h.
func AppendHTTP(h Header, hh http.Header) Header {
	start := len(h.fields)
	n := 0
	for _, vv := range hh {
		n += len(vv)
	}
	h.fields = slices.Grow(h.fields, n)
	for k, vv := range hh {
		for _, v := range vv {
			h.fields = append(h.fields, Field{k, v})
		}
	}
	// A stable sort keeps each name's values in their order.
	slices.SortStableFunc(h.fields[start:], func(a, b Field) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return h
}

// HTTP returns h as an http.Header (a new map; the names as they are).
func (h *Header) HTTP() http.Header {
	hh := make(http.Header, len(h.fields))
	for _, f := range h.fields {
		hh[f.Name] = append(hh[f.Name], f.Value)
	}
	return hh
}

// CopyTo copies h's fields to hh as assigning each of its names in an
// http.Header would: the values hh holds for a name of h are replaced
// by h's values for it, in order; hh's other names are left as they
// are. Each name keeps its spelling (no canonical form is made). The
// values share one new array: the usual copy costs one allocation.
func (h *Header) CopyTo(hh http.Header) {
	if len(h.fields) == 0 {
		return
	}
	vals := make([]string, len(h.fields))
	for i := range h.fields {
		vals[i] = h.fields[i].Value
	}
	for i := 0; i < len(h.fields); {
		name := h.fields[i].Name
		j := i + 1
		for j < len(h.fields) && h.fields[j].Name == name {
			j++
		}
		if slices.ContainsFunc(h.fields[:i], func(f Field) bool { return f.Name == name }) {
			// The name's earlier values are in hh already.
			hh[name] = append(hh[name], vals[i:j]...)
		} else {
			hh[name] = vals[i:j:j]
		}
		i = j
	}
}

// EqualName reports whether the field names a and b are equal without
// regard to ASCII case (the Kelvin sign and other non-ASCII letters are
// not folded, as http.CanonicalHeaderKey does not fold them).
func EqualName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	if a == b {
		return true // names in the same (canonical) form: one vector compare
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
