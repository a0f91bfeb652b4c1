package difftest

import (
	"fmt"
	"net/url"
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
	rowClient    = "a client's X-Real-IP, Forwarded, X-Forwarded-Host passed through"
)

// Rows proposed for SPEC.md section 8: places where Ocsigen 5.0.1 differs
// from what another SPEC section requires, measured here but not (yet)
// listed in section 8. They are declared like the others and reported apart
// in the summary, so the SPEC can be completed.
const (
	rowPEntities   = "PROPOSED: entities in attribute values are not decoded (`&amp;` stays `&amp;`) [SPEC 2]"
	rowPRawLT      = "PROPOSED: a raw `<` in an attribute is accepted [SPEC 2]"
	rowPLateConfig = "PROPOSED: a `\\N` naming a missing group, a trailing `\\`, or a dest that is not http(s) is found only per request (500) [SPEC 2]"
	rowPClimb      = "PROPOSED: a path climbing above the root is clamped to `/` [SPEC 4]"
	rowPReorder    = "PROPOSED: `<outputfilter regexp>` reverses the order of repeated headers [SPEC 5, 7]"
	rowPExpect     = "PROPOSED: the backend's `100 Continue` is taken as the answer; the client gets nothing [SPEC 7]"
	rowPUntilClose = "PROPOSED: a backend body delimited by connection close is forwarded without framing; the client hangs [SPEC 7]"
	rowPGenScheme  = "PROPOSED: the site-directory 301 ignores allow-forward-proto (`http://` for a secure request) [SPEC 3, 6]"
	rowPBodySize   = "PROPOSED: `<maxrequestbodysize>` is not enforced on proxied requests (the body is forwarded) [SPEC 7]"
	rowPHeaderSize = "PROPOSED: a header block over `<netbuffersize>` is accepted [SPEC 7]"
	rowPTunnel     = "PROPOSED: a protocol upgrade (WebSocket) gets its 101 but nothing is tunnelled [SPEC 7]"
	rowPTimeout    = "PROPOSED: no time limit on the backend's answer (`<timeout>` is not applied) [SPEC 7]"

	// Differences where SPEC is silent and ocsiproxy decided otherwise
	// than Ocsigen; each is a row of the README's difference table.
	rowRSlashes   = "README: runs of `/` are merged everywhere; Ocsigen merges some (`//x`, `/app//x`) but keeps others (`//app/x` stays outside the site, `/x//y` is sent as is) [SPEC 4]"
	rowRTarget    = "README: a target with a `#fragment`, the asterisk form `*`, a malformed escape (`%zz`) or `%00` is refused with 400; Ocsigen proxies it [SPEC 4]"
	rowR304       = "README: a 304 answer goes without the backend's Content-Type (net/http, as RFC 9110 section 15.4.5 advises) [SPEC 7]"
	rowRRetry     = "README: an idempotent request whose connection the backend closed without answering is sent once more, on a fresh connection [SPEC 9]"
	rowRAmbiguous = "README: a path that a lax backend reads with a dot-segment or an inner empty segment (`%2F` or `%5C` taken for `/`, `;params` dropped: `/x/..%2Fy`, `/%2Fadmin`, `/x/..;/y`) is refused with 400; Ocsigen serves it [SPEC 4]"
)

// knownDiff is one declared difference: a SPEC section 8 row.
//
// ocsigen reports whether Ocsigen's outcome shows the 5.0.1 bug. When it
// does, either fix rewrites Ocsigen's outcome into what SPEC requires (rows
// about one part of the exchange: the final comparison then checks that
// ocsiproxy does exactly that), or, for a request that carries a want,
// ocsiproxy checks ocsiproxy's outcome against it (rows where Ocsigen's
// answer is unusable, such as a 500; the exchange is then fully explained).
//
// auto rows are tried on every exchange; the others only on requests that
// name them (witness), where they must reproduce.
//
// startup rows are about configs: Ocsigen starts (ocsigen checks what it
// answers), and SPEC requires ocsiproxy to refuse the file at start-up with a
// position. A scenario names its start-up row in startRow.
type knownDiff struct {
	row       string
	auto      bool
	ocsigen   func(x *exchange) bool
	fix       func(x *exchange)
	ocsiproxy func(x *exchange) error
	startup   bool
}

