package deflate

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

// coding is a content coding.
type coding int

const (
	identity coding = iota
	codingGzip
	codingDeflate
	notAcceptable
)

func (c coding) String() string {
	switch c {
	case codingGzip:
		return "gzip"
	case codingDeflate:
		return "deflate"
	case notAcceptable:
		return "not acceptable"
	}
	return "identity"
}

// acceptance is what an Accept-Encoding header says.
type acceptance struct {
	best            coding // the coding to use
	identityRefused bool   // identity;q=0, or *;q=0 without identity listed
}

// negotiate reads Accept-Encoding (all its lines) as Ocsigen's deflatemod
// does: the listed codings are ordered by q-value, ties going to
// identity, then gzip (x-gzip), then deflate; "*" gives only a default
// for what is not listed; no header means identity.
func negotiate(lines []string) acceptance {
	q := map[string]float64{}
	listed := map[string]bool{}
	starQ, star := 0.0, false
	for _, line := range lines {
		for _, item := range strings.Split(line, ",") {
			name, params, _ := strings.Cut(item, ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			v := 1.0
			for _, p := range strings.Split(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil && f >= 0 && f <= 1 {
						v = f
					} else {
						v = 0
					}
				}
			}
			if name == "x-gzip" {
				name = "gzip"
			}
			if name == "*" {
				starQ, star = v, true
				continue
			}
			if !listed[name] || v > q[name] {
				q[name] = v
			}
			listed[name] = true
		}
	}
	var a acceptance
	a.identityRefused = (listed["identity"] && q["identity"] == 0) || (!listed["identity"] && star && starQ == 0)
	best, bestQ := identity, 0.0
	for _, c := range []struct {
		c    coding
		name string
	}{{identity, "identity"}, {codingGzip, "gzip"}, {codingDeflate, "deflate"}} {
		if listed[c.name] && q[c.name] > bestQ {
			best, bestQ = c.c, q[c.name]
		}
	}
	if bestQ == 0 {
		best = identity
		if a.identityRefused {
			best = notAcceptable
		}
	}
	a.best = best
	return a
}

// zwriter is a gzip or zlib writer.
type zwriter interface {
	io.WriteCloser
	Flush() error
	Reset(io.Writer)
}

var pools [2][10]sync.Pool // [gzip, deflate][level]

// getWriter returns a compressor of coding c at level writing to w,
// from the pool of its kind.
func getWriter(c coding, level int, w io.Writer) zwriter {
	i := 0
	if c == codingDeflate {
		i = 1
	}
	if zw, ok := pools[i][level].Get().(zwriter); ok {
		zw.Reset(w)
		return zw
	}
	var zw zwriter
	if c == codingDeflate {
		zw, _ = zlib.NewWriterLevel(w, level)
	} else {
		zw, _ = gzip.NewWriterLevel(w, level)
	}
	return zw
}

func putWriter(c coding, level int, zw zwriter) {
	i := 0
	if c == codingDeflate {
		i = 1
	}
	zw.Reset(io.Discard)
	pools[i][level].Put(zw)
}

// compressReader compresses a body as it is read. When flush is set (a
// body of unknown length), what each read of the source gave is flushed
// out at once, so that a stream (server-sent events) keeps its pace.
type compressReader struct {
	src    io.ReadCloser
	zw     zwriter
	coding coding
	level  int
	out    bytes.Buffer
	buf    []byte
	flush  bool
	eof    bool
	err    error
}

func newCompressReader(src io.ReadCloser, c coding, level int, flush bool) *compressReader {
	r := &compressReader{src: src, coding: c, level: level, flush: flush, buf: make([]byte, 32<<10)}
	r.zw = getWriter(c, level, &r.out)
	return r
}

func (r *compressReader) Read(p []byte) (int, error) {
	for r.out.Len() == 0 {
		switch {
		case r.err != nil:
			return 0, r.err
		case r.eof:
			return 0, io.EOF
		}
		n, err := r.src.Read(r.buf)
		if n > 0 {
			r.zw.Write(r.buf[:n]) // writes to a bytes.Buffer: no error
			if r.flush {
				r.zw.Flush()
			}
		}
		switch {
		case err == io.EOF:
			r.zw.Close()
			r.eof = true
		case err != nil:
			r.err = err
		}
	}
	return r.out.Read(p)
}

func (r *compressReader) Close() error {
	if r.zw != nil {
		putWriter(r.coding, r.level, r.zw)
		r.zw = nil
	}
	return r.src.Close()
}

// encodedAnswer compresses an answer that writes itself (a static file):
// the file is served whole (no ranges) through a compressing writer;
// conditional requests are still answered (304 has no body to compress).
// Only a 200 is compressed: any other status the file's writer chooses
// (412) is sent as it is, without Content-Encoding.
type encodedAnswer struct {
	inner  stage.AnswerWriter
	coding coding
	level  int
	plain  io.Reader // Read: the compressed body, made on first use
}

var _ stage.AnswerWriter = (*encodedAnswer)(nil)

func (e *encodedAnswer) Read(p []byte) (int, error) {
	if e.plain == nil {
		e.plain = newCompressReader(io.NopCloser(e.inner), e.coding, e.level, false)
	}
	return e.plain.Read(p)
}

func (e *encodedAnswer) Close() error { return e.inner.Close() }

func (e *encodedAnswer) WriteAnswer(w http.ResponseWriter, r *http.Request, resp *wire.Response) {
	cw := &compressWriter{ResponseWriter: w, coding: e.coding, level: e.level, head: r.Method == http.MethodHead}
	if r.Header.Get("Range") != "" || r.Header.Get("If-Range") != "" {
		r2 := new(http.Request)
		*r2 = *r
		r2.Header = r.Header.Clone()
		r2.Header.Del("Range")
		r2.Header.Del("If-Range")
		r = r2
	}
	e.inner.WriteAnswer(cw, r, resp)
	cw.close()
}

// compressWriter compresses what is written through it once the status
// is known to carry a body.
type compressWriter struct {
	http.ResponseWriter
	coding coding
	level  int
	head   bool
	wrote  bool
	zw     zwriter
}

func (c *compressWriter) WriteHeader(status int) {
	if c.wrote {
		c.ResponseWriter.WriteHeader(status)
		return
	}
	c.wrote = true
	h := c.Header()
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	switch {
	case status == http.StatusNotModified:
		// Headers as a 200 would have them; no body.
	case status != http.StatusOK:
		// The file's writer answered otherwise (412, or a status a
		// filter set): the page is sent as it is.
		h.Del(HeaderContentEncoding)
	case h.Get(HeaderContentEncoding) == "" || c.head:
	default:
		c.zw = getWriter(c.coding, c.level, c.ResponseWriter)
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *compressWriter) Write(p []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	if c.zw == nil {
		return c.ResponseWriter.Write(p)
	}
	return c.zw.Write(p)
}

// Flush sends what is compressed so far.
func (c *compressWriter) Flush() {
	if c.zw != nil {
		c.zw.Flush()
	}
	http.NewResponseController(c.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (c *compressWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (c *compressWriter) close() {
	if c.zw != nil {
		c.zw.Close()
		putWriter(c.coding, c.level, c.zw)
		c.zw = nil
	}
}
