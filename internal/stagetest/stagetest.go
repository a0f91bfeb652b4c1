// Package stagetest helps test site instructions alone: a compiler that
// reads elements from XML, and request states built as the server builds
// them.
package stagetest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/urlpath"
	"github.com/ocsiproxy/ocsiproxy/wire"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Compiler is a stage.Compiler (and stage.ConfigSource) for tests.
type Compiler struct {
	Errs xmlconf.ErrorList
	Cfg  *xmlconf.Config
}

func (c *Compiler) Errors() *xmlconf.ErrorList                   { return &c.Errs }
func (c *Compiler) MatchTimeout() time.Duration                  { return time.Second }
func (c *Compiler) Config() *xmlconf.Config                      { return c.Cfg }
func (c *Compiler) Block(elems []*xmlconf.Element) []stage.Stage { return nil }

// Parse reads a whole configuration whose <server> holds serverXML (the
// <extension> lines and <server> options) and one <host> with hostXML;
// it returns the configuration and the host's elements.
func Parse(t testing.TB, serverXML, hostXML string) (*xmlconf.Config, []*xmlconf.Element) {
	t.Helper()
	src := "<ocsigen><server>\n" + serverXML + "\n<host>\n" + hostXML + "\n</host></server></ocsigen>\n"
	cfg, err := xmlconf.Parse("test.conf", []byte(src))
	if err != nil {
		t.Fatalf("config:\n%s\nerror: %v", src, err)
	}
	return cfg, cfg.Hosts[0].Body
}

// Element parses one element (XML text) and returns it.
func Element(t testing.TB, xml string) *xmlconf.Element {
	t.Helper()
	_, els := Parse(t, "", xml)
	if len(els) != 1 {
		t.Fatalf("want one element in %q, got %d", xml, len(els))
	}
	return els[0]
}

// Compile compiles xml with compile and fails the test on a problem.
func Compile(t testing.TB, compile func(stage.Compiler, *xmlconf.Element) stage.Stage, xml string) stage.Stage {
	t.Helper()
	c := &Compiler{}
	s := compile(c, Element(t, xml))
	if c.Errs.Len() > 0 || s == nil {
		t.Fatalf("%s: %v", xml, c.Errs.Err())
	}
	return s
}

// CompileErr compiles xml and returns the problems reported.
func CompileErr(t testing.TB, compile func(stage.Compiler, *xmlconf.Element) stage.Stage, xml string) error {
	t.Helper()
	c := &Compiler{}
	s := compile(c, Element(t, xml))
	if err := c.Errs.Err(); err != nil {
		if s != nil {
			t.Errorf("%s: a stage was returned with problems %v", xml, err)
		}
		return err
	}
	return nil
}

// State returns the state of a request for target ("/path?query") with
// Host host ("" for none) and "Name: value" header lines, in the
// innermost site site ("" for the host's root, else "a/b").
func State(t testing.TB, method, target, host, site string, headers ...string) *stage.State {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r.Host = host
	r.RequestURI = target
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		r.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	st := &stage.State{
		In:     wire.FromHTTPRequest(r),
		Env:    &stage.Env{},
		Method: method,
		Proto:  r.Proto,
		Host:   host,
		Status: http.StatusNotFound,
	}
	st.HostName = strings.ToLower(host)
	if i := strings.LastIndexByte(st.HostName, ':'); i >= 0 && !strings.HasSuffix(st.HostName, "]") {
		st.HostName = st.HostName[:i]
	}
	path := target
	if i := strings.IndexByte(target, '?'); i >= 0 {
		path, st.RawQuery, st.HasQuery = target[:i], target[i+1:], true
	}
	p, err := urlpath.Normalize(path)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	st.Path = p
	st.SubPath = strings.TrimPrefix(p, "/")
	if site != "" {
		st.Site = strings.Split(site, "/")
		sub, ok := stage.SubPathOf(p, st.Site)
		if !ok {
			t.Fatalf("%s is not in site %s", p, site)
		}
		st.SubPath = sub
	}
	st.LocalPort = 80
	return st
}

// Run runs stages on st in order and returns the result.
func Run(t testing.TB, st *stage.State, stages ...stage.Stage) (stage.Result, error) {
	t.Helper()
	return stage.RunBlock(context.Background(), st, stages)
}

// Answer returns a generated answer with the given status, headers
// ("Name: value") and body.
func Answer(status int, body string, headers ...string) *wire.Response {
	resp := &wire.Response{
		StatusCode: status, ProtoMinor: 1,
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
	}
	for _, l := range headers {
		name, value, _ := strings.Cut(l, ":")
		resp.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return resp
}

// Write writes st's answer to a recorder as the server would (headers
// copied, an AnswerWriter left to write itself) and returns it.
func Write(st *stage.State) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	resp := st.Answer
	if resp == nil {
		w.WriteHeader(st.Status)
		return w
	}
	defer resp.Body.Close()
	resp.Header.CopyTo(w.Header())
	if aw, ok := resp.Body.(stage.AnswerWriter); ok {
		aw.WriteAnswer(w, st.Request(), resp)
		return w
	}
	w.WriteHeader(resp.StatusCode)
	if st.In.Method != http.MethodHead {
		io.Copy(w, resp.Body)
	}
	return w
}
