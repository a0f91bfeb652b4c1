package adversarial

import (
	"bytes"
	"strings"
)

// The backend misbehaves (RFC 9112 sections 4 to 7 from the other side):
// each case asks the backend for one of its modes (backend_test.go), then
// sends two more requests, one on the same connection and one on a new
// one, which must get their own answers: a proxy that lost the framing of
// its backend connection would hand them the bytes the backend left over.

// afterBackend runs the mode request, then the follow-ups, and returns
// the exchange of the mode request.
func afterBackend(c *ctx, method, target, fields string) *exchange {
	e := c.ex(get(method, target, fields)+follow, method, "GET")
	if len(e.Resps) > 1 && e.Resps[1].Status != 200 {
		c.fail("the request after %s on the same connection got %s", target, e.Resps[1])
	}
	e2 := c.ex(get("GET", "/next", ""), "GET")
	c.status(e2, 200)
	return e
}

// wantBadGateway is a backend answer that cannot be forwarded: the client
// gets 502 (RFC 9110 15.6.3), or, once a head was sent, a body it can
// tell is cut.
func wantBadGateway(name, rfc, target string) tcase {
	return tcase{name: name, rfc: rfc, run: func(c *ctx) {
		e := afterBackend(c, "GET", target, "")
		r := e.first()
		switch {
		case r == nil && e.Closed:
			// Closed without a head: the client cannot take it for an
			// answer (RFC 9110 15.6.3 says SHOULD 502).
		case r == nil:
			c.fail("no answer at all: %s (want 502)", e)
		case r.Status >= 500:
		case r.BodyErr != nil:
			// Aborted: the client knows the body is incomplete.
		default:
			c.fail("got %s with a body the client takes as whole: %q (want 502)", r, clip(string(r.Body)))
		}
	}}
}

// wantBody is a valid backend answer: it must be forwarded, with the
// body want ("": any) and a head that passes check.
func wantBody(name, rfc, method, target, want string, check func(c *ctx, r *resp, raw []byte)) tcase {
	return bodyCase(name, rfc, method, target, want, check, false)
}

// mayForward is a dubious backend answer: it may be refused (502, or a
// close before any head) or forwarded with the body want and a head that
// passes check.
func mayForward(name, rfc, method, target, want string, check func(c *ctx, r *resp, raw []byte)) tcase {
	return bodyCase(name, rfc, method, target, want, check, true)
}

func bodyCase(name, rfc, method, target, want string, check func(c *ctx, r *resp, raw []byte), mayRefuse bool) tcase {
	return tcase{name: name, rfc: rfc, run: func(c *ctx) {
		e := afterBackend(c, method, target, "")
		r := e.first()
		if mayRefuse && (r == nil && e.Closed || r != nil && r.Status == 502) {
			return
		}
		if r == nil || r.Status != 200 {
			c.fail("got %s, want 200", e)
			return
		}
		if r.BodyErr != nil && r.BodyErr != errCloseDelimited || want != "" && string(r.Body) != want {
			c.fail("got %s with body %q, want %q", r, clip(string(r.Body)), want)
		}
		if check != nil {
			check(c, r, headOf(e.Raw))
		}
	}}
}

// headOf is the first response head in raw (after interim responses).
func headOf(raw []byte) []byte {
	for {
		i := bytes.Index(raw, []byte("\r\n\r\n"))
		if i < 0 {
			return raw
		}
		if bytes.HasPrefix(raw, []byte("HTTP/1.1 1")) && !bytes.HasPrefix(raw, []byte("HTTP/1.1 101")) {
			raw = raw[i+4:]
			continue
		}
		return raw[:i+2]
	}
}

func noField(names ...string) func(c *ctx, r *resp, raw []byte) {
	return func(c *ctx, r *resp, raw []byte) {
		for _, n := range names {
			if v := r.Header.Values(n); len(v) > 0 {
				c.fail("the client received %s: %q", n, v)
			}
		}
	}
}