var knownDiffs = []knownDiff{
	{
		// Ocsigen puts the whole expanded dest, query included, into the URI
		// path: the "?" goes out as %3F and the query is decoded and
		// re-encoded as a path (`+` becomes %20, %2F becomes /).
		row:     rowQuery,
		auto:    true,
		ocsigen: func(x *exchange) bool { return queryFix(x, false) },
		fix:     func(x *exchange) { queryFix(x, true) },
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
		// The backend connection uses TLS exactly when the request counts as
		// secure (allow-forward-proto here), whatever dest says: a https://
		// dest gets plain HTTP, an http:// dest behind a secure request gets
		// TLS (the backend serves both on one port).
		row: rowScheme,
		ocsigen: func(x *exchange) bool {
			return len(x.oc.Backend) > 0 && x.oc.Backend[0].TLS == x.sc.secure(x.req)
		},
		fix: func(x *exchange) {
			for _, b := range x.oc.Backend {
				b.TLS = !b.TLS
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
			x.oc.setBackendHeader("Host", x.oc.normPorts(expandForCompare(host, x)), false)
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
		row:       rowRewrite,
		ocsigen:   unlikeWant,
		ocsiproxy: checkWant,
	},
	{
		// Also a non-IP entry Ocsigen tries to parse (the last one) gives 500.
		row:       rowXFFEntry,
		ocsigen:   unlikeWant,
		ocsiproxy: checkWant,
	},
	{
		// Ocsigen sends client :: forwarded @ [its own address], where client
		// is the peer unless allow-forward-for took one from the header.
		// SPEC 7 wants the accepted entries and then the peer, so: drop
		// Ocsigen's own address, then end with the peer (127.0.0.2) unless the
		// list already does (the peer itself, or a check-equal-ip entry).
		row:  rowXFFOwn,
		auto: true,
		ocsigen: func(x *exchange) bool {
			v, ok := x.oc.backendHeader(0, "X-Forwarded-For")
			return ok && strings.HasSuffix(v, ", 127.0.0.1")
		},
		fix: func(x *exchange) {
			for _, b := range x.oc.Backend {
				v, ok := headerValue(b.Fields, "X-Forwarded-For")
				if !ok {
					continue
				}
				entries := strings.Split(v, ", ")
				entries = entries[:len(entries)-1]
				if len(entries) == 0 || entries[len(entries)-1] != clientIP {
					entries = append(entries, clientIP)
				}
				setField(b, "X-Forwarded-For", strings.Join(entries, ", "))
			}
		},
	},
	{
		// Connection refused, or reset before a response.
		row: rowDown,
		ocsigen: func(x *exchange) bool {
			return x.oc.Status == 500 && x.oc.Generated
		},
		fix: func(x *exchange) { x.oc.Status = 502 },
	},
	{
		row:       rowDest,
		ocsigen:   func(x *exchange) bool { return x.oc.Status == 500 && len(x.oc.Backend) == 0 },
		ocsiproxy: checkWant,
	},
	{
		row:       rowAnchor,
		ocsigen:   unlikeWant,
		ocsiproxy: checkWant,
	},
	{
		row:       rowHost,
		ocsigen:   unlikeWant,
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
				if isUpgrade(x.req) && strings.EqualFold(h, "Upgrade") {
					continue // SPEC 7: a real protocol upgrade is tunnelled
				}
				x.oc.setBackendHeader(h, "", true)
			}
			if acceptsTrailers(x.req) {
				// README: the backend is sent "TE: trailers" when the client
				// accepts trailers, whatever TE the client wrote.
				x.oc.setBackendHeader("TE", "trailers", false)
			}
			for _, h := range responseHopByHop(x.oc) {
				if isUpgrade(x.req) && x.oc.Status == 101 && strings.EqualFold(h, "Upgrade") {
					continue
				}
				x.oc.Fields = slices.DeleteFunc(x.oc.Fields, func(f field) bool { return strings.EqualFold(f.Name, h) })
			}
		},
	},
	{
		// Not observable in a single exchange (backendReq.ConnReq is not
		// compared); scenarios with poolCheck test it over all their
		// requests, see checkPooling.
		row:     rowNoPooling,
		ocsigen: func(*exchange) bool { return false },
	},

	// Proposed rows.
	{
		// dest="...&amp;..." reaches the backend as "&amp;" (and "&#38;" as
		// "&%2338;"); SPEC 2 says entities are decoded.
		row:       rowPEntities,
		ocsigen:   unlikeWant,
		ocsiproxy: checkWant,
	},
	{
		row:     rowPRawLT,
		startup: true,
		ocsigen: func(x *exchange) bool { return x.oc.Status == 200 },
	},
	{
		row:     rowPLateConfig,
		startup: true,
		ocsigen: func(x *exchange) bool { return x.oc.Status == 500 && len(x.oc.Backend) == 0 },
	},
	{
		row:       rowPClimb,
		ocsigen:   unlikeWant,
		ocsiproxy: checkWant,
	},
	{
		row: rowPReorder,
		ocsigen: func(x *exchange) bool {
			v := headerValues(x.oc.Fields, "Set-Cookie")
			return len(v) == 2 && strings.HasPrefix(v[0], "b=")
		},
		fix: func(x *exchange) {
			for _, name := range []string{"Set-Cookie", "X-Multi"} {
				var idx []int
				for i, f := range x.oc.Fields {
					if strings.EqualFold(f.Name, name) {
						idx = append(idx, i)
					}
				}
				for i, j := 0, len(idx)-1; i < j; i, j = i+1, j-1 {
					x.oc.Fields[idx[i]], x.oc.Fields[idx[j]] = x.oc.Fields[idx[j]], x.oc.Fields[idx[i]]
				}
			}
		},
	},
	{
		row:       rowPExpect,
		ocsigen:   func(x *exchange) bool { return x.oc.Status == 0 && x.oc.Err == "timeout" && len(x.oc.Backend) == 1 },
		ocsiproxy: checkWant,
	},
	{
		row:     rowPUntilClose,
		ocsigen: func(x *exchange) bool { return x.oc.Err != "" && x.oc.Framing == framingClose },
		fix:     func(x *exchange) { x.oc.Err = "" },
	},
	{
		row: rowPGenScheme,
		ocsigen: func(x *exchange) bool {
			loc, _ := headerValue(x.oc.Fields, "Location")
			return x.oc.Status == 301 && strings.HasPrefix(loc, "http://")
		},
		ocsiproxy: checkWant,
	},
	{
		row:       rowPBodySize,
		ocsigen:   unlikeWant,
		ocsiproxy: checkWant,
	},
	{
		row:       rowPHeaderSize,
		ocsigen:   unlikeWant,
		ocsiproxy: checkWant,
	},
	{
		row:       rowPTimeout,
		ocsigen:   unlikeWant,
		ocsiproxy: checkWant,
	},
	{
		// Ocsigen passes every client-address field on and writes no
		// X-Real-IP. SPEC 7: they are removed unless allow-forward-for
		// accepted the peer (the corrected X-Forwarded-For then has more
		// than the peer), X-Real-IP is the established client (the first
		// entry), and an untrusted X-Forwarded-Host becomes the client's
		// Host. It runs after rowXFFOwn has corrected X-Forwarded-For.
		row:  rowClient,
		auto: true,
		ocsigen: func(x *exchange) bool {
			for _, b := range x.oc.Backend {
				client, _ := establishedClient(b.Fields)
				if v, ok := headerValue(b.Fields, "X-Real-IP"); !ok || v != client {
					return true
				}
			}
			return false
		},
		fix: func(x *exchange) {
			host, hasHost := headerValue(requestFields(x.req), "Host")
			for _, b := range x.oc.Backend {
				client, trusted := establishedClient(b.Fields)
				var out []field
				for _, f := range b.Fields {
					switch {
					case strings.EqualFold(f.Name, "X-Real-IP"):
					case strings.EqualFold(f.Name, "X-Forwarded-Host") && !trusted:
						if hasHost {
							out = append(out, field{f.Name, host})
							hasHost = false // one line, however many the client sent
						}
					case !trusted && slices.ContainsFunc(clientAddrFields, func(n string) bool { return strings.EqualFold(n, f.Name) }):
					default:
						out = append(out, f)
					}
				}
				b.Fields = append(out, field{"X-Real-IP", client})
			}
		},
	},
	{
		row:       rowRSlashes,
		ocsigen:   unlikeWant,
		ocsiproxy: checkWant,
	},
	{
		row:       rowRTarget,
		ocsigen:   unlikeWant,
		ocsiproxy: checkWant,
	},
	{
		row:       rowRAmbiguous,
		ocsigen:   unlikeWant,
		ocsiproxy: checkWant,
	},
	{
		row:  rowR304,
		auto: true,
		ocsigen: func(x *exchange) bool {
			_, ok := headerValue(x.oc.Fields, "Content-Type")
			return x.oc.Status == 304 && ok
		},
		fix: func(x *exchange) {
			var kept []field
			for _, f := range x.oc.Fields {
				if !strings.EqualFold(f.Name, "Content-Type") {
					kept = append(kept, f)
				}
			}
			x.oc.Fields = kept
		},
	},
	{
		row:     rowRRetry,
		ocsigen: func(x *exchange) bool { return len(x.oc.Backend) == 1 },
		fix: func(x *exchange) {
			again := *x.oc.Backend[0]
			x.oc.Backend = append(x.oc.Backend, &again)
		},
	},
	{
		row:     rowPTunnel,
		ocsigen: func(x *exchange) bool { return x.oc.Status == 101 && x.oc.Body == "" },
		fix:     func(x *exchange) { x.oc.Body = tunnelBytes },
	},
}

