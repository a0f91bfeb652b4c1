package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/ocsiproxy/ocsiproxy/forward"
	"github.com/ocsiproxy/ocsiproxy/pipeline"
	"github.com/ocsiproxy/ocsiproxy/pool"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// DryRequest describes a simulated request for --dry-run.
type DryRequest struct {
	// URL is "http://host[:port]/path?query" or just "/path?query" (no
	// Host header then, unless Headers gives one).
	URL string
	// Method defaults to GET.
	Method string
	// Headers are "Name: value" lines.
	Headers []string
	// From is the peer address; 127.0.0.1 by default.
	From string
	// HTTPS makes the request arrive over TLS.
	HTTPS bool
	// LocalPort is the listening port when URL names none; the first
	// <port> by default.
	LocalPort int
}

// TraceLine is one decision of a dry run.
type TraceLine struct {
	Pos string `json:"pos,omitempty"` // "file:line" of the element deciding
	Msg string `json:"msg"`
}

// Decision is the outcome of a dry run.
type Decision struct {
	// Action is "proxy", "redirect", "answer" (a generated answer that is
	// not a redirect), "status" (nobody answered) or "error".
	Action   string `json:"action"`
	Status   int    `json:"status,omitempty"`
	Method   string `json:"method,omitempty"`
	URL      string `json:"url,omitempty"`
	Host     string `json:"host,omitempty"`
	Location string `json:"location,omitempty"`
	Error    string `json:"error,omitempty"`
	// Rule is the position of the instruction that answered.
	Rule string `json:"rule,omitempty"`
	// Headers are the answer's headers after the output filters, for a
	// proxied request the headers the filters would add or change on any
	// backend response.
	Headers http.Header `json:"headers,omitempty"`
	// Backend holds, for a proxied request, the forwarding fields the
	// backend receives: X-Forwarded-For, X-Forwarded-Proto, X-Real-IP,
	// and X-Forwarded-Host, Forwarded and the other client-address fields
	// when they are sent (SPEC.md section 7).
	Backend http.Header `json:"backend,omitempty"`
}

// DryResult is the whole dry run of one URL.
type DryResult struct {
	Request  string      `json:"request"`
	Trace    []TraceLine `json:"trace"`
	Decision Decision    `json:"decision"`
}

// recorder is the Transport of a dry run: it records the request and
// answers with an empty stand-in response.
type recorder struct{ last *http.Request }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.last = req
	return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: make(http.Header), Body: http.NoBody, ContentLength: -1, Request: req}, nil
}

// DryRunner simulates requests on a compiled configuration without
// opening any socket.
type DryRunner struct {
	tree *Tree
	rec  *recorder
	port int
	pool []string
}

// NewDryRunner compiles cfg for dry runs. The backend pool configuration
// is checked too.
func NewDryRunner(cfg *xmlconf.Config, opts Options) (*DryRunner, error) {
	rec := &recorder{}
	var errs xmlconf.ErrorList
	pc := pool.ParseConfig(cfg, &errs)
	env := &pipeline.Env{Transport: rec, DryRun: true, Forwarded: forward.ParseConfig(cfg, &errs)}
	tree, err := Compile(cfg, env, opts)
	if err = joinConfigErrors(errs, err); err != nil {
		return nil, err
	}
	port := 80
	if len(cfg.Ports) > 0 {
		port = cfg.Ports[0].Port
	}
	return &DryRunner{tree: tree, rec: rec, port: port, pool: pc.Describe()}, nil
}

// PoolLines describes the backend pool settings: a line for the <pool>
// defaults and one per <upstream>; none when the configuration has
// neither.
func (d *DryRunner) PoolLines() []string { return d.pool }

type addrOnly string

func (a addrOnly) Network() string { return "tcp" }
func (a addrOnly) String() string  { return string(a) }

