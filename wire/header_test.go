package wire_test

import (
	"fmt"
	"net/http"
	"net/textproto"
	"reflect"
	"slices"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

// hdr builds a header from name, value pairs through Add.
func hdr(kv ...string) wire.Header {
	var h wire.Header
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// fields returns kv as fields, the names as given.
func fields(kv ...string) []wire.Field {
	var ff []wire.Field
	for i := 0; i+1 < len(kv); i += 2 {
		ff = append(ff, wire.Field{Name: kv[i], Value: kv[i+1]})
	}
	return ff
}

func checkFields(t *testing.T, what string, h *wire.Header, want []wire.Field) {
	t.Helper()
	if got := h.Fields(); !slices.Equal(got, want) {
		t.Errorf("%s: fields %q, want %q", what, got, want)
	}
	if h.Len() != len(want) {
		t.Errorf("%s: Len() = %d, want %d", what, h.Len(), len(want))
	}
}

func TestHeaderLookup(t *testing.T) {
	h := hdr(
		"Content-Type", "text/plain",
		"x-foo", "1",
		"Accept", "a",
		"X-FOO", "2",
		"Empty", "",
		"x-foo", "3",
	)
	for _, tt := range []struct {
		name   string
		get    string
		has    bool
		values []string
	}{
		{"Content-Type", "text/plain", true, []string{"text/plain"}},
		{"content-type", "text/plain", true, []string{"text/plain"}},
		{"CONTENT-TYPE", "text/plain", true, []string{"text/plain"}},
		{"X-Foo", "1", true, []string{"1", "2", "3"}},
		{"x-fOO", "1", true, []string{"1", "2", "3"}},
		{"accept", "a", true, []string{"a"}},
		// Present with an empty value: Has tells it from absent.
		{"empty", "", true, []string{""}},
		{"Missing", "", false, nil},
		{"X-Fo", "", false, nil},
		{"X-Fooo", "", false, nil},
		{"", "", false, nil},
	} {
		if got := h.Get(tt.name); got != tt.get {
			t.Errorf("Get(%q) = %q, want %q", tt.name, got, tt.get)
		}
		if got := h.Has(tt.name); got != tt.has {
			t.Errorf("Has(%q) = %v, want %v", tt.name, got, tt.has)
		}
		got := h.Values(tt.name)
		if !slices.Equal(got, tt.values) || (got == nil) != (tt.values == nil) {
			t.Errorf("Values(%q) = %#v, want %#v", tt.name, got, tt.values)
		}
	}

	// Values returns a new slice: writing to it leaves the header.
	vv := h.Values("X-Foo")
	vv[0] = "changed"
	if got := h.Get("X-Foo"); got != "1" {
		t.Errorf("after writing to Values' slice, Get = %q, want %q", got, "1")
	}
}

func TestHeaderZero(t *testing.T) {
	var h wire.Header
	if h.Len() != 0 || h.Fields() != nil || h.Has("A") || h.Get("A") != "" || h.Values("A") != nil {
		t.Errorf("zero Header not empty: %q", h.Fields())
	}
	h.Del("A")
	h.Reset()
	if h.Len() != 0 {
		t.Errorf("zero Header after Del and Reset: %q", h.Fields())
	}
	if c := h.Clone(); c.Len() != 0 {
		t.Errorf("Clone of zero Header: %q", c.Fields())
	}
}

func TestHeaderEdit(t *testing.T) {
	for _, tt := range []struct {
		desc string
		init []string
		edit func(h *wire.Header)
		want []wire.Field
	}{
		{
			desc: "Add appends, canonical name",
			init: []string{"B", "1"},
			edit: func(h *wire.Header) { h.Add("x-foo", "2"); h.Add("CONTENT-TYPE", "3") },
			want: fields("B", "1", "X-Foo", "2", "Content-Type", "3"),
		},
		{
			desc: "Add keeps an existing name's fields",
			init: []string{"A", "1", "B", "2"},
			edit: func(h *wire.Header) { h.Add("a", "3") },
			want: fields("A", "1", "B", "2", "A", "3"),
		},
		{
			desc: "Add keeps a non-token name as given",
			edit: func(h *wire.Header) { h.Add("x foo", "1"); h.Add("caf\u00e9-x", "2") },
			want: fields("x foo", "1", "caf\u00e9-x", "2"),
		},
		{
			desc: "Set appends when absent",
			init: []string{"A", "1"},
			edit: func(h *wire.Header) { h.Set("b", "2") },
			want: fields("A", "1", "B", "2"),
		},
		{
			desc: "Set replaces a single field in place",
			init: []string{"A", "1", "B", "2", "C", "3"},
			edit: func(h *wire.Header) { h.Set("b", "x") },
			want: fields("A", "1", "B", "x", "C", "3"),
		},
		{
			desc: "Set replaces at the first and removes the later ones",
			init: []string{"A", "1", "X", "2", "B", "3", "X", "4", "C", "5", "x", "6"},
			edit: func(h *wire.Header) { h.Set("X", "new") },
			want: fields("A", "1", "X", "new", "B", "3", "C", "5"),
		},
		{
			desc: "Set on the first field",
			init: []string{"A", "1", "A", "2", "B", "3"},
			edit: func(h *wire.Header) { h.Set("A", "x") },
			want: fields("A", "x", "B", "3"),
		},
		{
			desc: "Set on the last field",
			init: []string{"A", "1", "B", "2"},
			edit: func(h *wire.Header) { h.Set("B", "x") },
			want: fields("A", "1", "B", "x"),
		},
		{
			desc: "Set to an empty value keeps the field",
			init: []string{"A", "1"},
			edit: func(h *wire.Header) { h.Set("A", "") },
			want: fields("A", ""),
		},
		{
			desc: "Del removes every field of the name, keeps the others' order",
			init: []string{"A", "1", "X", "2", "B", "3", "x", "4", "C", "5", "X", "6"},
			edit: func(h *wire.Header) { h.Del("x") },
			want: fields("A", "1", "B", "3", "C", "5"),
		},
		{
			desc: "Del of an absent name",
			init: []string{"A", "1", "B", "2"},
			edit: func(h *wire.Header) { h.Del("Ab") },
			want: fields("A", "1", "B", "2"),
		},
		{
			desc: "Del of all",
			init: []string{"A", "1", "a", "2"},
			edit: func(h *wire.Header) { h.Del("A") },
			want: nil,
		},
		{
			desc: "Reset",
			init: []string{"A", "1", "B", "2"},
			edit: func(h *wire.Header) { h.Reset() },
			want: nil,
		},
		{
			desc: "Reset then Add",
			init: []string{"A", "1", "B", "2"},
			edit: func(h *wire.Header) { h.Reset(); h.Add("C", "3") },
			want: fields("C", "3"),
		},
	} {
		h := hdr(tt.init...)
		tt.edit(&h)
		// Fields returns an empty non-nil slice after a removal: compare
		// by contents.
		if got := h.Fields(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: fields %q, want %q", tt.desc, got, tt.want)
		}
		if h.Len() != len(tt.want) {
			t.Errorf("%s: Len() = %d, want %d", tt.desc, h.Len(), len(tt.want))
		}
	}
}

// TestHeaderRemovedFieldsCleared checks that Del, Set and Reset leave no
// removed field in the backing array past the header's length (where it
// would keep its strings alive).
func TestHeaderRemovedFieldsCleared(t *testing.T) {
	for _, tt := range []struct {
		desc string
		edit func(h *wire.Header)
		kept int
	}{
		{"Del", func(h *wire.Header) { h.Del("X") }, 2},
		{"Set", func(h *wire.Header) { h.Set("X", "new") }, 3},
		{"Reset", func(h *wire.Header) { h.Reset() }, 0},
	} {
		var buf [8]wire.Field
		h := wire.MakeHeader(buf[:])
		h.Add("X", "1")
		h.Add("A", "2")
		h.Add("X", "3")
		h.Add("B", "4")
		h.Add("X", "5")
		tt.edit(&h)
		if h.Len() != tt.kept {
			t.Fatalf("%s: Len() = %d, want %d", tt.desc, h.Len(), tt.kept)
		}
		for i := tt.kept; i < len(buf); i++ {
			if buf[i] != (wire.Field{}) {
				t.Errorf("%s: buf[%d] = %q after removal, want cleared", tt.desc, i, buf[i])
			}
		}
	}
}

func TestHeaderClone(t *testing.T) {
	h := hdr("A", "1", "B", "2", "A", "3")
	c := h.Clone()
	checkFields(t, "clone", &c, fields("A", "1", "B", "2", "A", "3"))

	c.Set("A", "x")
	c.Add("C", "4")
	c.Del("B")
	checkFields(t, "original after the clone's edits", &h, fields("A", "1", "B", "2", "A", "3"))
	checkFields(t, "clone after its edits", &c, fields("A", "x", "C", "4"))

	// Editing the original leaves the clone.
	c2 := h.Clone()
	h.Set("B", "y")
	h.Reset()
	checkFields(t, "clone after the original's edits", &c2, fields("A", "1", "B", "2", "A", "3"))

	// A clone of a header with free capacity: appending to one does not
	// write into the other's array.
	var buf [8]wire.Field
	m := wire.MakeHeader(buf[:])
	m.Add("A", "1")
	mc := m.Clone()
	mc.Add("B", "2")
	m.Add("C", "3")
	checkFields(t, "clone of MakeHeader", &mc, fields("A", "1", "B", "2"))
	checkFields(t, "MakeHeader", &m, fields("A", "1", "C", "3"))
	if &mc.Fields()[0] == &buf[0] {
		t.Error("clone shares the array given to MakeHeader")
	}
}

// TestHeaderCopyShares documents that a Header copied by value shares its
// fields, as a copied http.Header shares its map.
func TestHeaderCopyShares(t *testing.T) {
	h := hdr("A", "1")
	c := h
	c.Set("A", "2")
	if got := h.Get("A"); got != "2" {
		t.Errorf("a copy's Set in place not seen by the original: Get = %q", got)
	}
}

var sinkLen int

func TestMakeHeader(t *testing.T) {
	var buf [6]wire.Field
	buf[0] = wire.Field{Name: "Old", Value: "x"}
	h := wire.MakeHeader(buf[:])
	if h.Len() != 0 || h.Has("Old") {
		t.Fatalf("MakeHeader over a used array: fields %q, want none", h.Fields())
	}
	h.Add("A", "1")
	h.Add("b", "2")
	if &h.Fields()[0] != &buf[0] {
		t.Error("MakeHeader's header does not append into the given array")
	}
	if buf[0] != (wire.Field{Name: "A", Value: "1"}) || buf[1] != (wire.Field{Name: "B", Value: "2"}) {
		t.Errorf("array after two Adds: %q", buf[:2])
	}

	// Up to the array's capacity, a header costs nothing; Set and Del
	// within it nothing either. The names are canonical: Add
	// canonicalises a name, and a non-canonical one may cost a string.
	names := [...]string{"Host", "Accept", "X-Forwarded-For", "Content-Type", "User-Agent", "X-A"}
	allocs := testing.AllocsPerRun(100, func() {
		h := wire.MakeHeader(buf[:])
		for _, n := range names {
			h.Add(n, "v")
		}
		h.Set("Accept", "w")
		h.Del("X-A")
		h.Add("X-A", "v")
		sinkLen = h.Len()
	})
	if allocs != 0 {
		t.Errorf("filling a MakeHeader header to its capacity: %v allocations, want 0", allocs)
	}
	if sinkLen != len(names) {
		t.Errorf("Len() = %d, want %d", sinkLen, len(names))
	}

	// One more than the capacity moves the header to an array of its own
	// and leaves the given one as it was.
	h = wire.MakeHeader(buf[:])
	for _, n := range names {
		h.Add(n, "v")
	}
	h.Add("One-More", "v")
	h.Set("Host", "changed")
	if buf[0].Value != "v" {
		t.Errorf("header past capacity still writes into the given array: buf[0] = %q", buf[0])
	}
	if h.Len() != len(names)+1 || h.Get("host") != "changed" || h.Get("one-more") != "v" {
		t.Errorf("header past capacity: %q", h.Fields())
	}

	// A nil array is a zero header.
	n := wire.MakeHeader(nil)
	n.Add("A", "1")
	checkFields(t, "MakeHeader(nil)", &n, fields("A", "1"))
}

func TestFromHTTP(t *testing.T) {
	hh := http.Header{
		"X-B":          {"b1", "b2", "b3"},
		"Accept":       {"a"},
		"Content-Type": {"text/plain"},
		"X-A":          {"a2", "a1"},
		"Empty-Value":  {""},
		"Nil-Values":   nil,
		"No-Values":    {},
		// A name net/http leaves alone is taken as it is, sorted
		// byte-wise.
		"lower": {"l"},
	}
	want := fields(
		"Accept", "a",
		"Content-Type", "text/plain",
		"Empty-Value", "",
		"X-A", "a2", "X-A", "a1",
		"X-B", "b1", "X-B", "b2", "X-B", "b3",
		"lower", "l",
	)
	// Map order varies from run to run: take several.
	for range 20 {
		h := wire.FromHTTP(hh)
		if checkFields(t, "FromHTTP", &h, want); t.Failed() {
			break
		}
	}
	// Enough fields that an unstable sort would mix a name's values.
	big := http.Header{}
	var bigWant []wire.Field
	for i := range 30 {
		name := fmt.Sprintf("N-%02d", i)
		for j := range 5 {
			v := fmt.Sprint(4 - j)
			big.Add(name, v)
			bigWant = append(bigWant, wire.Field{Name: name, Value: v})
		}
	}
	for range 20 {
		h := wire.FromHTTP(big)
		if checkFields(t, "FromHTTP of many fields", &h, bigWant); t.Failed() {
			break
		}
	}

	if h := wire.FromHTTP(nil); h.Len() != 0 {
		t.Errorf("FromHTTP(nil) = %q", h.Fields())
	}
	// FromHTTP copies: the map's slices are not aliased.
	h := wire.FromHTTP(hh)
	hh["Accept"][0] = "changed"
	if got := h.Get("Accept"); got != "a" {
		t.Errorf("FromHTTP's header follows the map: Get = %q", got)
	}
	hh["Accept"][0] = "a"
}

func TestAppendHTTP(t *testing.T) {
	hh := http.Header{"Z": {"z"}, "B": {"b1", "b2"}, "A": {"a"}}
	for range 20 {
		// The fields already there stay first and in their order (not
		// sorted with the appended ones).
		h := hdr("Y", "y", "C", "c")
		h = wire.AppendHTTP(h, hh)
		if checkFields(t, "AppendHTTP", &h, fields("Y", "y", "C", "c", "A", "a", "B", "b1", "B", "b2", "Z", "z")); t.Failed() {
			break
		}
	}

	// AppendHTTP appends into MakeHeader's array as Add does.
	var buf [8]wire.Field
	h := wire.AppendHTTP(wire.MakeHeader(buf[:]), hh)
	checkFields(t, "AppendHTTP into MakeHeader", &h, fields("A", "a", "B", "b1", "B", "b2", "Z", "z"))
	if &h.Fields()[0] != &buf[0] {
		t.Error("AppendHTTP does not append into MakeHeader's array")
	}

	h = wire.AppendHTTP(hdr("A", "1"), nil)
	checkFields(t, "AppendHTTP of nil", &h, fields("A", "1"))
}

func TestHeaderHTTP(t *testing.T) {
	h := hdr("B", "1", "A", "2", "b", "3", "Empty", "")
	want := http.Header{"B": {"1", "3"}, "A": {"2"}, "Empty": {""}}
	hh := h.HTTP()
	if !reflect.DeepEqual(hh, want) {
		t.Errorf("HTTP() = %v, want %v", hh, want)
	}
	// A new map: editing it leaves the header.
	hh.Set("A", "x")
	hh.Add("B", "4")
	hh.Del("Empty")
	checkFields(t, "header after editing HTTP()'s map", &h, fields("B", "1", "A", "2", "B", "3", "Empty", ""))

	// The names go as they are.
	h = wire.FromHTTP(http.Header{"lower": {"l"}, "Lower": {"L"}})
	want = http.Header{"lower": {"l"}, "Lower": {"L"}}
	if hh := h.HTTP(); !reflect.DeepEqual(hh, want) {
		t.Errorf("HTTP() = %v, want %v", hh, want)
	}

	var z wire.Header
	if hh := z.HTTP(); hh == nil || len(hh) != 0 {
		t.Errorf("zero Header's HTTP() = %#v, want an empty map", hh)
	}

	// FromHTTP and HTTP are inverse for a map with canonical names.
	orig := http.Header{"Accept": {"a", "b"}, "X-Y": {"1"}, "Via": {"v"}}
	h = wire.FromHTTP(orig)
	if back := h.HTTP(); !reflect.DeepEqual(back, orig) {
		t.Errorf("FromHTTP(m).HTTP() = %v, want %v", back, orig)
	}
}

func TestEqualName(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"Host", "Host", true},
		{"host", "HOST", true},
		{"Content-Type", "cONTENT-tYPE", true},
		{"x-1_~!", "X-1_~!", true},
		{"a b", "A B", true}, // not a token: still folded
		{"Host", "Hos", false},
		{"Host", "Hostt", false},
		{"Host", "Hosu", false},
		{"", "a", false},
		{"a-b", "a_b", false},
		// Only A-Z and a-z fold: bytes 0x20 apart outside the letters
		// do not.
		{"@", "`", false},
		{"[", "{", false},
		{"]", "}", false},
		{"^", "~", false},
		{"\\", "|", false},
		{"0", "\x10", false},
		{"-", "\r", false},
		{"\xc1", "\xe1", false},
		// The Kelvin sign is not K: no Unicode folding (its UTF-8 form
		// is also three bytes long against K's one).
		{"K", "\u212a", false},
		{"k", "\u212a", false},
		{"X-K", "X-\u212a", false},
		// Non-ASCII letters of the same length: not folded either.
		{"\u00e9", "\u00c9", false},
		{"caf\u00e9", "CAF\u00c9", false},
		{"caf\u00e9", "CAF\u00e9", true},
	} {
		if got := wire.EqualName(tt.a, tt.b); got != tt.want {
			t.Errorf("EqualName(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := wire.EqualName(tt.b, tt.a); got != tt.want {
			t.Errorf("EqualName(%q, %q) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
	// Every pair of bytes: equal exactly when the same ASCII letter in
	// either case, or the same byte.
	for x := 0; x < 256; x++ {
		for y := 0; y < 256; y++ {
			lx, ly := x, y
			if 'A' <= lx && lx <= 'Z' {
				lx += 'a' - 'A'
			}
			if 'A' <= ly && ly <= 'Z' {
				ly += 'a' - 'A'
			}
			want := lx == ly
			if got := wire.EqualName(string([]byte{byte(x)}), string([]byte{byte(y)})); got != want {
				t.Fatalf("EqualName(%q, %q) = %v, want %v", byte(x), byte(y), got, want)
			}
		}
	}
}

// TestNonTokenNameAgainstHTTP states the one way Header's lookups part
// from http.Header's: http.Header canonicalises a name with
// textproto.CanonicalMIMEHeaderKey, which returns a name holding a byte
// that is not a token character (a space, a colon, a byte of 0x80 and
// above...) unchanged, so that http.Header then compares it with its case;
// Header compares every name without regard to ASCII case. For names that
// are tokens the two agree (FuzzHeader).
func TestNonTokenNameAgainstHTTP(t *testing.T) {
	for _, tt := range []struct{ add, get string }{
		{"x y", "X y"},
		{"X-Foo ", "x-foo "},
		{"caf\u00e9-x", "CAF\u00e9-X"},
		{"a:b", "A:B"},
	} {
		if textproto.CanonicalMIMEHeaderKey(tt.add) != tt.add || textproto.CanonicalMIMEHeaderKey(tt.get) != tt.get {
			t.Fatalf("%q or %q canonicalised: case not a non-token one", tt.add, tt.get)
		}
		hh := http.Header{}
		hh.Add(tt.add, "v")
		var h wire.Header
		h.Add(tt.add, "v")
		if got := hh.Get(tt.get); got != "" {
			t.Errorf("http.Header: Add(%q) then Get(%q) = %q, want \"\"", tt.add, tt.get, got)
		}
		if got := h.Get(tt.get); got != "v" {
			t.Errorf("wire.Header: Add(%q) then Get(%q) = %q, want %q", tt.add, tt.get, got, "v")
		}
		if got := hh.Values(tt.get); got != nil {
			t.Errorf("http.Header: Values(%q) = %q, want none", tt.get, got)
		}
		if got := h.Values(tt.get); !slices.Equal(got, []string{"v"}) {
			t.Errorf("wire.Header: Values(%q) = %q, want [v]", tt.get, got)
		}
		hh.Del(tt.get)
		h.Del(tt.get)
		if got := hh.Get(tt.add); got != "v" {
			t.Errorf("http.Header: after Del(%q), Get(%q) = %q, want %q", tt.get, tt.add, got, "v")
		}
		if h.Has(tt.add) {
			t.Errorf("wire.Header: after Del(%q), Has(%q) = true, want false", tt.get, tt.add)
		}
	}
}

// The names FuzzHeader chooses among, besides those it reads from its
// input: canonical and non-canonical spellings of the same names.
var fuzzNames = [...]string{
	"Content-Type", "content-type", "CONTENT-TYPE",
	"X-Foo", "X-FOO", "x-foo", "x-Foo",
	"Host", "host",
	"K", "k",
	"A-B-C", "a-b-c",
	"Set-Cookie", "set-cookie",
	"X_Under", "x_under",
	"1-2", "~",
}

// tokenName makes s a token: each byte that is not a token character
// (RFC 9110 section 5.6.2) becomes one. FuzzHeader uses token names only,
// as http.Header and Header differ for the others: two spellings of a
// non-token name that differ only in the case of ASCII letters are one
// name to Header and two to http.Header (TestNonTokenNameAgainstHTTP);
// without this, Add("a b", "v") then Del("A b") fails the check (Header
// no longer has "a b", http.Header has it). The empty name stays empty:
// both keep it as it is and agree on it.
func tokenName(s string) string {
	const tchars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := []byte(s)
	for i, c := range b {
		if !httpsyntax.IsTokenByte(c) {
			b[i] = tchars[int(c)%len(tchars)]
		}
	}
	return string(b)
}

// FuzzHeader applies the operations its input encodes to a Header and to
// an http.Header, and checks after each that they agree for every name
// used so far.
//
// The input is read as operations of the form
//
//	op byte: low 2 bits Add (0, 3), Set (1), Del (2); the other bits pick
//	         the name: below len(fuzzNames) one of them, else a name of
//	         (op>>2 - len(fuzzNames)) % 8 bytes read from the input
//	value:   a length byte (mod 16) and that many bytes (not for Del)
//
// up to 64 operations.
func FuzzHeader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0 << 2, 1, 'a', 1<<2 | 0, 1, 'b', 2<<2 | 1, 1, 'c'})                     // Add, Add another spelling, Set a third
	f.Add([]byte{3<<2 | 0, 2, '1', '2', 4<<2 | 0, 0, 6<<2 | 2, 5<<2 | 1, 0})              // X-Foo spellings: Add, Add, Del, Set
	f.Add([]byte{30<<2 | 0, 'x', '-', 'y', 1, 'v', 30<<2 | 2, 'X', '-', 'Y'})             // read names
	f.Add([]byte{9<<2 | 3, 0, 10<<2 | 0, 1, 'k', 9<<2 | 1, 3, 'a', '\r', 'b', 10<<2 | 2}) // K and k, a CR in a value
	f.Add([]byte{20<<2 | 0, 1, ' ', 20<<2 | 0, 1, 0, 19<<2 | 1, 0})                       // a name made a token, the empty name

	f.Fuzz(func(t *testing.T, data []byte) {
		var h wire.Header
		hh := http.Header{}
		used := map[string]bool{}
		next := func(n int) string {
			n = min(n, len(data))
			s := string(data[:n])
			data = data[n:]
			return s
		}
		value := func() string {
			if len(data) == 0 {
				return ""
			}
			n := int(data[0]) % 16
			data = data[1:]
			return next(n)
		}
		var log []string
		// A bound on the operations: each step's check costs the
		// square of the header's size.
		for len(data) > 0 && len(log) < 64 {
			op := data[0]
			data = data[1:]
			var name string
			if k := int(op >> 2); k < len(fuzzNames) {
				name = fuzzNames[k]
			} else {
				name = tokenName(next((k - len(fuzzNames)) % 8))
			}
			used[name] = true
			switch op & 3 {
			case 0, 3:
				v := value()
				h.Add(name, v)
				hh.Add(name, v)
				log = append(log, fmt.Sprintf("Add(%q, %q)", name, v))
			case 1:
				v := value()
				h.Set(name, v)
				hh.Set(name, v)
				log = append(log, fmt.Sprintf("Set(%q, %q)", name, v))
			case 2:
				h.Del(name)
				hh.Del(name)
				log = append(log, fmt.Sprintf("Del(%q)", name))
			}
			compareHeaders(t, log, &h, hh, used)
		}
	})
}

func compareHeaders(t *testing.T, log []string, h *wire.Header, hh http.Header, used map[string]bool) {
	t.Helper()
	for name := range used {
		_, present := hh[textproto.CanonicalMIMEHeaderKey(name)]
		if got := h.Has(name); got != present {
			t.Fatalf("after %v: Has(%q) = %v, http.Header has it: %v", log, name, got, present)
		}
		if got, want := h.Get(name), hh.Get(name); got != want {
			t.Fatalf("after %v: Get(%q) = %q, http.Header's %q", log, name, got, want)
		}
		if got, want := h.Values(name), hh.Values(name); !slices.Equal(got, want) {
			t.Fatalf("after %v: Values(%q) = %q, http.Header's %q", log, name, got, want)
		}
	}
	// The whole header, and its size.
	n := 0
	for _, vv := range hh {
		n += len(vv)
	}
	if h.Len() != n {
		t.Fatalf("after %v: Len() = %d, http.Header holds %d values", log, h.Len(), n)
	}
	if got := h.HTTP(); !reflect.DeepEqual(got, hh) {
		t.Fatalf("after %v: HTTP() = %q, http.Header %q", log, got, hh)
	}
}

func TestAddVary(t *testing.T) {
	tests := []struct {
		name string
		vary []string // the Vary fields before
		want []string // after AddVary("Origin")
	}{
		{"none", nil, []string{"Origin"}},
		{"listed", []string{"Accept-Encoding, Origin"}, []string{"Accept-Encoding, Origin"}},
		{"listed in another case", []string{"origin"}, []string{"origin"}},
		{"star", []string{"*"}, []string{"*"}},
		{"in a second field", []string{"Accept", " Origin "}, []string{"Accept", " Origin "}},
		{"others", []string{"Accept-Encoding"}, []string{"Accept-Encoding", "Origin"}},
		{"a longer name", []string{"Origin-Agent-Cluster"}, []string{"Origin-Agent-Cluster", "Origin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h wire.Header
			h.Add("Content-Type", "text/plain")
			for _, v := range tt.vary {
				h.Add("Vary", v)
			}
			h.AddVary("Origin")
			if got := h.Values("Vary"); !slices.Equal(got, tt.want) {
				t.Errorf("Vary %q, want %q", got, tt.want)
			}
			if got := h.Get("Content-Type"); got != "text/plain" {
				t.Errorf("Content-Type %q", got)
			}
		})
	}
}