// clientAddrFields are the client-address fields of SPEC section 7 other
// than X-Real-IP and X-Forwarded-Host.
var clientAddrFields = []string{"True-Client-IP", "CF-Connecting-IP", "X-Client-IP", "X-Cluster-Client-IP",
	"Client-IP", "Fastly-Client-IP", "X-Original-Forwarded-For", "Forwarded"}

// establishedClient reads a backend request's X-Forwarded-For as SPEC 7
// writes it (the accepted entries, then the peer): the client is its first
// entry, and the peer was trusted when it has more than one.
func establishedClient(fields []field) (client string, trusted bool) {
	v, ok := headerValue(fields, "X-Forwarded-For")
	if !ok {
		return clientIP, false
	}
	entries := strings.Split(v, ", ")
	return entries[0], len(entries) > 1
}

// lookupRow returns the knownDiff of a row.
func lookupRow(row string) *knownDiff {
	for i := range knownDiffs {
		if knownDiffs[i].row == row {
			return &knownDiffs[i]
		}
	}
	return nil
}

// isProposed reports whether a row is one proposed for SPEC section 8.
func isProposed(row string) bool { return strings.HasPrefix(row, "PROPOSED: ") }

// isReadme reports whether a row is an ocsiproxy decision listed in the
// README's difference table.
func isReadme(row string) bool { return strings.HasPrefix(row, "README: ") }

