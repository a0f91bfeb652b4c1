package http1

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

// h1Response is the http.ResponseWriter of one request.
type h1Response struct {
	c           *h1Conn
	req         *wire.Inbound
	hdr         http.Header
	wroteHeader bool
	headSent    bool
	status      int
	hijacked    bool
	chunked     bool
	noBody      bool // HEAD, 1xx, 204, 304: body writes are dropped
	closeAfter  bool
	failed      bool // a write failed: the connection is done
	finished    bool // finish ran; keep is its result
	keep        bool
	body        *h1Body // the request's body, nil when it has none
	cl          int64   // the declared Content-Length, -1 when none
	written     int64
	// trailersOK is whether the client accepts trailer fields (HTTP/1.1
	// with "TE: trailers"), noted when the request was read.
	trailersOK bool
	// trailer holds the names the Trailer header announced, when the
	// answer is chunked and trailersOK: their values in the header map
	// at the end of the answer are sent after the last chunk.
	trailer []string

	// fields are the answer's fields the handler gave with SetFields,
	// written in their order with those of hdr whose names they do not
	// have; nil: the fields of hdr alone. own holds the fields of a head
	// made from hdr, in ownBuf.
	fields *wire.Header
	own    wire.Header
	ownBuf [16]wire.Field

	// cmu orders the interim 100 (Continue), sent from whichever
	// goroutine reads the body first, with the final head.
	cmu          sync.Mutex
	canContinue  bool
	sentContinue bool
}

func (w *h1Response) Header() http.Header { return w.hdr }

// SetFields gives the answer's header fields as a list, written in its
// order instead of being copied into Header()'s map: for each name, the
// list's fields replace what the map holds (as copying them into it
// would); the map's other names are written too. The writer may edit the
// list (it drops the fields its framing decides). It has no effect once
// WriteHeader was called.
func (w *h1Response) SetFields(h *wire.Header) {
	if !w.wroteHeader {
		w.fields = h
	}
}

// EndFields ends the writer's use of the list SetFields gave, so that its
// memory may be reused: the head is written into the connection's buffer
// now if it was not yet (an answer without body bytes), as it would be
// when the handler returns. It reports false, and keeps the list, when
// the status is not written yet.
func (w *h1Response) EndFields() bool {
	if w.fields == nil || w.hijacked {
		return true
	}
	if !w.wroteHeader {
		return false
	}
	w.emitHead()
	w.fields = nil
	return true
}

// requestValues appends the values of the request's fields named name, a
// name in canonical form, to dst and returns the result.
func (w *h1Response) requestValues(dst []string, name string) []string {
	return w.req.Fields().AppendValues(dst, name)
}

// headFields returns the fields of the head to write: those given by
// SetFields with the map's whose names they lack, or the map's alone, in
// the order of their names.
func (w *h1Response) headFields() *wire.Header {
	h := w.fields
	if h == nil {
		w.own = wire.AppendHTTP(wire.MakeHeader(w.ownBuf[:]), w.hdr)
		return &w.own
	}
	for k, vv := range w.hdr {
		if !h.Has(k) {
			for _, v := range vv {
				h.AddCanonical(k, v)
			}
		}
	}
	return h
}

// writeContinue sends 100 (Continue) if the client asked for it and no
// final answer has started.
func (w *h1Response) writeContinue() {
	if !w.canContinue {
		return
	}
	w.cmu.Lock()
	defer w.cmu.Unlock()
	if w.sentContinue || w.wroteHeader {
		return
	}
	w.sentContinue = true
	w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	w.c.bw.Flush()
}

// WriteHeader sets the status of the answer (an interim 1xx is sent at
// once); the head goes out with the first body byte (emitHead).
func (w *h1Response) WriteHeader(code int) {
	if w.hijacked {
		w.c.s.logf("http: response.WriteHeader on hijacked connection")
		return
	}
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.canContinue {
		w.cmu.Lock()
		defer w.cmu.Unlock()
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		bw := w.c.bw
		writeStatusLine(bw, code)
		writeFields(bw, w.headFields(), nil)
		bw.WriteString("\r\n")
		w.failed = bw.Flush() != nil
		return
	}
	w.wroteHeader = true
	w.status = code
}

