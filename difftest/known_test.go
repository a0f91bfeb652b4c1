package difftest

import (
	"fmt"
	"slices"
	"strings"
)

// The rows of SPEC.md section 8, by their left column (what Ocsigen 5.0.1
// does).
const (
	rowQuery     = "query sent percent-encoded into the path (`/x/foo%3Fa=b`)"
	rowXFP       = "X-Forwarded-Proto is the HTTP version (`HTTP/1.1`)"
	rowScheme    = "backend scheme taken from the incoming connection"
	rowKeephost  = "keephost connects to the client's Host name"
	rowTwice     = "sub-path inside a `<site>` encoded twice (`%20` becomes `%2520`)"
	rowRewrite   = "non-matching `<rewrite>` answers 500; rewrite keeps the stale sub-path and loses the host"
	rowXFFEntry  = "single-entry X-Forwarded-For gives 500; left-most entry trusted"
	rowXFFOwn    = "X-Forwarded-For ends with Ocsigen's own listening address (`client, 0.0.0.0`)"
	rowDown      = "backend down gives 500"
	rowDest      = "dest without path, or `HTTP://`, gives 500"
	rowAnchor    = "`foo|bar` anchored as `^foo|bar$`"
	rowHost      = "hostfilter case-sensitive; HTTP/1.1 without Host served"
	rowHopByHop  = "hop-by-hop headers forwarded; User-Agent invented"
	rowNoPooling = "no keep-alive or pipelining to backends despite the docs"
)

// knownDiff is one declared difference: a SPEC section 8 row.
//
// ocsigen reports whether Ocsigen's outcome shows the 5.0.1 bug. When it
// does, either fix rewrites Ocsigen's outcome into what SPEC requires (rows
// about one part of the exchange: the final comparison then checks that
// ocsiproxy does exactly that), or ocsiproxy checks ocsiproxy's outcome
// against the request's want (rows where Ocsigen's answer is unusable, such as
// a 500; the exchange is then fully explained).
//
// auto rows are tried on every exchange; the others only on requests that
// name them (witness), where they must reproduce.
type knownDiff struct {
	row       string
	auto      bool
	ocsigen   func(x *exchange) bool
	fix       func(x *exchange)
	ocsiproxy func(x *exchange) error
}