// queryFix finds the "?" Ocsigen encoded as %3F in the backend target and,
// when apply is set, turns it back into "?". Past that point Ocsigen has
// decoded and re-encoded the query, which loses nothing that matters (`+`
// and %20, %2F and / mean the same in a query): when ocsiproxy's query
// decodes to the same text, it is taken as the spec'd form of Ocsigen's.
func queryFix(x *exchange, apply bool) bool {
	clientPath, _, _ := strings.Cut(requestTarget(x.req), "?")
	skip := strings.Count(strings.ToUpper(clientPath), "%3F")
	found := false
	for i, b := range x.oc.Backend {
		if strings.Contains(b.Target, "?") {
			continue
		}
		at := nthIndex(b.Target, "%3F", skip)
		if at < 0 {
			continue
		}
		found = true
		if !apply {
			continue
		}
		path, query := b.Target[:at], b.Target[at+3:]
		if x.op != nil && i < len(x.op.Backend) {
			if opPath, opQuery, ok := strings.Cut(x.op.Backend[i].Target, "?"); ok && opPath == path && sameQuery(query, opQuery) {
				query = opQuery
			}
		}
		b.Target = path + "?" + query
	}
	return found
}

// nthIndex returns the index of the (n+1)-th occurrence of sub in s, or -1.
func nthIndex(s, sub string, n int) int {
	off := 0
	for {
		i := strings.Index(s[off:], sub)
		if i < 0 {
			return -1
		}
		if n == 0 {
			return off + i
		}
		n--
		off += i + len(sub)
	}
}

// sameQuery reports whether two queries decode to the same text.
func sameQuery(a, b string) bool {
	da, err1 := url.QueryUnescape(a)
	db, err2 := url.QueryUnescape(b)
	return err1 == nil && err2 == nil && da == db
}

// hopByHopNames are the hop-by-hop headers of SPEC 7 (Transfer-Encoding is
// framing and never compared).
var hopByHopNames = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Upgrade"}

// hopByHop lists the hop-by-hop header names of a header block: the fixed
// ones and those its Connection header names.
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

// isUpgrade reports whether the request asks for a real protocol upgrade
// (Upgrade other than h2c), which SPEC 7 tunnels.
// acceptsTrailers reports whether r is an HTTP/1.1 request whose TE
// lists "trailers".
func acceptsTrailers(r *request) bool {
	line, _, _ := strings.Cut(r.raw, "\r\n")
	if !strings.HasSuffix(line, " HTTP/1.1") {
		return false
	}
	for _, v := range headerValues(requestFields(r), "TE") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "trailers") {
				return true
			}
		}
	}
	return false
}

func isUpgrade(r *request) bool {
	v, ok := headerValue(requestFields(r), "Upgrade")
	return ok && !strings.EqualFold(v, "h2c")
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

// expandForCompare expands the placeholders of a request value with
// Ocsigen's ports (they are normalised back by normPorts).
func expandForCompare(s string, x *exchange) string {
	for p, name := range x.oc.Ports {
		s = strings.ReplaceAll(s, name, fmt.Sprint(p))
	}
	return strings.ReplaceAll(s, "{DECOY}", decoyIP)
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

// unlikeWant is the Ocsigen side of a whole-outcome row: Ocsigen does not do
// what the request's want says.
func unlikeWant(x *exchange) bool {
	return x.req.want == nil || wantErr(x.oc, x.req.want) != nil
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
	if w.anyBackend {
		// A streamed body may reach the backend before the proxy gives up.
	} else if w.target == "" {
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