// emitHead writes the head of the answer, once: the framing is chosen
// here, from the handler's Content-Length, else chunked for HTTP/1.1,
// else the end of the connection. The head waits for the first body
// byte (or the end of the answer), so that an answer whose body cannot
// even start can still be replaced (ResetResponse).
//
// Trailers follow net/http's conventions: names announced by a Trailer
// header before the head, or fields named with [http.TrailerPrefix] set
// at any time; both are sent after the last chunk (finish). They are
// sent only in a chunked answer to a client that accepts them
// (trailersOK): a Content-Length set by the handler wins, and the
// trailers, and the Trailer header, are then dropped. An announced field
// is never written in the head: as the head waits for the first body
// byte, a trailer set after WriteHeader would otherwise go out in it.
func (w *h1Response) emitHead() {
	if w.headSent {
		return
	}
	if w.canContinue {
		w.cmu.Lock()
		defer w.cmu.Unlock()
	}
	w.headSent = true
	code := w.status
	bw := w.c.bw
	req := w.req
	h := w.headFields()
	switch {
	case code == http.StatusNotModified:
		h.Del("Content-Type")
		h.Del("Content-Length")
		h.Del("Transfer-Encoding")
		w.noBody = true
	case code < 200 || code == http.StatusNoContent:
		h.Del("Content-Length")
		h.Del("Transfer-Encoding")
		w.noBody = true
	case req.Method == http.MethodHead:
		w.noBody = true
	}
	// The fields looked at are found in one pass, their values gathered
	// in arrays of this frame.
	var clBuf, connBuf, trBuf, valBuf [2]string
	cls, conns, trs, hasDate := clBuf[:0], connBuf[:0], trBuf[:0], false
	for _, f := range h.Fields() {
		switch len(f.Name) { // the names compared are of four lengths
		case len("Content-Length"):
			if wire.EqualName(f.Name, "Content-Length") {
				cls = append(cls, f.Value)
			}
		case len("Connection"):
			if wire.EqualName(f.Name, "Connection") {
				conns = append(conns, f.Value)
			}
		case len("Trailer"):
			if wire.EqualName(f.Name, "Trailer") {
				trs = append(trs, f.Value)
			}
		case len("Date"):
			hasDate = hasDate || wire.EqualName(f.Name, "Date")
		}
	}
	if v := cls; len(v) == 1 {
		if n, ok := httpsyntax.ParseContentLength(v[0]); ok {
			w.cl = n
		} else {
			h.Del("Content-Length")
		}
	} else if len(v) > 1 {
		h.Del("Content-Length")
	}
	w.closeAfter = w.closeAfter || req.Close || w.c.s.closing.Load() || httpsyntax.HasToken(conns, "close")
	http10 := !req.ProtoAtLeast(1, 1)
	keepAlive10 := false
	if http10 {
		if !w.closeAfter && (w.cl >= 0 || w.noBody) && httpsyntax.HasToken(w.requestValues(valBuf[:0], "Connection"), "keep-alive") {
			keepAlive10 = true
		} else {
			w.closeAfter = true
		}
	}
	if w.cl < 0 && !w.noBody {
		if http10 {
			w.closeAfter = true // the end of the connection ends the body
		} else {
			w.chunked = true
		}
	}
	var trailer []string // the announced trailers, never head fields
	if tr := trs; len(tr) > 0 {
		trailer = trailerNames(tr)
		if w.chunked && w.trailersOK {
			w.trailer = trailer
		} else {
			h.Del("Trailer") // nothing will follow the body
		}
	}
	writeStatusLine(bw, code)
	writeFields(bw, h, trailer)
	if !hasDate {
		bw.WriteString("Date: ")
		bw.WriteString(httpDate(w.c.s.dateNow()))
		bw.WriteString("\r\n")
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case w.closeAfter:
		bw.WriteString("Connection: close\r\n")
	case keepAlive10:
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
}

// writeFields writes the header fields of h but the ones the server
// itself decides (Connection, Transfer-Encoding, Keep-Alive) and the
// trailers: those set with [http.TrailerPrefix] and the names in trailer.
// A line break in a value becomes a space, as net/http does.
func writeFields(bw *sendBuf, h *wire.Header, trailer []string) {
	for _, f := range h.Fields() {
		switch k := f.Name; {
		case wire.EqualName(k, "Connection"), wire.EqualName(k, "Transfer-Encoding"), wire.EqualName(k, "Keep-Alive"):
			continue
		case strings.HasPrefix(k, http.TrailerPrefix), trailer != nil && slices.Contains(trailer, k):
			continue
		}
		// One append into the buffer's free space instead of four calls
		// (a field larger than that is appended to a new slice, which
		// Write copies).
		b := bw.AvailableBuffer()
		b = append(b, f.Name...)
		b = append(b, ": "...)
		b = httpsyntax.AppendFieldValue(b, f.Value)
		b = append(b, "\r\n"...)
		bw.Write(b)
	}
}

// statusLines holds "HTTP/1.1 NNN Text\r\n" for the known statuses.
var statusLines = func() []string {
	lines := make([]string, 600)
	for code := range lines {
		if text := http.StatusText(code); text != "" {
			lines[code] = fmt.Sprintf("HTTP/1.1 %d %s\r\n", code, text)
		}
	}
	return lines
}()

func writeStatusLine(bw *sendBuf, code int) {
	if code < len(statusLines) && statusLines[code] != "" {
		bw.WriteString(statusLines[code])
		return
	}
	fmt.Fprintf(bw, "HTTP/1.1 %03d status code %d\r\n", code, code)
}

// httpDate returns now as an HTTP date, formatted once per second. A now
// a second behind the date last formatted (a coarse clock's tick read
// just before a second began, after a fresh read in the new second) gives
// that date: it is the more recent.
func httpDate(now time.Time) string {
	sec := now.Unix()
	if d := currentDate.Load(); d != nil && (d.sec == sec || d.sec == sec+1) {
		return d.text
	}
	d := &cachedDate{sec: sec, text: now.UTC().Format(http.TimeFormat)}
	currentDate.Store(d)
	return d.text
}

type cachedDate struct {
	sec  int64
	text string
}

var currentDate atomic.Pointer[cachedDate]

func (w *h1Response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.hijacked {
		w.emitHead()
	}
	switch {
	case w.hijacked:
		return 0, http.ErrHijacked
	case w.noBody:
		if w.req.Method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	case len(p) == 0:
		return 0, nil
	}
	var tooLong bool
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		p, tooLong = p[:w.cl-w.written], true
	}
	bw := w.c.bw
	if w.chunked {
		writeChunkSize(bw, len(p))
	}
	n, err := bw.Write(p)
	if w.chunked {
		bw.WriteString("\r\n")
	}
	w.written += int64(n)
	if err != nil {
		w.failed = true
		return n, err
	}
	if tooLong {
		return n, http.ErrContentLength
	}
	return n, nil
}