var knownDiffs = []knownDiff{
	{
		// Ocsigen puts the whole expanded dest, query included, into the URI
		// path, so the "?" goes out as %3F.
		row:  rowQuery,
		auto: true,
		ocsigen: func(x *exchange) bool {
			for _, b := range x.oc.Backend {
				if strings.Contains(b.Target, "%3F") && !strings.Contains(requestTarget(x.req), "%3F") {
					return true
				}
			}
			return false
		},
		fix: func(x *exchange) {
			for _, b := range x.oc.Backend {
				if !strings.Contains(requestTarget(x.req), "%3F") {
					b.Target = strings.Replace(b.Target, "%3F", "?", 1)
				}
			}
		},
	},
	{
		row:  rowXFP,
		auto: true,
		ocsigen: func(x *exchange) bool {
			v, _ := x.oc.backendHeader(0, "X-Forwarded-Proto")
			return strings.HasPrefix(v, "HTTP/")
		},
		fix: func(x *exchange) {
			proto := "http"
			if x.sc.secure(x.req) {
				proto = "https"
			}
			x.oc.setBackendHeader("X-Forwarded-Proto", proto, false)
		},
	},
	{
		// A https:// dest reached from a plain client connection is spoken
		// to in plain HTTP.
		row: rowScheme,
		ocsigen: func(x *exchange) bool {
			return len(x.oc.Backend) > 0 && !x.oc.Backend[0].TLS
		},
		fix: func(x *exchange) {
			for _, b := range x.oc.Backend {
				b.TLS = true
			}
		},
	},
	{
		// With keephost, Ocsigen connects to the client's Host name (here
		// the decoy address, same port) and sends Host: name:destport.
		row: rowKeephost,
		ocsigen: func(x *exchange) bool {
			return len(x.oc.Backend) > 0 && x.oc.Backend[0].Listener == "decoy"
		},
		fix: func(x *exchange) {
			host, _ := headerValue(requestFields(x.req), "Host")
			for _, b := range x.oc.Backend {
				b.Listener = "main"
			}
			x.oc.setBackendHeader("Host", host, false)
		},
	},
	{
		// The site-relative part of the path is percent-encoded again.
		row:  rowTwice,
		auto: true,
		ocsigen: func(x *exchange) bool {
			t := requestTarget(x.req)
			for _, b := range x.oc.Backend {
				if strings.Contains(b.Target, "%25") && !strings.Contains(t, "%25") {
					return true
				}
			}
			return false
		},
		fix: func(x *exchange) {
			for _, b := range x.oc.Backend {
				b.Target = strings.ReplaceAll(b.Target, "%25", "%")
			}
		},
	},
	{
		row: rowRewrite,
		ocsigen: func(x *exchange) bool {
			return x.oc.Status == 500 || !sameWant(x.oc, x.req.want)
		},
		ocsiproxy: checkWant,
	},
	{
		row: rowXFFEntry,
		ocsigen: func(x *exchange) bool {
			return x.oc.Status == 500 || !sameWant(x.oc, x.req.want)
		},
		ocsiproxy: checkWant,
	},
	{
		// Ocsigen appends the address it listens on (127.0.0.1 here, the
		// client connects from 127.0.0.2) instead of the peer's.
		row:  rowXFFOwn,
		auto: true,
		ocsigen: func(x *exchange) bool {
			v, ok := x.oc.backendHeader(0, "X-Forwarded-For")
			return ok && strings.HasSuffix(v, ", 127.0.0.1")
		},
		// Ocsigen sends client :: forwarded @ [own address], where client is
		// the peer unless allow-forward-for took one from the header; SPEC 7
		// wants the accepted entries and then the peer, or just the peer.
		fix: func(x *exchange) {
			for _, b := range x.oc.Backend {
				v, ok := headerValue(b.Fields, "X-Forwarded-For")
				if !ok {
					continue
				}
				entries := strings.Split(v, ", ")
				entries = entries[:len(entries)-1]
				if len(entries) != 1 || entries[0] != clientIP {
					entries = append(entries, clientIP)
				}
				setField(b, "X-Forwarded-For", strings.Join(entries, ", "))
			}
		},
	},
	{
		row: rowDown,
		ocsigen: func(x *exchange) bool {
			return x.oc.Status == 500 && x.oc.Generated && len(x.oc.Backend) == 0
		},
		fix: func(x *exchange) { x.oc.Status = 502 },
	},
	{
		row: rowDest,
		ocsigen: func(x *exchange) bool {
			return x.oc.Status == 500 && len(x.oc.Backend) == 0
		},
		ocsiproxy: checkWant,
	},
	{
		row: rowAnchor,
		ocsigen: func(x *exchange) bool {
			return !sameWant(x.oc, x.req.want)
		},
		ocsiproxy: checkWant,
	},
	{
		row: rowHost,
		ocsigen: func(x *exchange) bool {
			return !sameWant(x.oc, x.req.want)
		},
		ocsiproxy: checkWant,
	},
	{
		// Ocsigen forwards hop-by-hop headers in both directions, and adds a
		// User-Agent when the client sent none.
		row:  rowHopByHop,
		auto: true,
		ocsigen: func(x *exchange) bool {
			if len(x.oc.Backend) == 0 {
				return false
			}
			_, uaClient := headerValue(requestFields(x.req), "User-Agent")
			if _, ua := x.oc.backendHeader(0, "User-Agent"); ua && !uaClient {
				return true
			}
			for _, h := range hopByHop(requestFields(x.req)) {
				if _, ok := x.oc.backendHeader(0, h); ok {
					return true
				}
			}
			for _, h := range responseHopByHop(x.oc) {
				if _, ok := headerValue(x.oc.Fields, h); ok {
					return true
				}
			}
			return false
		},
		fix: func(x *exchange) {
			if _, uaClient := headerValue(requestFields(x.req), "User-Agent"); !uaClient {
				x.oc.setBackendHeader("User-Agent", "", true)
			}
			for _, h := range hopByHop(requestFields(x.req)) {
				x.oc.setBackendHeader(h, "", true)
			}
			for _, h := range responseHopByHop(x.oc) {
				x.oc.Fields = slices.DeleteFunc(x.oc.Fields, func(f field) bool { return strings.EqualFold(f.Name, h) })
			}
		},
	},
	{
		// Not observable in a single exchange: connection reuse is not
		// compared (backendReq.ConnReq is excluded from the outcome).
		row:     rowNoPooling,
		ocsigen: func(*exchange) bool { return false },
	},
}