// Run simulates dr.
func (d *DryRunner) Run(dr DryRequest) (*DryResult, error) {
	method := dr.Method
	if method == "" {
		method = http.MethodGet
	}
	from := dr.From
	if from == "" {
		from = "127.0.0.1"
	}
	peer, err := netip.ParseAddr(from)
	if err != nil {
		return nil, fmt.Errorf("dry-run: --from %q: not an IP address", from)
	}
	target, hostHdr := dr.URL, ""
	localPort := dr.LocalPort
	if localPort == 0 {
		localPort = d.port
	}
	if !strings.HasPrefix(target, "/") {
		u, err := url.Parse(dr.URL)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("dry-run: %q: want http://host/path or /path", dr.URL)
		}
		hostHdr = u.Host
		if p := u.Port(); p != "" {
			localPort, _ = strconv.Atoi(p)
		} else if u.Scheme == "https" {
			localPort = 443
		} else if dr.LocalPort == 0 && !dr.HTTPS {
			localPort = 80
		}
		if u.Scheme == "https" {
			dr.HTTPS = true
		}
		target = u.EscapedPath()
		if target == "" {
			target = "/"
		}
		if u.RawQuery != "" || u.ForceQuery {
			target += "?" + u.RawQuery
		}
	}
	req, err := http.ReadRequest(bufioReader(method + " " + target + " HTTP/1.1\r\nHost: " + hostHdr + "\r\n\r\n"))
	if err != nil {
		return nil, fmt.Errorf("dry-run: %q: %v", dr.URL, err)
	}
	if hostHdr == "" {
		req.Host = ""
		req.Proto, req.ProtoMinor = "HTTP/1.0", 0
	}
	for _, h := range dr.Headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("dry-run: --header %q: want \"Name: value\"", h)
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if strings.EqualFold(name, "Host") {
			req.Host = value
			req.Proto, req.ProtoMinor = "HTTP/1.1", 1
			continue
		}
		req.Header.Add(name, value)
	}
	req.RemoteAddr = netip.AddrPortFrom(peer, 40000).String()
	if dr.HTTPS {
		req.TLS = &tls.ConnectionState{}
	}
	ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, net.Addr(addrOnly(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(localPort)).String())))
	req = req.WithContext(ctx)

	res := &DryResult{Request: method + " " + dr.URL}
	st, err := NewState(req, d.tree.env)
	trace := func(pos xmlconf.Pos, msg string) {
		p := ""
		if pos.File != "" {
			p = pos.Short()
		}
		res.Trace = append(res.Trace, TraceLine{Pos: p, Msg: msg})
	}
	if err == nil {
		st.Trace = trace
		d.rec.last = nil
		err = d.tree.Process(ctx, st)
	}
	res.Decision = decide(st, err, d.rec.last)
	return res, nil
}

func decide(st *pipeline.State, err error, proxied *http.Request) Decision {
	if err != nil {
		return Decision{Action: "error", Status: pipeline.StatusOf(err), Error: err.Error()}
	}
	if st.Answer == nil {
		return Decision{Action: "status", Status: st.Status}
	}
	a := st.Answer
	d := Decision{Status: a.StatusCode, Rule: st.AnswerPos.Short()}
	if len(a.Header) > 0 {
		d.Headers = a.Header
	}
	switch {
	case a.Request != nil && a.Request == proxied:
		d.Action, d.Method, d.Host = "proxy", proxied.Method, proxied.Host
		d.Backend = forward.ForwardingHeaders(proxied.Header)
		d.URL = proxied.URL.Scheme + "://" + proxied.URL.Host + proxied.URL.RequestURI()
		if a.StatusCode == http.StatusOK {
			d.Status = 0 // the backend decides
		}
	case a.Header.Get("Location") != "" && a.StatusCode/100 == 3:
		d.Action, d.Location = "redirect", a.Header.Get("Location")
		d.Headers = nil
		if len(a.Header) > 1 {
			d.Headers = a.Header
		}
	default:
		d.Action = "answer"
	}
	return d
}

// String formats a decision for people: "proxy GET http://b:8080/x?y
// Host: b:8080", "redirect 301 Location: ...", "404".
func (d Decision) String() string {
	var s string
	switch d.Action {
	case "proxy":
		s = fmt.Sprintf("proxy %s %s Host: %s", d.Method, d.URL, d.Host)
		if d.Status != 0 {
			s += fmt.Sprintf(" (status set to %d)", d.Status)
		}
	case "redirect":
		s = fmt.Sprintf("redirect %d Location: %s", d.Status, d.Location)
	case "answer":
		s = fmt.Sprintf("answer %d", d.Status)
	case "status":
		s = strconv.Itoa(d.Status)
	case "error":
		s = fmt.Sprintf("%d (%s)", d.Status, d.Error)
	}
	if d.Rule != "" {
		s += " [" + d.Rule + "]"
	}
	return s
}

// WriteText writes r for people.
func (r *DryResult) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s\n", r.Request)
	for _, t := range r.Trace {
		if t.Pos != "" {
			fmt.Fprintf(w, "  %s: %s\n", t.Pos, t.Msg)
		} else {
			fmt.Fprintf(w, "  %s\n", t.Msg)
		}
	}
	fmt.Fprintf(w, "  => %s\n", r.Decision)
	for _, k := range slices.Sorted(maps.Keys(r.Decision.Backend)) {
		for _, v := range r.Decision.Backend[k] {
			fmt.Fprintf(w, "     backend gets %s: %s\n", k, v)
		}
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