func writeChunkSize(bw *sendBuf, n int) {
	var buf [20]byte
	i := len(buf)
	buf[i-1], buf[i-2] = '\n', '\r'
	i -= 2
	for {
		i--
		buf[i] = "0123456789abcdef"[n&15]
		n >>= 4
		if n == 0 {
			break
		}
	}
	bw.Write(buf[i:])
}

// FlushError sends what was written so far to the client.
func (w *h1Response) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.emitHead()
	err := w.c.bw.Flush()
	if err != nil {
		w.failed = true
	}
	return err
}

// Flush implements http.Flusher.
func (w *h1Response) Flush() { w.FlushError() }

// SetReadDeadline sets the connection's read deadline (the handler bounds
// each read of a request body with it).
func (w *h1Response) SetReadDeadline(t time.Time) error {
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.rdl = t
	return c.nc.SetReadDeadline(t)
}

// SetWriteDeadline sets the connection's write deadline.
func (w *h1Response) SetWriteDeadline(t time.Time) error { return w.c.nc.SetWriteDeadline(t) }

// Hijack hands the connection to the handler (a protocol switch). The
// server forgets it: shutdown neither waits for nor closes it.
func (w *h1Response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHeader {
		return nil, nil, errors.New("server: hijack after the answer's head")
	}
	c := w.c
	// What is buffered (answers to pipelined requests before this one)
	// goes out first; the handler writes through a bufio.Writer of its own.
	if err := c.bw.Flush(); err != nil {
		return nil, nil, err
	}
	c.stopWatch()
	w.hijacked, c.hijacked = true, true
	c.out.deadline = time.Time{}
	c.nc.SetWriteDeadline(time.Time{})
	c.state.Store(stateClosed)
	c.s.forget(c)
	return c.nc, bufio.NewReadWriter(c.br, bufio.NewWriter(c.nc)), nil
}

