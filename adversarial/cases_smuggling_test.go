package adversarial

import (
	"fmt"
	"strings"
)

// Request smuggling: every framing a front end and a back end could read
// differently (RFC 9112 sections 6 and 7). Each request carries the
// smuggled request where a request may not start; the check common to
// every case is that it never reaches the backend. A case passes when the
// proxy refuses the request, or handles it as exactly one request with
// one framing, sent to the backend re-framed, and (for the framings RFC
// 9112 section 6.3 calls faulty) closes the connection after answering.

// follow is a legitimate request sent after the hostile one on the same
// connection: a proxy that goes on reading the connection must answer it
// as itself.
const follow = "GET /follow HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n\r\n"

// ambiguous is a case where the request must be refused, or processed by
// one framing with the connection closed after the answer (RFC 9112
// section 6.3 items 3 and 4, 6.1). The follow-up request must not be
// answered by a proxy that answered the first.
func ambiguous(name, rfc, head, body string) tcase {
	return tcase{name: name, rfc: rfc, run: func(c *ctx) {
		e := c.ex(head+body+smuggled+follow, "POST", "GET")
		switch s := e.status(); {
		case s == 0 || s >= 400:
			if len(e.Resps) > 1 && e.Resps[1].Header.Get("X-Echo-Token") != "" {
				c.fail("after refusing, the proxy went on reading the connection: %s", e)
			}
		default:
			if len(e.Resps) > 1 || len(e.Extra) > 0 {
				c.fail("answered %s, then kept the connection for more: %s (the connection must close)", e.first(), e)
			}
		}
		c.backendAtMost(1)
	}}
}

// afterPOST is ambiguous's case sent after a whole POST and "\r\r\n\n":
// after a POST, servers pass over up to four CR or LF before the next
// request line (RFC 9112 section 2.2, net/http); a framing check that
// reads them as a request of their own gives the hostile request their
// verdict. The POST is answered as itself; then as in ambiguous.
func afterPOST(name, rfc, head, body string) tcase {
	return tcase{name: name, rfc: rfc, run: func(c *ctx) {
		first := "POST /first HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\nContent-Length: 5\r\n\r\nhello\r\r\n\n"
		e := c.ex(first+head+body+smuggled+follow, "POST", "POST", "GET")
		second := 0 // the hostile request's answer; 0: none
		if len(e.Resps) > 1 {
			second = e.Resps[1].Status
		}
		switch {
		case second == 0 || second >= 400:
			if len(e.Resps) > 2 && e.Resps[2].Header.Get("X-Echo-Token") != "" {
				c.fail("after refusing, the proxy went on reading the connection: %s", e)
			}
		default:
			if len(e.Resps) > 2 || len(e.Extra) > 0 {
				c.fail("answered %s, then kept the connection for more: %s (the connection must close)", e.Resps[1], e)
			}
		}
		c.backendAtMost(2)
	}}
}

// refuse is a case whose request must be refused (4xx/5xx or close), and
// must not reach the backend.
func refuse(name, rfc, raw string, method string) tcase {
	return tcase{name: name, rfc: rfc, run: func(c *ctx) {
		e := c.ex(raw, method)
		c.refused(e)
		c.backendAtMost(0)
	}}
}

// refuseBody is a case whose body is malformed: the request must be
// refused or the connection closed, and the backend must not receive it
// as a complete request (a proxy that streams bodies may have sent the
// head before it met the error; it must then cut the backend's request).
func refuseBody(name, rfc, raw string) tcase {
	return tcase{name: name, rfc: rfc, run: func(c *ctx) {
		raw, toks := c.fill(raw)
		e, err := exchangeOn(c.p.addr, raw, []string{"POST"}, wait, probe)
		if err != nil {
			c.fail("%v", err)
			return
		}
		c.checkExchange(e, toks)
		c.refused(e)
		for _, r := range c.reqsWith(toks[0]) {
			if r.Complete {
				c.fail("the backend received the malformed body as a complete request: %s", describe([]*breq{r}))
			}
		}
		c.backendAtMost(1)
	}}
}