// hopByHopNames are the hop-by-hop headers of SPEC 7 (Transfer-Encoding is
// framing and never compared).
var hopByHopNames = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Upgrade"}

// hopByHop lists the hop-by-hop header names of a request: the fixed ones
// and those its Connection header names.
func hopByHop(fs []field) []string {
	names := append([]string{}, hopByHopNames...)
	for _, v := range headerValues(fs, "Connection") {
		for _, tok := range strings.Split(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				names = append(names, tok)
			}
		}
	}
	return names
}

// responseHopByHop lists the hop-by-hop headers of the backend's response
// that reach the client when forwarded (Connection and Keep-Alive are not
// compared on the client side).
func responseHopByHop(o *outcome) []string {
	if len(o.Backend) == 0 || o.Backend[0].Resp == nil {
		return nil
	}
	var names []string
	for _, n := range hopByHop(o.Backend[0].Resp) {
		if !strings.EqualFold(n, "Connection") && !strings.EqualFold(n, "Keep-Alive") {
			names = append(names, n)
		}
	}
	return names
}

// setField replaces every value of the named header of b by one value.
func setField(b *backendReq, name, value string) {
	var out []field
	done := false
	for _, f := range b.Fields {
		if strings.EqualFold(f.Name, name) {
			if !done {
				out = append(out, field{f.Name, value})
				done = true
			}
			continue
		}
		out = append(out, f)
	}
	b.Fields = out
}

// requestTarget is the target of the request line of r.
func requestTarget(r *request) string {
	line, _, _ := strings.Cut(r.raw, "\r\n")
	parts := strings.Split(line, " ")
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

// requestFields parses the header fields of r (placeholders unexpanded).
func requestFields(r *request) []field {
	head, _, _ := strings.Cut(r.raw, "\r\n\r\n")
	var fs []field
	for _, l := range strings.Split(head, "\r\n")[1:] {
		if n, v, ok := strings.Cut(l, ":"); ok {
			fs = append(fs, field{n, strings.TrimSpace(v)})
		}
	}
	return fs
}

// secure reports whether SPEC counts the request as secure: the client
// connection is always plain here, so only allow-forward-proto with
// X-Forwarded-Proto: https makes it so.
func (sc *scenario) secure(r *request) bool {
	if !strings.Contains(sc.hosts, "allow-forward-proto") {
		return false
	}
	v, _ := headerValue(requestFields(r), "X-Forwarded-Proto")
	return strings.EqualFold(v, "https")
}

// sameWant reports whether o already is what w describes.
func sameWant(o *outcome, w *want) bool {
	return w != nil && wantErr(o, w) == nil
}

// checkWant checks ocsiproxy's outcome against the request's want.
func checkWant(x *exchange) error {
	if x.req.want == nil {
		return fmt.Errorf("harness: request names a whole-outcome row but has no want")
	}
	return wantErr(x.op, x.req.want)
}

func wantErr(o *outcome, w *want) error {
	if o.Status != w.status {
		return fmt.Errorf("status %d, want %d", o.Status, w.status)
	}
	if w.target == "" {
		if len(o.Backend) != 0 {
			return fmt.Errorf("backend contacted (%s %s), want not contacted", o.Backend[0].Method, o.Backend[0].Target)
		}
	} else {
		if len(o.Backend) != 1 {
			return fmt.Errorf("backend got %d requests, want 1", len(o.Backend))
		}
		if got := o.normPorts(o.Backend[0].Target); got != w.target {
			return fmt.Errorf("backend target %q, want %q", got, w.target)
		}
		for n, v := range w.backend {
			got, ok := headerValue(o.Backend[0].Fields, n)
			if v == "" && ok {
				return fmt.Errorf("backend got %s: %q, want none", n, got)
			}
			if v != "" && o.normPorts(got) != v {
				return fmt.Errorf("backend got %s: %q, want %q", n, got, v)
			}
		}
	}
	if w.location != "" {
		got, _ := headerValue(o.Fields, "Location")
		if o.normPorts(got) != w.location {
			return fmt.Errorf("Location %q, want %q", got, w.location)
		}
	}
	return nil
}