// cleanHead checks the forwarded head: CRLF line ends, no bare CR, no NUL,
// no folded line, no whitespace before a colon.
func cleanHead(c *ctx, r *resp, raw []byte) {
	for i, line := range strings.Split(strings.TrimSuffix(string(raw), "\r\n"), "\r\n") {
		switch {
		case strings.ContainsAny(line, "\r\n\x00"):
			c.fail("head line %d holds CR, LF or NUL: %q", i, clip(line))
		case i > 0 && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")):
			c.fail("head line %d is folded: %q", i, clip(line))
		case i > 0 && strings.ContainsAny(strings.SplitN(line, ":", 2)[0], " \t"):
			c.fail("head line %d has whitespace in the field name: %q", i, clip(line))
		}
	}
	if len(r.Header.Values("Injected")) > 0 {
		c.fail("a header field was injected: Injected: %q", r.Header.Values("Injected"))
	}
}

// crlfHead checks that the forwarded head has CRLF line ends only (a
// backend's bare LF may end a line: its "Injected" field is its own).
func crlfHead(c *ctx, r *resp, raw []byte) {
	for i, line := range strings.Split(strings.TrimSuffix(string(raw), "\r\n"), "\r\n") {
		if strings.ContainsAny(line, "\r\n\x00") {
			c.fail("head line %d holds CR, LF or NUL: %q", i, clip(line))
		}
	}
}

