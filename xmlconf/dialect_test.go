package xmlconf

import (
	"strings"
	"testing"
)

// readOne reads src and returns its root element, failing on errors.
func readOne(t *testing.T, src string) *Element {
	t.Helper()
	var errs ErrorList
	root := readTree("t.conf", []byte(src), &errs)
	if err := errs.Err(); err != nil {
		t.Fatalf("readTree(%q): %v", src, err)
	}
	return root
}

func TestDialectAttributes(t *testing.T) {
	tests := []struct {
		attr string // the attribute as written, name x
		want string
	}{
		{`x="a&b"`, `a&b`},           // a raw "&" is kept
		{`x="a & b"`, `a & b`},       //
		{`x="a&&b;"`, `a&&b;`},       //
		{`x="?a=1&b=2"`, `?a=1&b=2`}, //
		{`x="a&amp;b"`, `a&b`},       // entities are decoded
		{`x="&lt;&gt;&quot;&apos;"`, `<>"'`},
		{`x="&#38;&#x26;&#X26;"`, `&&&#X26;`}, // "&#X" is not a reference
		{`x="&foo;"`, `&foo;`},                // an unknown entity is kept
		{`x="&#;&#x;&#12a;"`, `&#;&#x;&#12a;`},
		{`x="&#1114112;"`, `&#1114112;`}, // beyond Unicode: kept
		{`x="&amp"`, `&amp`},             // no semicolon: kept
		{`x="\1"`, `\1`},                 // a backslash before anything else is kept
		{`x="\d\.\w"`, `\d\.\w`},
		{`x="\\1"`, `\1`}, // "\\" is "\"
		{`x="\\\\1"`, `\\1`},
		{`x="\\\1"`, `\\1`},
		{`x="a\\"`, `a\`},
		{`x="a\"b"`, `a"b`},    // xml-light's escaped quote
		{`x='a\'b'`, `a'b`},    //
		{`x='a\"b'`, `a\"b`},   // not the quote of this value: kept
		{`x="a\'b"`, `a\'b`},   //
		{`x="a\\\"b"`, `a\"b`}, // "\\" then "\""
		{`x="a&#92;&#92;b"`, `a\b`},
		{`x="(?&lt;n>a)"`, `(?<n>a)`},
		{`x="a>b"`, `a>b`},
	}
	for _, tt := range tests {
		e := readOne(t, "<a "+tt.attr+"/>")
		if got, _ := e.Attr("x"); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.attr, got, tt.want)
		}
	}
}

func TestDialectText(t *testing.T) {
	tests := []struct {
		body string
		want string
	}{
		{`a & b`, `a & b`},
		{`a &amp; b`, `a & b`},
		{`&lt;x&gt;`, `<x>`},
		{`\\1`, `\\1`}, // backslashes in text are kept
		{`<![CDATA[a &amp; <b> & c]]>`, `a &amp; <b> & c`},
		{`x<!-- & -->y`, `xy`},
		{"  \n 80 \t\n", `80`},
		{`a<b/>c`, `ac`},
	}
	for _, tt := range tests {
		e := readOne(t, "<a>"+tt.body+"</a>")
		if e.Text != tt.want {
			t.Errorf("%s: got %q, want %q", tt.body, e.Text, tt.want)
		}
	}
}

func TestDialectDoctype(t *testing.T) {
	e := readOne(t, `<!DOCTYPE a [ <!ENTITY x "&y;"> <!-- & --> ]><a x="1&2">&</a>`)
	if v, _ := e.Attr("x"); v != "1&2" || e.Text != "&" {
		t.Errorf("got x=%q text=%q", v, e.Text)
	}
}

func TestPositions(t *testing.T) {
	src := "<?xml version=\"1.0\"?>\n" +
		"<a x=\"&&&\" y='\\\\'>\n" +
		"\t<b/><c z=\"&amp;&\">&&<d/></c>\n" +
		"  <!-- <e/> -->\n" +
		"  <![CDATA[<f/>]]><g\n" +
		"  /></a>\n"
	root := readOne(t, src)
	got := []string{}
	var walk func(e *Element)
	walk = func(e *Element) {
		got = append(got, e.Name+"@"+e.Pos.String())
		for _, c := range e.Children {
			walk(c)
		}
	}
	walk(root)
	want := "a@t.conf:2:1 b@t.conf:3:2 c@t.conf:3:6 d@t.conf:3:22 g@t.conf:5:19"
	if s := strings.Join(got, " "); s != want {
		t.Errorf("positions:\ngot  %s\nwant %s", s, want)
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		src  string
		want string
	}{
		{``, `t.conf:1:1: no root element; want <ocsigen>`},
		{"<!-- only -->\n", `t.conf:1:1: no root element; want <ocsigen>`},
		{`<a x="<"/>`, `t.conf:1:7: unescaped "<" in attribute value; write &lt; instead`},
		{"<a\n x=\"&&<\" y='<'/>", "t.conf:2:7: unescaped \"<\" in attribute value; write &lt; instead\n" +
			"t.conf:2:13: unescaped \"<\" in attribute value; write &lt; instead"},
		{"<a>\n  <b>\n  </c>\n</a>", `t.conf:3:3: element <b> closed by </c> (opened at 2:3)`},
		{"<a>\n  <b>", `t.conf:2:6: unexpected end of file: <b> at 2:3 is not closed`},
		{"<a/></a>", `t.conf:1:5: unexpected end element </a>`},
		{"<a/>\n<b/>", `t.conf:2:1: second root element <b>; a configuration has one root element`},
		{"x<a/>", `t.conf:1:1: text outside the root element`},
		{"\ufeff<a/>", ``},
		{`<a x="1" y="2" x="3"/>`, `t.conf:1:1: <a>: duplicate attribute "x"`},
		{"<a>\n<b x=1/></a>", `t.conf:2:7: unquoted or missing attribute value in element`},
		{"<a>\xff</a>", `t.conf:1:5: invalid UTF-8`},
		{"<a x='&&' y=\"z\" <b/>", `t.conf:1:17: expected attribute name in element`},
		{strings.Repeat("<a>", maxDepth+1), `t.conf:1:1537: <a>: elements nested more than 512 deep`},
	}
	for _, tt := range tests {
		var errs ErrorList
		readTree("t.conf", []byte(tt.src), &errs)
		got := ""
		if err := errs.Err(); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("readTree(%q):\ngot  %s\nwant %s", tt.src, got, tt.want)
		}
	}
}

func TestOrigOffset(t *testing.T) {
	// "a&b<" in an attribute value: "&" grows by 4 bytes, "<" by 3.
	s := newSource("t", []byte(`<x y="a&b<c"/>`))
	var errs ErrorList
	cp := string(s.escape(&errs))
	if want := `<x y="a&amp;b&lt;c"/>`; cp != want {
		t.Fatalf("escape: got %s, want %s", cp, want)
	}
	for copyOff, want := range map[int]int{0: 0, 7: 7, 8: 7, 11: 7, 12: 8, 13: 9, 16: 9, 17: 10, 20: 13} {
		if got := s.origOffset(copyOff); got != want {
			t.Errorf("origOffset(%d) = %d, want %d", copyOff, got, want)
		}
	}
}
