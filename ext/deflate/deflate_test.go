package deflate

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/ext/staticmod"
	"github.com/ocsiproxy/ocsiproxy/internal/stagetest"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

func TestNegotiate(t *testing.T) {
	tests := []struct {
		header  string
		want    coding
		refused bool
	}{
		{"", identity, false},
		{"gzip", codingGzip, false},
		{"deflate", codingDeflate, false},
		{"gzip, deflate, br", codingGzip, false},
		{"deflate, gzip", codingGzip, false},
		{"deflate;q=1, gzip;q=0.5", codingDeflate, false},
		{"x-gzip", codingGzip, false},
		{"GZIP", codingGzip, false},
		{"br", identity, false},
		{"*", identity, false},
		{"identity, gzip", identity, false},
		{"identity;q=0.5, gzip", codingGzip, false},
		{"gzip;q=0", identity, false},
		{"gzip;q=0, identity;q=0", notAcceptable, true},
		{"*;q=0", notAcceptable, true},
		{"br, *;q=0", notAcceptable, true},
		{"gzip, *;q=0", codingGzip, true},
		{"gzip, identity;q=0", codingGzip, true},
		{"gzip;q=bogus", identity, false},
		{"gzip;level=1;q=0.8, deflate;q=0.9", codingDeflate, false},
	}
	for _, tt := range tests {
		var lines []string
		if tt.header != "" {
			lines = []string{tt.header}
		}
		a := negotiate(lines)
		if a.best != tt.want || a.identityRefused != tt.refused {
			t.Errorf("Accept-Encoding %q: got %v (identity refused %v), want %v (%v)", tt.header, a.best, a.identityRefused, tt.want, tt.refused)
		}
	}
}

var text = strings.Repeat("hello, compressible world\n", 40) // 1040 bytes

// decode returns body decoded with the response's Content-Encoding.
func decode(t *testing.T, enc string, body []byte) string {
	t.Helper()
	var r io.Reader
	var err error
	switch enc {
	case "":
		return string(body)
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(body))
	case "deflate":
		r, err = zlib.NewReader(bytes.NewReader(body))
	default:
		t.Fatalf("unexpected Content-Encoding %q", enc)
	}
	if err != nil {
		t.Fatalf("%s body: %v", enc, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s body: %v", enc, err)
	}
	return string(b)
}

