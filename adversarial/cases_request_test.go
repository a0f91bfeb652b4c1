package adversarial

import (
	"strings"
)

// The request line and target (RFC 9112 section 3, RFC 3986), the Host
// field (RFC 9112 section 3.2, RFC 9110 section 7.2) and the other fields
// (RFC 9112 section 5, RFC 9110 sections 5 and 7.6).

// targetOK is a case whose request may be refused or forwarded; when
// forwarded, the target the backend received must satisfy ok.
func targetOK(name, rfc, raw string, ok func(target string) bool, why string) tcase {
	return tcase{name: name, rfc: rfc, run: func(c *ctx) {
		raw, toks := c.fill(raw)
		e, err := exchangeOn(c.p.addr, raw, []string{"GET"}, wait, probe)
		if err != nil {
			c.fail("%v", err)
			return
		}
		c.checkExchange(e, toks)
		for _, r := range c.reqs() {
			if !ok(r.Target) {
				c.fail("the backend received target %q: %s", clip(r.Target), why)
			}
		}
		c.backendAtMost(1)
	}}
}

// answered is a case whose request must be served (2xx from the backend)
// with the request as the backend received it passing check.
func answered(name, rfc, raw, method string, check func(c *ctx, r *breq)) tcase {
	return tcase{name: name, rfc: rfc, run: func(c *ctx) {
		raw, toks := c.fill(raw)
		e, err := exchangeOn(c.p.addr, raw, []string{method}, wait, probe)
		if err != nil {
			c.fail("%v", err)
			return
		}
		c.checkExchange(e, toks)
		c.status(e, 200)
		rs := c.reqsWith(toks[0])
		if len(rs) != 1 {
			c.fail("the backend received %s, want the request once", describe(rs))
			return
		}
		if check != nil {
			check(c, rs[0])
		}
	}}
}

func originForm(t string) bool { return strings.HasPrefix(t, "/") }

func noFragment(t string) bool { return !strings.Contains(t, "#") }