// oneRequest is a case whose bytes hold exactly one request (with a body
// that merely looks like a request), which may be refused, or forwarded
// whole; the follow-up must then be answered as itself.
func oneRequest(name, rfc, raw, method string, wantBody string) tcase {
	return tcase{name: name, rfc: rfc, run: func(c *ctx) {
		raw, toks := c.fill(raw + follow)
		e, err := exchangeOn(c.p.addr, raw, []string{method, "GET"}, wait, probe)
		if err != nil {
			c.fail("%v", err)
			return
		}
		c.checkExchange(e, toks)
		if s := e.status(); s != 0 && s < 400 {
			rs := c.reqsWith(toks[0])
			if len(rs) != 1 || !rs[0].Complete || (wantBody != "" && string(rs[0].Body) != wantBody) {
				c.fail("answered %s but the backend got %s, want one complete request with body %q", e.first(), describe(rs), wantBody)
			}
		}
		c.backendAtMost(2)
	}}
}

func hx(n int) string { return fmt.Sprintf("%x", n) }

func init() {
	te := func(v string) string { return "Transfer-Encoding: " + v + "\r\n" }
	post := func(fields string) string {
		return "POST /a HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n" + fields + "\r\n"
	}
	// The smuggled request in a chunked body, and by Content-Length.
	chunk0 := "0\r\n\r\n"
	clAll := fmt.Sprintf("Content-Length: %d\r\n", len(chunk0)+len(smuggled))
	r6 := "RFC 9112 6.3(3): CL with TE is an error or TE wins, and the connection closes"
	register("smuggling",
		ambiguous("CL.TE", r6, post(clAll+te("chunked")), chunk0),
		ambiguous("TE.CL", r6, post(te("chunked")+clAll), chunk0),
		afterPOST("CL.TE after a POST and CR LF", "RFC 9112 2.2: CR and LF passed over after a POST; then 6.3(3)", post(clAll+te("chunked")), chunk0),
		ambiguous("CL.TE short CL", r6, post("Content-Length: 4\r\n"+te("chunked")), chunk0),
		ambiguous("TE value with leading OWS", r6, post(clAll+"Transfer-Encoding:   chunked\r\n"), chunk0),
		ambiguous("TE value with tab", r6, post(clAll+"Transfer-Encoding:\tchunked\r\n"), chunk0),
		ambiguous("TE upper case", "RFC 9112 6.1: coding names are case-insensitive; then 6.3(3)", post(clAll+te("CHUNKED")), chunk0),
		ambiguous("TE name mixed case", "RFC 9110 5.1: field names are case-insensitive; then 6.3(3)", post(clAll+"tRANSFER-eNCODING: chunked\r\n"), chunk0),
		ambiguous("TE in two lines", "RFC 9112 6.3(4): chunked not final is 400, close", post(clAll+te("chunked")+te("identity")), chunk0),
		ambiguous("TE chunked, identity", "RFC 9112 6.3(4): chunked must be the final coding", post(clAll+te("chunked, identity")), chunk0),
		ambiguous("TE identity, chunked", "RFC 9112 6.1, 6.3(3): identity is no coding (501) or TE wins", post(clAll+te("identity, chunked")), chunk0),
		ambiguous("TE xchunked", "RFC 9112 6.1: unknown coding: 501; 6.3(3)", post(clAll+te("xchunked")), chunk0),
		ambiguous("TE quoted", "RFC 9112 6.1: \"chunked\" is not a coding name", post(clAll+te(`"chunked"`)), chunk0),
		ambiguous("TE with parameter", "RFC 9112 7: chunked takes no parameters", post(clAll+te("chunked;q=1")), chunk0),
		ambiguous("TE chunked twice", "RFC 9112 7: chunked applied once only", post(clAll+te("chunked, chunked")), chunk0),
		ambiguous("TE with vertical tab", "RFC 9110 5.6.3: VT is not whitespace", post(clAll+"Transfer-Encoding:\vchunked\r\n"), chunk0),
		ambiguous("TE with NUL", "RFC 9110 5.5: NUL in a value is rejected or replaced by SP", post(clAll+"Transfer-Encoding: chunked\x00\r\n"), chunk0),
		ambiguous("TE space before colon", "RFC 9112 5.1: whitespace before the colon: 400", post(clAll+"Transfer-Encoding : chunked\r\n"), chunk0),
		ambiguous("TE folded", "RFC 9112 5.2: obs-fold rejected or replaced by SP", post(clAll+"Transfer-Encoding:\r\n chunked\r\n"), chunk0),
		oneRequest("TE as obs-fold of another field", "RFC 9112 5.2: a folded line belongs to the field before it (no TE: CL frames)", post(clAll+"X-A: b\r\n Transfer-Encoding: chunked\r\n")+chunk0+smuggled, "POST", chunk0+smuggled),
		ambiguous("TE after bare LF", "RFC 9112 2.2: bare LF may end a line; then 6.3(3)", post(clAll+"X-A: b\nTransfer-Encoding: chunked\r\n"), chunk0),
		oneRequest("TE after bare CR", "RFC 9112 2.2: a bare CR is an error or SP (no TE: CL frames)", post(clAll+"X-A: b\rTransfer-Encoding: chunked\r\n")+chunk0+smuggled, "POST", chunk0+smuggled),
		ambiguous("TE in HTTP/1.0", "RFC 9112 6.1: TE in HTTP/1.0 is faulty framing: close after", "POST /a HTTP/1.0\r\nHost: h\r\nX-Token: {tok}\r\n"+clAll+te("chunked")+"\r\n", chunk0),
		ambiguous("two different CL", "RFC 9112 6.3(5): differing lengths: 400", post("Content-Length: 0\r\n"+clAll), chunk0),
		ambiguous("CL list differing", "RFC 9112 6.3(5): a list of differing lengths: 400", post(fmt.Sprintf("Content-Length: 0, %d\r\n", len(chunk0)+len(smuggled))), chunk0),
		ambiguous("CL folded", "RFC 9112 5.2 and 6.3(5)", post("Content-Length: 0\r\n 5\r\n"), chunk0),
		refuse("CL plus sign", "RFC 9110 8.6: Content-Length = 1*DIGIT", post("Content-Length: +5\r\n")+"hello", "POST"),
		refuse("CL negative", "RFC 9110 8.6: Content-Length = 1*DIGIT", post("Content-Length: -5\r\n")+"hello", "POST"),
		refuse("CL hex", "RFC 9110 8.6: Content-Length = 1*DIGIT", post("Content-Length: 0x5\r\n")+"hello", "POST"),
		refuse("CL decimal point", "RFC 9110 8.6: Content-Length = 1*DIGIT", post("Content-Length: 5.0\r\n")+"hello", "POST"),
		refuse("CL exponent", "RFC 9110 8.6: Content-Length = 1*DIGIT", post("Content-Length: 5e0\r\n")+"hello", "POST"),
		refuse("CL fullwidth digit", "RFC 9110 8.6: DIGIT is ASCII", post("Content-Length: \uff15\r\n")+"hello", "POST"),
		refuse("CL overflow", "RFC 9112 6.3(5): a length that cannot be parsed: 400", post("Content-Length: 99999999999999999999999\r\n")+"hello", "POST"),
		refuse("CL with inner space", "RFC 9110 8.6: one number", post("Content-Length: 1 5\r\n")+"hello", "POST"),
		oneRequest("CL duplicated equal", "RFC 9110 8.6: identical values may be taken as one", post("Content-Length: 5\r\nContent-Length: 5\r\n")+"hello", "POST", "hello"),
		oneRequest("CL list equal", "RFC 9110 8.6: a list of identical values may be taken as one", post("Content-Length: 5, 5\r\n")+"hello", "POST", "hello"),
		oneRequest("CL leading zeros", "RFC 9110 8.6: 1*DIGIT", post("Content-Length: 005\r\n")+"hello", "POST", "hello"),
		oneRequest("request-looking body by CL", "RFC 9112 6.2: the body is the next CL bytes", post(fmt.Sprintf("Content-Length: %d\r\n", len(smuggled)))+smuggled, "POST", smuggled),
		oneRequest("request-looking body chunked", "RFC 9112 7.1: the body is the chunks", post(te("chunked"))+hx(len(smuggled))+"\r\n"+smuggled+"\r\n0\r\n\r\n", "POST", smuggled),
		oneRequest("GET with a body", "RFC 9110 9.3.1: a GET body is still the body (RFC 9112 6.2)", "GET /a HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n"+fmt.Sprintf("Content-Length: %d\r\n\r\n", len(smuggled))+smuggled, "GET", ""),
		oneRequest("GET with a chunked body", "RFC 9112 6.1: chunked applies to any method", "GET /a HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n"+te("chunked")+"\r\n"+hx(len(smuggled))+"\r\n"+smuggled+"\r\n0\r\n\r\n", "GET", ""),
		oneRequest("OPTIONS with a body", "RFC 9112 6.2", "OPTIONS /a HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n"+fmt.Sprintf("Content-Length: %d\r\n\r\n", len(smuggled))+smuggled, "OPTIONS", ""),
		oneRequest("chunk size leading zeros", "RFC 9112 7.1: chunk-size = 1*HEXDIG", post(te("chunked"))+"00000005\r\nhello\r\n0\r\n\r\n", "POST", "hello"),
		oneRequest("chunk extensions", "RFC 9112 7.1.1: extensions are ignored", post(te("chunked"))+"5;a=b;c=\"d;e\"\r\nhello\r\n0;f\r\n\r\n", "POST", "hello"),
		oneRequest("chunked with trailer", "RFC 9112 7.1.2: a trailer section ends the body", post(te("chunked"))+"5\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n", "POST", "hello"),
		refuseBody("chunk size hex prefix", "RFC 9112 7.1: chunk-size = 1*HEXDIG", post(te("chunked"))+"0x5\r\nhello\r\n0\r\n\r\n"+smuggled),
		refuseBody("chunk size negative", "RFC 9112 7.1: chunk-size = 1*HEXDIG", post(te("chunked"))+"-5\r\nhello\r\n0\r\n\r\n"+smuggled),
		refuseBody("chunk size overflow", "RFC 9112 7.1: a size that overflows is an error", post(te("chunked"))+"ffffffffffffffffff5\r\nhello\r\n0\r\n\r\n"+smuggled),
		refuseBody("chunk data too long", "RFC 9112 7.1: chunk-data is followed by CRLF", post(te("chunked"))+"3\r\nhello\r\n0\r\n\r\n"+smuggled),
		refuseBody("chunk size with space", "RFC 9112 7.1: no whitespace in chunk-size", post(te("chunked"))+"5 5\r\nhello\r\n0\r\n\r\n"+smuggled),
		refuseBody("chunk lines with bare LF", "RFC 9112 7.1: chunk lines end in CRLF (the LF leniency of 2.2 is for the head only)", post(te("chunked"))+"5\nhello\n0\n\n"+smuggled),
		refuseBody("chunk extension with bare LF", "RFC 9112 7.1.1: chunk-ext is tokens and quoted strings, ended by CRLF", post(te("chunked"))+"5;a\nb\r\nhello\r\n0\r\n\r\n"+smuggled),
		tcase{name: "chunked body never ended", rfc: "RFC 9112 8: an incomplete message is not forwarded as complete", run: func(c *ctx) {
			raw, toks := c.fill(post(te("chunked")) + "5\r\nhello\r\n")
			cl, err := dial(c.p.addr)
			if err != nil {
				c.fail("%v", err)
				return
			}
			cl.sendSync(raw)
			settle()
			cl.close()
			settle()
			for _, r := range c.reqsWith(toks[0]) {
				if r.Complete {
					c.fail("the backend received the cut body as complete: %s", describe([]*breq{r}))
				}
			}
		}},
		tcase{name: "trailer with framing fields", rfc: "RFC 9110 6.5.1: trailer fields never frame or replace header fields", run: func(c *ctx) {
			raw, toks := c.fill(post(te("chunked")) + "5\r\nhello\r\n0\r\nContent-Length: 50\r\nHost: evil\r\nX-Token: smuggled\r\n\r\n")
			e, _ := exchangeOn(c.p.addr, raw, []string{"POST"}, wait, probe)
			c.checkExchange(e, toks)
			for _, r := range c.reqs() {
				for _, f := range r.Fields {
					if strings.EqualFold(f[0], "Host") && f[1] == "evil" || strings.EqualFold(f[0], "Content-Length") && f[1] == "50" {
						c.fail("a trailer field reached the backend as a header field: %s: %s", f[0], f[1])
					}
				}
			}
		}},
		tcase{name: "trailer net/http gives up on", rfc: "RFC 9112 8: after a body error the connection closes", run: func(c *ctx) {
			e := c.ex(post(te("chunked"))+"2\r\nok\r\n0\r\n"+strings.TrimSuffix(smuggled, "\r\n")+"X-Pad: "+strings.Repeat("p", 5000)+"\r\n\r\n", "POST", "GET")
			_ = e
		}},
		tcase{name: "framing after OPTIONS *", rfc: "RFC 9112 6.3(3) on every request of a connection", run: func(c *ctx) {
			raw := strings.Repeat("OPTIONS * HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n\r\n", 2) + post(clAll+te("chunked")) + chunk0 + smuggled
			e := c.ex(raw, "OPTIONS", "OPTIONS", "POST", "GET")
			if len(e.Resps) >= 3 && e.Resps[2].Status < 400 && (len(e.Resps) > 3 || len(e.Extra) > 0) {
				c.fail("CL with TE after OPTIONS * answered %s and the connection went on: %s", e.Resps[2], e)
			}
			c.backendAtMost(3)
		}},
		tcase{name: "framing after equal Content-Lengths", rfc: "RFC 9112 6.3(3) on every request of a connection", run: func(c *ctx) {
			raw := post("Content-Length: 2\r\nContent-Length: 2\r\n") + "ok" + post(clAll+te("chunked")) + chunk0 + smuggled
			e := c.ex(raw, "POST", "POST", "GET")
			if len(e.Resps) >= 2 && e.Resps[1].Status < 400 && (len(e.Resps) > 2 || len(e.Extra) > 0) {
				c.fail("CL with TE after a first request answered %s and the connection went on: %s", e.Resps[1], e)
			}
			c.backendAtMost(2)
		}},
		tcase{name: "underscore framing field names", rfc: "RFC 3875 4.1.18: CGI-style backends read Transfer_Encoding as Transfer-Encoding (and X_Forwarded_For as X-Forwarded-For)", run: func(c *ctx) {
			c.ex(post(clAll+"Transfer_Encoding: chunked\r\n")+chunk0+smuggled, "POST")
			c.ex(post("Content_Length: 5\r\n"+te("chunked"))+"5\r\nhello\r\n0\r\n\r\n", "POST")
			c.ex(get("GET", "/x", "X_Forwarded_For: 203.0.113.9\r\n"), "GET")
			for _, r := range c.reqs() {
				for _, f := range r.Fields {
					if n := strings.ReplaceAll(strings.ToLower(f[0]), "_", "-"); (n == "transfer-encoding" || n == "content-length" || n == "x-forwarded-for") && strings.Contains(f[0], "_") {
						c.fail("the backend received %q: a field a CGI-style backend takes for framing", f[0]+": "+f[1])
					}
				}
			}
		}},
	)
}