func init() {
	b502 := "RFC 9110 15.6.3: an answer that cannot be read is 502"
	r63 := "RFC 9112 6.3"
	register("backend",
		wantBody("normal", "baseline", "GET", "/b/", "", nil),
		wantBadGateway("truncated by Content-Length", "RFC 9112 8: an incomplete response is not forwarded as complete", "/b/truncate-length"),
		wantBadGateway("truncated long body", "RFC 9112 8: the client must be able to tell the body is cut", "/b/truncate-long"),
		wantBadGateway("truncated chunked body", "RFC 9112 8: no last chunk: cut, not complete", "/b/truncate-chunked"),
		mayForward("extra bytes after the body", r63+"(6): bytes after a response are not the next response", "GET", "/b/extra", "hello", nil),
		mayForward("extra bytes after a chunked body", r63+"(4)", "GET", "/b/extra-chunked", "hello", nil),
		mayForward("CL and TE (CL covers a second response)", r63+"(3): TE wins, CL removed; or 502", "GET", "/b/cl-te", "hello", noField("Content-Length")),
		mayForward("TE and CL", r63+"(3): TE wins, CL removed; or 502", "GET", "/b/te-cl", "hello", nil),
		wantBadGateway("two Content-Lengths", r63+"(5): differing lengths are an unrecoverable error", "/b/two-lengths"),
		wantBadGateway("Content-Length list differing", r63+"(5)", "/b/length-list"),
		wantBadGateway("Content-Length with plus", "RFC 9110 8.6: Content-Length = 1*DIGIT", "/b/length-plus"),
		wantBadGateway("negative Content-Length", "RFC 9110 8.6", "/b/length-negative"),
		wantBody("Content-Length with leading zeros", "RFC 9110 8.6: 1*DIGIT", "GET", "/b/length-zeros", "hello", nil),
		mayForward("TE gzip only", r63+"(4): a response whose TE does not end in chunked is read to the close", "GET", "/b/te-gzip", "not really gzip", nil),
		mayForward("TE chunked twice", "RFC 9112 7: chunked once only; or 502", "GET", "/b/te-chunked-twice", "hello", nil),
		mayForward("TE with space before colon", "RFC 9112 5.1: a proxy removes the whitespace before forwarding, or refuses", "GET", "/b/te-space-colon", "hello", cleanHead),
		wantBadGateway("chunk size overflow", "RFC 9112 7.1", "/b/chunk-overflow"),
		wantBadGateway("chunk size not hex", "RFC 9112 7.1", "/b/chunk-bad-size"),
		mayForward("chunk lines with bare LF", "RFC 9112 7.1 (a lenient reader must still frame it once)", "GET", "/b/chunk-lf", "hello", nil),
		mayForward("trailer with framing fields", "RFC 9110 6.5.1: trailer fields never frame or replace header fields", "GET", "/b/chunk-trailer", "hello", func(c *ctx, r *resp, raw []byte) {
			if v := r.Header.Get("Content-Length"); v == "99" {
				c.fail("a trailer field became the Content-Length header")
			}
		}),
		wantBadGateway("status code with letters", "RFC 9112 4: status-code = 3DIGIT", "/b/status-letters"),
		wantBadGateway("two-digit status", "RFC 9112 4: status-code = 3DIGIT", "/b/status-short"),
		wantBadGateway("four-digit status", "RFC 9112 4: status-code = 3DIGIT", "/b/status-long"),
		wantBadGateway("HTTP/2.0 status line", "RFC 9112 2.3: an HTTP/1.1 connection speaks HTTP/1.x", "/b/status-version"),
		wantBadGateway("ICY status line", "RFC 9112 4: HTTP-version first", "/b/status-icy"),
		mayForward("status line with bare LF", "RFC 9112 2.2: a recipient may take LF as a line end", "GET", "/b/status-lf", "hello", cleanHead),
		wantBadGateway("HTTP/0.9 answer", "RFC 9112 4: a status line first", "/b/http09"),
		wantBadGateway("garbage", b502, "/b/garbage"),
		wantBadGateway("close without answer", b502, "/b/close"),
		wantBadGateway("reset without answer", b502, "/b/reset"),
		tcase{name: "GET whose backend closed once", rfc: "RFC 9110 9.2.2: an idempotent request may be retried", run: func(c *ctx) {
			k := newToken()
			e := c.ex(get("GET", "/b/close-once?k="+k, ""), "GET")
			if s := e.status(); s != 200 && s != 502 {
				c.fail("got %s, want 200 (retried) or 502", e)
			}
		}},
		tcase{name: "POST whose backend closed once", rfc: "RFC 9110 9.2.2: a proxy never retries a non-idempotent request by itself", run: func(c *ctx) {
			k := newToken()
			raw, toks := c.fill(get("POST", "/b/close-once?k="+k, "Content-Length: 5\r\n") + "hello")
			e, _ := exchangeOn(c.p.addr, raw, []string{"POST"}, wait, probe)
			c.checkExchange(e, toks)
			if rs := c.reqsWith(toks[0]); len(rs) > 1 {
				c.fail("the POST reached the backend %d times: %s", len(rs), describe(rs))
			}
			if s := e.status(); s < 500 && s != 0 {
				c.fail("got %s, want 502", e)
			}
		}},
		tcase{name: "early close on a reused connection", rfc: "RFC 9112 9.3.1: a retried idempotent request, or 502; never another's answer", run: func(c *ctx) {
			for i := 0; i < 3; i++ {
				e := c.ex(get("GET", "/b/close-second", ""), "GET")
				if s := e.status(); s != 200 && s != 502 {
					c.fail("got %s", e)
				}
			}
		}},
		wantBody("100 Continue unasked", "RFC 9110 15.2: a client parses any 1xx before the final answer", "GET", "/b/continue", "", nil),
		wantBody("103 Early Hints", "RFC 8297: 103 before the final answer", "GET", "/b/early-hints", "", nil),
		wantBody("five interim answers", "RFC 9110 15.2: any number of 1xx may precede the final answer", "GET", "/b/many-interim", "", nil),
		mayForward("a thousand interim answers", "RFC 9110 15.2; a proxy may bound them (502) to resist a flood", "GET", "/b/interim-flood", "", nil),
		tcase{name: "interim answer with a body", rfc: "RFC 9110 15.2: 1xx has no content; what follows is not a body", run: func(c *ctx) {
			afterBackend(c, "GET", "/b/interim-body", "")
		}},
		wantBody("body after HEAD", "RFC 9110 9.3.2, RFC 9112 6.3(1): a HEAD answer has no body", "HEAD", "/b/head-body", "", nil),
		tcase{name: "body after 204", rfc: "RFC 9112 6.3(1): a 204 has no body", run: func(c *ctx) { afterBackend(c, "GET", "/b/204-body", "") }},
		tcase{name: "chunked 204", rfc: "RFC 9112 6.3(1): a 204 has no body, whatever its fields", run: func(c *ctx) { afterBackend(c, "GET", "/b/204-chunked", "") }},
		tcase{name: "body after 304", rfc: "RFC 9112 6.3(1): a 304 has no body", run: func(c *ctx) {
			afterBackend(c, "GET", "/b/304-body", "If-None-Match: \"x\"\r\n")
		}},
		mayForward("NUL in a field value", "RFC 9110 5.5: reject (502) or replace with SP", "GET", "/b/nul-value", "hello", cleanHead),
		mayForward("bare CR in a field value", "RFC 9110 5.5: reject (502) or replace with SP; no injected field", "GET", "/b/cr-value", "hello", cleanHead),
		mayForward("bare LF in the head", "RFC 9112 2.2: LF may end a line; the proxy sends CRLF", "GET", "/b/lf-value", "hello", crlfHead),
		mayForward("obs-fold", "RFC 9112 5.2: a proxy replaces obs-fold with SP, or answers 502", "GET", "/b/obs-fold", "hello", cleanHead),
		mayForward("field name with a space", "RFC 9112 5.1: such a line is refused or dropped", "GET", "/b/space-name", "hello", cleanHead),
		mayForward("line without a colon", "RFC 9112 5: such a line is refused or dropped", "GET", "/b/colon-less", "hello", cleanHead),
		tcase{name: "128 kB header field", rfc: "RFC 9110 5.4: a proxy may refuse a head it finds too large (502)", run: func(c *ctx) {
			afterBackend(c, "GET", "/b/big-header", "")
		}},
		tcase{name: "5000 header fields", rfc: "RFC 9110 5.4", run: func(c *ctx) { afterBackend(c, "GET", "/b/many-headers", "") }},
		mayForward("hop-by-hop fields", "RFC 9110 7.6.1: Connection and the fields it names, Keep-Alive are not forwarded", "GET", "/b/hop", "hello", noField("X-Private", "Keep-Alive")),
		wantBody("three Set-Cookie fields", "RFC 9110 5.3, RFC 6265 3: Set-Cookie lines are never combined", "GET", "/b/set-cookie", "hello", func(c *ctx, r *resp, raw []byte) {
			if v := r.Header.Values("Set-Cookie"); len(v) != 3 {
				c.fail("Set-Cookie %q, want 3 lines", v)
			}
		}),
		wantBody("HTTP/1.0 body delimited by close", "RFC 9112 6.3(8): read to the close, forwarded so the client can tell the end", "GET", "/b/close-delimited", strings.Repeat("0123456789", 1000), nil),
		wantBody("body in slow pieces", "RFC 9112 6.2", "GET", "/b/drip", strings.Repeat("0123456789", 5), nil),
		tcase{name: "8 MiB body", rfc: "RFC 9112 6.2: streamed whole", run: func(c *ctx) {
			e := c.ex(get("GET", "/b/big?size=8388608", ""), "GET")
			if r := e.first(); r == nil || r.Status != 200 || len(r.Body) != 8<<20 || !checkPattern(r.Body) {
				c.fail("got %s (%d bytes), want 8 MiB intact", e, len(e.Raw))
			}
		}},
		tcase{name: "answer before the body is read", rfc: "RFC 9110 15.5.14, RFC 9112 9.6: an early answer reaches the client", run: func(c *ctx) {
			e := c.ex(get("POST", "/b/early", "Content-Length: 524288\r\n")+strings.Repeat("e", 512<<10), "POST")
			if s := e.status(); s != 413 && s != 502 {
				c.fail("got %s, want the backend's 413 (or 502)", e)
			}
		}},
		tcase{name: "backend never answers", slow: true, rfc: "RFC 9110 15.6.5: 504 when the backend does not answer in time", run: func(c *ctx) {
			c.status(c.ex(get("GET", "/b/hang", ""), "GET"), 504, 502)
		}},
		wantBody("backend answers slowly", "within the timeout the answer is passed on", "GET", "/b/slow?ms=300", "", nil),
		tcase{name: "server-sent events", rfc: "RFC 9112 7.1: a chunked stream is passed on", run: func(c *ctx) {
			e := c.ex(get("GET", "/b/sse", ""), "GET")
			if r := e.first(); r == nil || r.Status != 200 || string(r.Body) != "data: 0\n\ndata: 1\n\ndata: 2\n\n" {
				c.fail("got %s", e)
			}
		}},
	)
}