func init() {
	r3 := "RFC 9112 3: request-line = method SP request-target SP HTTP-version"
	register("target",
		answered("absolute-form", "RFC 9112 3.2.2: a proxy forwards origin-form to an origin", "GET http://h/x?q=1 HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n\r\n", "GET", func(c *ctx, r *breq) {
			if r.Target != "/x?q=1" {
				c.fail("backend target %q, want /x?q=1", r.Target)
			}
		}),
		tcase{name: "absolute-form to a forbidden path", rfc: "RFC 9112 3.2.2: the target's path is the path", run: func(c *ctx) {
			c.refused(c.ex("GET http://h/admin/x HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n\r\n", "GET"))
			c.backendAtMost(0)
		}},
		tcase{name: "absolute-form with dot-segments", rfc: "RFC 3986 5.2.4 applies to absolute-form too", run: func(c *ctx) {
			c.refused(c.ex("GET http://h/x/../admin HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n\r\n", "GET"))
			c.backendAtMost(0)
		}},
		targetOK("absolute-form authority differs from Host", "RFC 9112 3.2.2: the target's authority replaces Host", "GET http://other.example/x HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n\r\n", originForm, "want origin-form"),
		targetOK("absolute-form with userinfo", "RFC 9110 4.2.4: userinfo is refused or dropped, never forwarded", "GET http://user:pw@h/x HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n\r\n", func(t string) bool { return !strings.Contains(t, "pw") }, "userinfo forwarded"),
		targetOK("absolute-form https on a plain port", "RFC 9112 3.2.2", "GET https://h/x HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n\r\n", originForm, "want origin-form"),
		refuse("authority-form outside CONNECT", "RFC 9112 3.2.3: authority-form is only for CONNECT", "GET h:80 HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n\r\n", "GET"),
		tcase{name: "CONNECT", rfc: "RFC 9110 9.3.6: a reverse proxy opens no tunnel", run: func(c *ctx) {
			e := c.ex("CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nX-Token: {tok}\r\n\r\n"+smuggled, "CONNECT")
			c.refused(e)
			if e.first() != nil && e.first().Status == 200 {
				c.fail("CONNECT answered 200: a tunnel")
			}
		}},
		tcase{name: "OPTIONS asterisk", rfc: "RFC 9112 3.2.4: asterisk-form, then the connection goes on", run: func(c *ctx) {
			e := c.ex("OPTIONS * HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n\r\n"+follow, "OPTIONS", "GET")
			if e.first() == nil {
				c.fail("no answer: %s", e)
			}
		}},
		refuse("asterisk-form with GET", "RFC 9112 3.2.4: asterisk-form is only for OPTIONS", "GET * HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n\r\n", "GET"),
		targetOK("fragment", "RFC 9112 3.2: a target has no fragment", get("GET", "/x#frag", ""), noFragment, "fragment forwarded"),
		tcase{name: "fragment hiding a forbidden path", rfc: "RFC 3986 3.5: the fragment is not part of the path", run: func(c *ctx) {
			c.ex(get("GET", "/admin#/../x", ""), "GET")
			for _, r := range c.reqs() {
				if reaches(r.Target, "admin", readFragment) {
					c.fail("backend received %q, which is /admin once the fragment is dropped", r.Target)
				}
			}
		}},
		targetOK("raw UTF-8 in the path", "RFC 9112 3.2, RFC 3986 2: a target is ASCII; a proxy refuses or encodes", get("GET", "/caf\xc3\xa9", ""), asciiTarget, "non-ASCII forwarded"),
		targetOK("raw UTF-8 in the query", "RFC 3986 3.4: a query is ASCII", get("GET", "/x?q=\xc3\xa9", ""), asciiTarget, "non-ASCII forwarded"),
		refuse("control byte in the target", "RFC 9112 3.2: no CTL in a target", get("GET", "/a\x01b", ""), "GET"),
		refuse("DEL in the target", "RFC 9112 3.2: no CTL in a target", get("GET", "/a\x7fb", ""), "GET"),
		refuse("space in the target", r3, get("GET", "/a b", ""), "GET"),
		targetOK("double space in the request line", r3+" (a lenient split must stay one target)", "GET  /x HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n\r\n", originForm, "want origin-form"),
		targetOK("tabs in the request line", r3+" (a lenient split must stay one target)", "GET\t/x\tHTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n\r\n", originForm, "want origin-form"),
		refuse("lower-case HTTP-name", "RFC 9112 2.3: HTTP-name is case-sensitive", "GET /x http/1.1\r\nHost: h\r\nX-Token: {tok}\r\n\r\n", "GET"),
		refuse("HTTP/2.0 on an HTTP/1 connection", "RFC 9112 2.3, RFC 9110 15.6.6: 505 or 400", "GET /x HTTP/2.0\r\nHost: h\r\nX-Token: {tok}\r\n\r\n", "GET"),
		refuse("two-digit version", "RFC 9112 2.3: HTTP-version = HTTP-name / DIGIT . DIGIT", "GET /x HTTP/1.10\r\nHost: h\r\nX-Token: {tok}\r\n\r\n", "GET"),
		refuse("HTTP/0.9 request", "RFC 9112 2.3: no HTTP/0.9", "GET /x\r\n\r\n", "GET"),
		refuse("method with a separator", "RFC 9110 9.1: method = token", "G(T /x HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\n\r\n", "GET"),
		refuse("target too long", "RFC 9112 3: 414 (or 400, 431) for a long target", get("GET", "/"+strings.Repeat("a", 100<<10), ""), "GET"),
		refuse("HTTP/2 preface", "RFC 9113 3.4: no prior-knowledge HTTP/2 here", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "GET"),
	)

	rh := "RFC 9112 3.2: a request with a missing, repeated or invalid Host is 400"
	host := func(fields string) string { return "GET /x HTTP/1.1\r\n" + fields + "X-Token: {tok}\r\n\r\n" }
	register("host",
		refuse("no Host in HTTP/1.1", rh, host(""), "GET"),
		refuse("two Host fields", rh, host("Host: h\r\nHost: evil\r\n"), "GET"),
		refuse("Host list", rh, host("Host: h, evil\r\n"), "GET"),
		refuse("Host with userinfo", rh+" (uri-host [ \":\" port ])", host("Host: user@h\r\n"), "GET"),
		refuse("Host with a path", rh, host("Host: h/admin\r\n"), "GET"),
		refuse("Host with two ports", rh, host("Host: h:80:80\r\n"), "GET"),
		refuse("Host with a non-numeric port", rh, host("Host: h:8o\r\n"), "GET"),
		refuse("Host with an open bracket", rh, host("Host: [::1\r\n"), "GET"),
		refuse("Host with a space", rh, host("Host: h evil\r\n"), "GET"),
		refuse("Host with NUL", rh, host("Host: h\x00evil\r\n"), "GET"),
		refuse("Host folded", rh+", RFC 9112 5.2", host("Host: h\r\n evil\r\n"), "GET"),
		answered("HTTP/1.0 without Host", "RFC 9112 3.2: Host is required of HTTP/1.1 only", "GET /x HTTP/1.0\r\nX-Token: {tok}\r\n\r\n", "GET", nil),
		answered("IPv6 literal Host", "RFC 3986 3.2.2: IP-literal", host("Host: [::1]:8080\r\n"), "GET", nil),
	)

	r51 := "RFC 9112 5.1: field-line = field-name \":\" OWS field-value OWS; a server rejects whitespace before the colon"
	r55 := "RFC 9110 5.5: CR, LF or NUL in a value: reject, or replace with SP"
	fieldOK := func(name, rfc, fields string) tcase {
		return tcase{name: name, rfc: rfc, run: func(c *ctx) {
			c.ex(get("GET", "/x", fields), "GET")
		}}
	}
	register("fields",
		refuse("space before colon", r51, get("GET", "/x", "X-A : b\r\n"), "GET"),
		refuse("tab before colon", r51, get("GET", "/x", "X-A\t: b\r\n"), "GET"),
		refuse("field name with a space", "RFC 9110 5.1: field-name = token", get("GET", "/x", "X A: b\r\n"), "GET"),
		refuse("empty field name", "RFC 9110 5.1: field-name = token", get("GET", "/x", ": b\r\n"), "GET"),
		refuse("line without a colon", "RFC 9112 5: field-line needs a colon", get("GET", "/x", "X-A\r\n"), "GET"),
		refuse("NUL in a field name", "RFC 9110 5.1: field-name = token", get("GET", "/x", "X\x00A: b\r\n"), "GET"),
		refuse("non-ASCII field name", "RFC 9110 5.1: field-name = token", get("GET", "/x", "X-\xc3\xa9: b\r\n"), "GET"),
		fieldOK("NUL in a value", r55, "X-A: a\x00b\r\n"),
		fieldOK("bare CR in a value", r55, "X-A: a\rb\r\n"),
		fieldOK("obs-fold", "RFC 9112 5.2: a proxy rejects obs-fold or replaces it with SP before forwarding", "X-A: a\r\n b\r\n"),
		fieldOK("bare LF line ends", "RFC 9112 2.2: a recipient may take LF as a line end; it forwards CRLF", "X-A: a\nX-B: b\n"),
		refuse("header block too large", "RFC 6585 5: 431 (or 400)", get("GET", "/x", "X-Big: "+strings.Repeat("b", 100<<10)+"\r\n"), "GET"),
		refuse("too many fields", "RFC 6585 5: 431 (or 400)", get("GET", "/x", strings.Repeat("X-A: b\r\n", 3000)), "GET"),
		answered("Connection names a field", "RFC 9110 7.6.1: fields named in Connection are removed", get("GET", "/x", "Connection: X-Secret\r\nX-Secret: s\r\n"), "GET", func(c *ctx, r *breq) {
			if len(r.get("X-Secret")) > 0 {
				c.fail("backend received X-Secret, which Connection named hop-by-hop")
			}
		}),
		answered("Connection names X-Forwarded-For", "RFC 9110 7.6.1 strips the client's fields, not the proxy's own", get("GET", "/x", "Connection: close, X-Forwarded-For\r\n"), "GET", func(c *ctx, r *breq) {
			if got := strings.Join(r.get("X-Forwarded-For"), ","); got != "127.0.0.1" {
				c.fail("backend X-Forwarded-For %q, want the peer 127.0.0.1", got)
			}
		}),
		answered("hop-by-hop fields", "RFC 9110 7.6.1, RFC 9112 9.6: Keep-Alive, Proxy-Connection, TE are not forwarded", get("GET", "/x", "Keep-Alive: timeout=99\r\nProxy-Connection: keep-alive\r\nTE: gzip\r\n"), "GET", func(c *ctx, r *breq) {
			for _, f := range []string{"Keep-Alive", "Proxy-Connection"} {
				if len(r.get(f)) > 0 {
					c.fail("backend received %s", f)
				}
			}
			if v := r.first("TE"); v != "" && v != "trailers" {
				c.fail("backend received TE: %s", v)
			}
		}),
		answered("X-Forwarded-For from an untrusted client", "SPEC 6/7: a client's X-Forwarded-For is not passed on", get("GET", "/x", "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-For: 198.51.100.1\r\n"), "GET", func(c *ctx, r *breq) {
			if got := strings.Join(r.get("X-Forwarded-For"), ","); got != "127.0.0.1" {
				c.fail("backend X-Forwarded-For %q, want the peer only", got)
			}
		}),
		answered("X-Forwarded-Proto from the client", "SPEC 7: X-Forwarded-Proto is the proxy's, replacing any client value", get("GET", "/x", "X-Forwarded-Proto: https\r\n"), "GET", func(c *ctx, r *breq) {
			if got := strings.Join(r.get("X-Forwarded-Proto"), ","); got != "http" {
				c.fail("backend X-Forwarded-Proto %q, want http", got)
			}
		}),
		answered("Forwarded from the client", "RFC 7239 8.1: Forwarded from an untrusted client is not passed on", get("GET", "/x", "Forwarded: for=203.0.113.9;proto=https\r\n"), "GET", func(c *ctx, r *breq) {
			if got := r.get("Forwarded"); len(got) > 0 {
				c.fail("backend received Forwarded %q", got)
			}
		}),
		answered("client-address fields from an untrusted client", "SPEC 7: X-Real-IP is the proxy's; True-Client-IP, CF-Connecting-IP... are not passed on", get("GET", "/x", "X-Real-IP: 203.0.113.9\r\nTrue-Client-IP: 203.0.113.9\r\nCF-Connecting-IP: 203.0.113.9\r\nX-Client-IP: 203.0.113.9\r\nX_Real_IP: 203.0.113.9\r\n"), "GET", func(c *ctx, r *breq) {
			if got := strings.Join(r.get("X-Real-IP"), ","); got != "" && got != "127.0.0.1" {
				c.fail("backend X-Real-IP %q, want none or the peer 127.0.0.1", got)
			}
			for _, h := range []string{"True-Client-IP", "CF-Connecting-IP", "X-Client-IP", "X_Real_IP"} {
				if got := r.get(h); len(got) > 0 {
					c.fail("backend received %s %q", h, got)
				}
			}
		}),
		answered("X-Forwarded-Host from an untrusted client", "SPEC 7: an untrusted X-Forwarded-Host is not passed on", get("GET", "/x", "X-Forwarded-Host: evil.example\r\n"), "GET", func(c *ctx, r *breq) {
			if got := strings.Join(r.get("X-Forwarded-Host"), ","); strings.Contains(got, "evil") {
				c.fail("backend X-Forwarded-Host %q", got)
			}
		}),
		answered("Expect 100-continue", "RFC 9110 10.1.1: the body follows the 100 or is sent anyway", "POST /x HTTP/1.1\r\nHost: h\r\nX-Token: {tok}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", "POST", func(c *ctx, r *breq) {
			if string(r.Body) != "hello" {
				c.fail("backend body %q, want hello", r.Body)
			}
		}),
		tcase{name: "unknown expectation", rfc: "RFC 9110 10.1.1: 417, or the expectation ignored", run: func(c *ctx) {
			e := c.ex(get("GET", "/x", "Expect: teapot\r\n"), "GET")
			if s := e.status(); s != 417 && s != 200 {
				c.fail("got %s, want 417 or 200", e)
			}
		}},
	)
}

func asciiTarget(t string) bool {
	for i := 0; i < len(t); i++ {
		if t[i] >= 0x7f {
			return false
		}
	}
	return true
}
