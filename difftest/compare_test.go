package difftest

import (
	"crypto/sha256"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// outcome is everything observed for one request sent to one server: what
// the client got back and what the backend received.
type outcome struct {
	// Err is set when no complete response came back.
	Err     string
	Proto   string
	Status  int
	Reason  string
	Fields  []field
	Body    string
	Framing framing
	Backend []*backendReq
	// Generated is true when the response was made by the proxy itself (it
	// lacks the backend's X-Recorder marker).
	Generated bool
	// Slow is the duration of a slow round trip (0 if not slow).
	Slow time.Duration
	// Ports maps the port numbers of this run to their placeholder names.
	Ports map[int]string
}

func newOutcome(r *response, b []*backendReq, ports map[int]string) *outcome {
	o := &outcome{Err: r.Err, Proto: r.Proto, Status: r.Status, Reason: r.Reason, Fields: r.Fields,
		Body: string(r.Body), Framing: r.Framing, Backend: b, Ports: ports, Slow: r.Slow}
	_, marked := headerValue(r.Fields, "X-Recorder")
	o.Generated = r.Status != 0 && !marked
	return o
}

// clone returns a deep copy, so known differences can rewrite it.
func (o *outcome) clone() *outcome {
	c := *o
	c.Fields = slices.Clone(o.Fields)
	c.Backend = nil
	for _, b := range o.Backend {
		bc := *b
		bc.Fields = slices.Clone(b.Fields)
		c.Backend = append(c.Backend, &bc)
	}
	return &c
}

// Normalisation. These parts of an outcome are legitimately variable and are
// not compared:
//   - response Date (a clock), and the value of Server when the backend did not
//     send one (only its presence is compared: SPEC 7 says it is added when
//     absent, not what it says);
//   - framing and connection management between client and proxy and between
//     proxy and backend: Content-Length, Transfer-Encoding, Connection and
//     Keep-Alive on the client side, Content-Length, Transfer-Encoding and
//     Connection on the backend side (the decoded bodies are compared byte for
//     byte; how a proxy manages its backend connections is SPEC 9's business;
//     the client's Connection-listed headers and Keep-Alive are still
//     compared);
//   - the body and Content-Type of a response the proxy made itself (error
//     pages, redirect bodies): Ocsigen's HTML is not part of the contract;
//     status and all other headers are compared;
//   - header name case and the order of different header names (values of
//     the same name keep their order);
//   - the port numbers of the run: each server's own port becomes {PORT}, the
//     backend's {BPORT}, the dead port {DOWN};
//   - which connection a backend request arrived on (pooling is SPEC 9).
var (
	ignoredResponseFields = []string{"date", "content-length", "transfer-encoding", "connection", "keep-alive", "x-recorder"}
	ignoredBackendFields  = []string{"content-length", "transfer-encoding", "connection"}
)

var numberRE = regexp.MustCompile(`[0-9]+`)

// normPorts replaces whole numbers that are ports of this run.
func (o *outcome) normPorts(s string) string {
	return numberRE.ReplaceAllStringFunc(s, func(n string) string {
		p, err := strconv.Atoi(n)
		if err == nil {
			if name, ok := o.Ports[p]; ok {
				return name
			}
		}
		return n
	})
}

// sortedFields lower-cases names, drops the ignored ones, and sorts by name
// keeping the order of values of one name.
func sortedFields(fs []field, ignored []string, norm func(string) string) []field {
	var out []field
	for _, f := range fs {
		n := strings.ToLower(f.Name)
		if slices.Contains(ignored, n) {
			continue
		}
		out = append(out, field{n, norm(f.Value)})
	}
	slices.SortStableFunc(out, func(a, b field) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// lines renders the comparable part of an outcome, one fact per line.
func (o *outcome) lines() []string {
	var l []string
	if o.Err != "" && o.Status == 0 {
		l = append(l, "client: no response ("+o.Err+")")
	} else {
		l = append(l, fmt.Sprintf("status %d", o.Status))
		// A proxy that refuses a request may reset the connection right
		// after its error page, while the client is still sending.
		resetAfterError := o.Generated && o.Status >= 400 && strings.HasSuffix(o.Err, "connection reset")
		if o.Err != "" && !resetAfterError {
			l = append(l, "client: incomplete response ("+o.Err+")")
		}
		ignored := ignoredResponseFields
		if o.Generated {
			ignored = append(slices.Clone(ignored), "content-type", "server")
		}
		for _, f := range sortedFields(o.Fields, ignored, o.normPorts) {
			if f.Name == "server" && f.Value != "backend/1.0" {
				f.Value = "<added by the proxy>"
			}
			l = append(l, "resp "+f.Name+": "+f.Value)
		}
		if o.Generated {
			l = append(l, "body <made by the proxy, not compared>")
		} else {
			l = append(l, "body "+showBody(o.normPorts(o.Body)))
		}
	}
	if len(o.Backend) == 0 {
		l = append(l, "backend: not contacted")
	}
	for i, b := range o.Backend {
		p := fmt.Sprintf("backend[%d] ", i)
		l = append(l, p+fmt.Sprintf("listener=%s tls=%v", b.Listener, b.TLS))
		if b.Method != "" {
			l = append(l, p+o.normPorts(b.Method+" "+b.Target+" "+b.Proto))
		}
		if b.Err != "" {
			l = append(l, p+"error: "+b.Err)
		}
		for _, f := range sortedFields(b.Fields, ignoredBackendFields, o.normPorts) {
			l = append(l, p+f.Name+": "+f.Value)
		}
		if b.Method != "" {
			l = append(l, p+"body "+showBody(string(b.Body)))
		}
		for _, f := range sortedFields(b.Trailers, nil, o.normPorts) {
			l = append(l, p+"trailer "+f.Name+": "+f.Value)
		}
	}
	return l
}

// showBody quotes a body, or summarises a long one by length and hash.
func showBody(b string) string {
	if len(b) <= 200 {
		return strconv.Quote(b)
	}
	return fmt.Sprintf("%d bytes, sha256 %x, starting %q", len(b), sha256.Sum256([]byte(b)), b[:40])
}

// details renders what lines leaves out, for the dump file: wire framing,
// status line, connection management, and the Server value.
func (o *outcome) details() []string {
	var l []string
	if o.Status != 0 {
		l = append(l, fmt.Sprintf("(client) %s %d %s, framing %s", o.Proto, o.Status, o.Reason, o.Framing))
		for _, f := range o.Fields {
			switch strings.ToLower(f.Name) {
			case "server", "connection", "keep-alive", "content-length", "transfer-encoding", "date", "content-type":
				l = append(l, "(client) "+f.Name+": "+f.Value)
			}
		}
	}
	for i, b := range o.Backend {
		l = append(l, fmt.Sprintf("(backend[%d]) framing %s, request #%d on its connection", i, b.Framing, b.ConnReq))
		for _, f := range b.Fields {
			switch strings.ToLower(f.Name) {
			case "content-length", "transfer-encoding":
				l = append(l, fmt.Sprintf("(backend[%d]) %s: %s", i, f.Name, f.Value))
			}
		}
	}
	return l
}

// diffLines shows the lines only in a (-) and only in b (+), in order.
func diffLines(a, b []string) string {
	var sb strings.Builder
	// A small LCS; outcomes are a few dozen lines.
	n, m := len(a), len(b)
	dp := make([][]int, n+1)
	for i := range dp {
		dp[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			sb.WriteString("    " + a[i] + "\n")
			i++
			j++
		case j < m && (i == n || dp[i][j+1] >= dp[i+1][j]):
			sb.WriteString("  + " + b[j] + "\n")
			j++
		default:
			sb.WriteString("  - " + a[i] + "\n")
			i++
		}
	}
	return sb.String()
}

// backendHeader returns the named header of backend request i.
func (o *outcome) backendHeader(i int, name string) (string, bool) {
	if i >= len(o.Backend) {
		return "", false
	}
	return headerValue(o.Backend[i].Fields, name)
}

// setBackendHeader replaces (or with value "" and del, deletes) the named
// header of every backend request, in place.
func (o *outcome) setBackendHeader(name, value string, del bool) {
	for _, b := range o.Backend {
		var out []field
		done := false
		for _, f := range b.Fields {
			if strings.EqualFold(f.Name, name) {
				if !del && !done {
					out = append(out, field{f.Name, value})
					done = true
				}
				continue
			}
			out = append(out, f)
		}
		if !del && !done {
			out = append(out, field{name, value})
		}
		b.Fields = out
	}
}
