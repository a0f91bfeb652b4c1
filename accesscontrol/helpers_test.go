package accesscontrol

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dlclark/regexp2"

	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

func init() {
	// Make regexp timeout tests fast (see LIBRARIES.md 1.5).
	regexp2.SetTimeoutCheckPeriod(time.Millisecond)
}

const testFile = "test.conf"

// parseXML reads src, a sequence of site instructions, into positioned
// elements, as xmlconf would.
func parseXML(t testing.TB, src string) []*xmlconf.Element {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader([]byte("<r>" + src + "</r>")))
	var stack []*xmlconf.Element
	var text []*strings.Builder
	var root *xmlconf.Element
	for {
		line, col := d.InputPos()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("bad test XML %q: %v", src, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if line == 1 {
				col -= len("<r>")
			}
			e := &xmlconf.Element{Name: tok.Name.Local, Pos: xmlconf.Pos{File: testFile, Line: line, Col: col}}
			for _, a := range tok.Attr {
				e.Attrs = append(e.Attrs, xmlconf.Attr{Name: a.Name.Local, Value: a.Value})
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, e)
			} else {
				root = e
			}
			stack = append(stack, e)
			text = append(text, &strings.Builder{})
		case xml.CharData:
			text[len(text)-1].Write(tok)
		case xml.EndElement:
			stack[len(stack)-1].Text = strings.TrimSpace(text[len(text)-1].String())
			stack, text = stack[:len(stack)-1], text[:len(text)-1]
		}
	}
	return root.Children
}

// fakeCompiler compiles accesscontrol elements with [Compile] and a few
// test instructions:
//   - <answer status="N"/> answers the request;
//   - <setstatus code="N"/> sets the status of an unanswered request;
//   - <mark name="X"/> traces "mark X".
type fakeCompiler struct {
	errs    xmlconf.ErrorList
	timeout time.Duration
}

func (c *fakeCompiler) Errors() *xmlconf.ErrorList  { return &c.errs }
func (c *fakeCompiler) MatchTimeout() time.Duration { return c.timeout }

func (c *fakeCompiler) Block(elems []*xmlconf.Element) []stage.Stage {
	var out []stage.Stage
	for _, e := range elems {
		switch e.Name {
		case "answer", "setstatus", "mark":
			attr := map[string]string{"answer": "status", "setstatus": "code", "mark": "name"}[e.Name]
			if !e.CheckAttrs(&c.errs, []string{attr}, nil) {
				continue
			}
			v, _ := e.Attr(attr)
			out = append(out, &testStage{pos: e.Pos, kind: e.Name, value: v})
		default:
			if !Handles(e.Name) {
				c.errs.Add(e.Pos, "<%s>: unknown element", e.Name)
				continue
			}
			if s := Compile(c, e); s != nil {
				out = append(out, s)
			}
		}
	}
	return out
}

type testStage struct {
	pos   xmlconf.Pos
	kind  string
	value string
}

// trackedBody records that it was closed.
type trackedBody struct {
	io.Reader
	closed *bool
}

func (b trackedBody) Close() error { *b.closed = true; return nil }

func (s *testStage) Run(_ context.Context, st *stage.State) (stage.Result, error) {
	switch s.kind {
	case "answer":
		n, _ := strconv.Atoi(s.value)
		closed := new(bool)
		st.SetAnswer(&wire.Response{StatusCode: n, Body: trackedBody{strings.NewReader("x"), closed}}, s.pos)
		answerClosed = closed
	case "setstatus":
		st.Status, _ = strconv.Atoi(s.value)
	case "mark":
		st.Tracef(s.pos, "mark %s", s.value)
	}
	return stage.Next, nil
}

// answerClosed points at the closed flag of the last answer made (tests
// using it do not run in parallel).
var answerClosed *bool

// compile compiles src, failing the test on configuration errors.
func compile(t testing.TB, src string) []stage.Stage {
	t.Helper()
	c := &fakeCompiler{timeout: 50 * time.Millisecond}
	stages := c.Block(parseXML(t, src))
	if err := c.errs.Err(); err != nil {
		t.Fatalf("compile %s:\n%v", src, err)
	}
	return stages
}

// newState returns the state of "GET /sub/path HTTP/1.1" from 192.0.2.7
// on port 80, with the given header lines ("Name: value").
func newState(headers ...string) *stage.State {
	req := &http.Request{Method: "GET", Proto: "HTTP/1.1", Header: http.Header{}}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(name, strings.TrimSpace(value))
	}
	peer := netip.MustParseAddr("192.0.2.7")
	return &stage.State{
		In:        wire.FromHTTPRequest(req),
		Env:       &stage.Env{},
		Method:    "GET",
		Proto:     "HTTP/1.1",
		Path:      "/sub/path",
		Host:      "www.example.com",
		HostName:  "www.example.com",
		LocalPort: 80,
		Peer:      peer,
		Client:    peer,
		Site:      []string{"sub"},
		SubPath:   "path",
		Status:    http.StatusNotFound,
	}
}

// outcome is what running a block did.
type outcome struct {
	result stage.Result
	err    error
	trace  []string // every trace line, "line: msg"
	marks  []string // the names of the <mark>s that ran
}

func run(st *stage.State, stages []stage.Stage) outcome {
	var o outcome
	st.Trace = func(pos xmlconf.Pos, msg string) {
		o.trace = append(o.trace, fmt.Sprintf("%d: %s", pos.Line, msg))
		if name, ok := strings.CutPrefix(msg, "mark "); ok {
			o.marks = append(o.marks, name)
		}
	}
	o.result, o.err = stage.RunBlock(context.Background(), st, stages)
	return o
}