func TestDeflate(t *testing.T) {
	only := `<deflate compress="only"><type>text/*</type><type>application/json</type><extension>.js</extension></deflate>`
	tests := []struct {
		name    string
		xml     string
		target  string
		method  string
		accept  string
		answer  *wire.Response
		status  int    // 0: the answer's own
		enc     string // Content-Encoding wanted
		vary    bool
		headers map[string]string
	}{
		{name: "gzip", xml: only, accept: "gzip, deflate", answer: stagetest.Answer(200, text, "Content-Type: text/plain; charset=utf-8", "Content-Length: 1040"), enc: "gzip", vary: true},
		{name: "deflate is zlib", xml: only, accept: "deflate", answer: stagetest.Answer(200, text, "Content-Type: text/html"), enc: "deflate", vary: true},
		{name: "no Accept-Encoding", xml: only, answer: stagetest.Answer(200, text, "Content-Type: text/html"), vary: true},
		{name: "type not listed", xml: only, accept: "gzip", answer: stagetest.Answer(200, text, "Content-Type: image/png")},
		{name: "extension listed", xml: only, accept: "gzip", target: "/app.js", answer: stagetest.Answer(200, text, "Content-Type: application/octet-stream"), enc: "gzip", vary: true},
		{name: "allbut", xml: `<deflate compress="allbut"><type>image/*</type></deflate>`, accept: "gzip", answer: stagetest.Answer(200, text, "Content-Type: application/xml"), enc: "gzip", vary: true},
		{name: "allbut excluded", xml: `<deflate compress="allbut"><type>image/*</type></deflate>`, accept: "gzip", answer: stagetest.Answer(200, text, "Content-Type: IMAGE/svg+xml")},
		{name: "already encoded", xml: only, accept: "gzip", answer: stagetest.Answer(200, text, "Content-Type: text/plain", "Content-Encoding: br"), enc: "br"},
		{name: "tiny", xml: only, accept: "gzip", answer: stagetest.Answer(200, "short", "Content-Type: text/plain")},
		{name: "tiny but identity refused", xml: only, accept: "gzip, identity;q=0", answer: stagetest.Answer(200, "short", "Content-Type: text/plain"), enc: "gzip", vary: true},
		{name: "no Content-Type", xml: `<deflate compress="allbut"><type>image/*</type></deflate>`, accept: "gzip", answer: stagetest.Answer(200, text)},
		{name: "no-transform", xml: only, accept: "gzip", answer: stagetest.Answer(200, text, "Content-Type: text/plain", "Cache-Control: public, no-transform")},
		{name: "partial", xml: only, accept: "gzip", answer: stagetest.Answer(206, text, "Content-Type: text/plain")},
		{name: "error page compressed too", xml: only, accept: "gzip", answer: stagetest.Answer(404, text, "Content-Type: text/html"), enc: "gzip", vary: true},
		{name: "strong ETag made weak", xml: only, accept: "gzip", answer: stagetest.Answer(200, text, "Content-Type: text/plain", `ETag: "v1"`), enc: "gzip", vary: true, headers: map[string]string{"ETag": `W/"v1"`}},
		{name: "weak ETag kept", xml: only, accept: "gzip", answer: stagetest.Answer(200, text, "Content-Type: text/plain", `ETag: W/"v1"`), enc: "gzip", vary: true, headers: map[string]string{"ETag": `W/"v1"`}},
		{name: "Accept-Ranges dropped", xml: only, accept: "gzip", answer: stagetest.Answer(200, text, "Content-Type: text/plain", "Accept-Ranges: bytes"), enc: "gzip", vary: true, headers: map[string]string{"Accept-Ranges": ""}},
		{name: "Vary merged", xml: only, accept: "gzip", answer: stagetest.Answer(200, text, "Content-Type: text/plain", "Vary: Origin"), enc: "gzip", vary: true},
		{name: "HEAD", xml: only, method: "HEAD", accept: "gzip", answer: stagetest.Answer(200, "", "Content-Type: text/plain", "Content-Length: 1040"), enc: "gzip", vary: true},
		{name: "406", xml: only, accept: "identity;q=0", answer: stagetest.Answer(200, text, "Content-Type: image/png"), status: 406},
		{name: "nothing answered", xml: only, accept: "gzip", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stagetest.Compile(t, Compile, tt.xml)
			method, target := "GET", "/x"
			if tt.method != "" {
				method = tt.method
			}
			if tt.target != "" {
				target = tt.target
			}
			if tt.answer != nil && method == "HEAD" {
				tt.answer.ContentLength = int64(len(text))
			}
			var hdrs []string
			if tt.accept != "" {
				hdrs = append(hdrs, "Accept-Encoding: "+tt.accept)
			}
			st := stagetest.State(t, method, target, "h", "", hdrs...)
			if tt.answer != nil {
				st.SetAnswer(tt.answer, st.AnswerPos)
			}
			if _, err := stagetest.Run(t, st, s); err != nil {
				t.Fatal(err)
			}
			w := stagetest.Write(st)
			want := tt.status
			if want == 0 {
				want = tt.answer.StatusCode
			}
			if w.Code != want {
				t.Fatalf("status %d, want %d", w.Code, want)
			}
			if st.Answer == nil {
				return
			}
			h := w.Header()
			if got := h.Get("Content-Encoding"); got != tt.enc {
				t.Fatalf("Content-Encoding %q, want %q", got, tt.enc)
			}
			if got := strings.Contains(strings.Join(h.Values("Vary"), ","), "Accept-Encoding"); got != tt.vary {
				t.Errorf("Vary %q: Accept-Encoding listed %v, want %v", h.Values("Vary"), got, tt.vary)
			}
			if tt.enc == "gzip" || tt.enc == "deflate" {
				if h.Get("Content-Length") != "" || st.Answer.ContentLength != -1 {
					t.Errorf("Content-Length kept on a compressed answer")
				}
				if method != "HEAD" {
					if got := decode(t, tt.enc, w.Body.Bytes()); got != text && got != "short" {
						t.Errorf("decoded body %q", got)
					}
				}
			}
			for k, v := range tt.headers {
				if got := h.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestStreaming checks that a body of unknown length is flushed piece by
// piece: what the source gave can be read and decoded before the source
// ends.
func TestStreaming(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	cr := newCompressReader(pr, codingGzip, 6, true)
	defer cr.Close()
	go pw.Write([]byte("data: one\n\n"))
	var got bytes.Buffer
	buf := make([]byte, 4096)
	zr := &lazyGzip{src: &got}
	for !strings.Contains(zr.text(), "data: one\n\n") {
		n, err := cr.Read(buf)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		got.Write(buf[:n])
	}
}

// lazyGzip decodes what a partial gzip stream holds so far.
type lazyGzip struct{ src *bytes.Buffer }

func (l *lazyGzip) text() string {
	if l.src.Len() < 10 {
		return ""
	}
	zr, err := gzip.NewReader(bytes.NewReader(l.src.Bytes()))
	if err != nil {
		return ""
	}
	b, _ := io.ReadAll(zr) // io.ErrUnexpectedEOF: the stream is not over
	return string(b)
}

// TestStaticFile compresses a staticmod answer, which writes itself.
func TestStaticFile(t *testing.T) {
	dir := t.TempDir()
	mod := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	name := filepath.Join(dir, "page.html")
	os.WriteFile(name, []byte(text), 0o644)
	os.Chtimes(name, mod, mod)
	static := stagetest.Compile(t, staticmod.Compile, `<static dir="`+dir+`"/>`)
	d := stagetest.Compile(t, Compile, `<deflate compress="only"><type>text/html</type></deflate>`)
	tests := []struct {
		name    string
		headers []string
		status  int
		enc     string
	}{
		{"gzip", []string{"Accept-Encoding: gzip"}, 200, "gzip"},
		{"range ignored when compressed", []string{"Accept-Encoding: gzip", "Range: bytes=0-9"}, 200, "gzip"},
		{"range kept without compression", []string{"Range: bytes=0-9"}, 206, ""},
		{"not modified", []string{"Accept-Encoding: gzip", "If-Modified-Since: " + mod.Format(http.TimeFormat)}, 304, ""},
		{"precondition failed", []string{"Accept-Encoding: gzip", "If-Unmodified-Since: " + mod.Add(-time.Hour).Format(http.TimeFormat)}, 412, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := stagetest.State(t, "GET", "/page.html", "h", "", tt.headers...)
			st.Env = &stage.Env{}
			if _, err := stagetest.Run(t, st, static, d); err != nil {
				t.Fatal(err)
			}
			w := stagetest.Write(st)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if got := w.Header().Get("Content-Encoding"); got != tt.enc {
				t.Fatalf("Content-Encoding %q, want %q", got, tt.enc)
			}
			if tt.status == 200 {
				if got := decode(t, tt.enc, w.Body.Bytes()); got != text {
					t.Errorf("decoded body %d bytes, want %d", len(got), len(text))
				}
				if w.Header().Get("Content-Length") != "" || w.Header().Get("Accept-Ranges") != "" {
					t.Errorf("compressed static answer keeps Content-Length or Accept-Ranges: %v", w.Header())
				}
			}
			if tt.status == 304 && w.Body.Len() != 0 {
				t.Errorf("304 with a body")
			}
		})
	}
	// Reading the compressed static body (rather than letting it write
	// itself) gives the same bytes once decoded.
	st := stagetest.State(t, "GET", "/page.html", "h", "", "Accept-Encoding: deflate")
	stagetest.Run(t, st, static, d)
	b, err := io.ReadAll(st.Answer.Body)
	st.Answer.Body.Close()
	if err != nil || decode(t, "deflate", b) != text {
		t.Errorf("read static compressed body: %v", err)
	}
}

func TestLevelAndConfigErrors(t *testing.T) {
	cfg, els := stagetest.Parse(t, `<extension findlib-package="ocsigenserver.ext.deflatemod"><compress level="9"/><buffer size="4096"/></extension>`,
		`<deflate compress="only"><type>text/*</type></deflate>`)
	c := &stagetest.Compiler{Cfg: cfg}
	Configure(c, &cfg.Extensions[0])
	d := Compile(c, els[0]).(*Deflate)
	if c.Errs.Len() > 0 || d.level != 9 {
		t.Fatalf("level %d, errors %v", d.level, c.Errs.Err())
	}
	for _, tt := range []struct{ ext, want string }{
		{`<compress level="10"/>`, `level="10"`},
		{`<compress level="fast"/>`, `level="fast"`},
		{`<buffer size="-1"/>`, `size="-1"`},
		{`<gzip/>`, `unknown deflatemod option`},
	} {
		cfg, _ := stagetest.Parse(t, `<extension findlib-package="ocsigenserver.ext.deflatemod">`+tt.ext+`</extension>`, "")
		c := &stagetest.Compiler{Cfg: cfg}
		Configure(c, &cfg.Extensions[0])
		if err := c.Errs.Err(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.ext, err, tt.want)
		}
	}
	for _, tt := range []struct{ xml, want string }{
		{`<deflate><type>text/*</type></deflate>`, `missing attribute "compress"`},
		{`<deflate compress="some"><type>text/*</type></deflate>`, `compress="some"`},
		{`<deflate compress="only"/>`, `at least one`},
		{`<deflate compress="only"><type>text</type></deflate>`, `want type/subtype`},
		{`<deflate compress="only"><size>10</size></deflate>`, `unknown element <size>`},
	} {
		err := stagetest.CompileErr(t, Compile, tt.xml)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.xml, err, tt.want)
		}
	}
}