// ResetResponse drops the answer started so far, if none of it has been
// sent (its head waits for the first body byte), so that the handler can
// answer otherwise: a backend whose body fails before its first byte gets
// the client a 502 rather than a cut connection.
func (w *h1Response) ResetResponse() bool {
	if w.headSent || w.hijacked {
		return false
	}
	clear(w.hdr)
	w.wroteHeader, w.status, w.fields = false, 0, nil
	return true
}

// finish ends the answer and reports whether the connection can carry
// another request. Later calls report the same.
func (w *h1Response) finish() bool {
	if w.finished {
		return w.keep
	}
	w.finished = true
	if !w.wroteHeader {
		if _, ok := w.hdr["Content-Length"]; !ok {
			w.hdr["Content-Length"] = zeroLength
		}
		w.WriteHeader(http.StatusOK)
	}
	w.emitHead()
	if w.chunked && !w.failed {
		bw := w.c.bw
		bw.WriteString("0\r\n")
		if w.trailersOK {
			w.writeTrailers(bw)
		}
		bw.WriteString("\r\n")
	}
	w.keep = !w.closeAfter && !w.failed && (w.cl < 0 || w.noBody || w.written == w.cl)
	return w.keep
}

// EndAnswer ends the answer, as the server does once the handler has
// returned, and sends it at once: the client has it before the handler's
// last work (the access log line, the metrics) rather than after. When
// the bytes of a pipelined request are already here, the answer waits to
// go out with the next one's, as it would have. The handler writes
// nothing after EndAnswer. A failed write is the server's to see, at its
// own flush. An answer given before the request's body was read to its
// end (an early answer: the backend's body writer may still be reading
// it) is left to the server, which sends it once the handler has
// returned and the body is closed: until then the connection's reader is
// the body's.
func (w *h1Response) EndAnswer() {
	if w.hijacked || w.finished || !w.body.over() {
		return
	}
	c := w.c
	// The watch reads the connection while the handler runs: once it has
	// stopped, the buffer tells whether a pipelined request is here. The
	// request needs no watch now that its answer is whole.
	c.stopWatch()
	if w.finish() && c.br != nil && c.br.Buffered() > 0 {
		return
	}
	c.bw.Flush()
}

// writeTrailers writes the trailer section of a chunked answer: the
// values of the announced names, and the fields set with
// [http.TrailerPrefix]. Names that are not tokens and fields that may not
// be trailers ([httpsyntax.TrailerAllowed]) are left out.
func (w *h1Response) writeTrailers(bw *sendBuf) {
	for _, k := range w.trailer {
		writeTrailer(bw, k, w.hdr[k])
	}
	for k, vv := range w.hdr {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			writeTrailer(bw, name, vv)
		}
	}
}

func writeTrailer(bw *sendBuf, name string, vv []string) {
	if len(vv) == 0 || !httpsyntax.IsToken(name) || !httpsyntax.TrailerAllowed(http.CanonicalHeaderKey(name)) {
		return
	}
	for _, v := range vv {
		b := bw.AvailableBuffer()
		b = append(b, name...)
		b = append(b, ": "...)
		b = httpsyntax.AppendFieldValue(b, v)
		b = append(b, "\r\n"...)
		bw.Write(b)
	}
}

// trailerNames returns the canonical names a Trailer header lists, once
// each.
func trailerNames(lines []string) []string {
	var names []string
	for _, line := range lines {
		for name := range strings.SplitSeq(line, ",") {
			if name = httpsyntax.TrimOWS(name); name != "" {
				if k := http.CanonicalHeaderKey(name); !slices.Contains(names, k) {
					names = append(names, k)
				}
			}
		}
	}
	return names
}

var zeroLength = []string{"0"}
