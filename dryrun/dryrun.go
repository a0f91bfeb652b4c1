// Package dryrun is --dry-run: it shows, for a URL, what the server would
// do with the request, without opening a socket. The request is written
// as bytes into an in-memory connection served by the live server's own
// HTTP/1.1 server (package http1, over TLS with --https) and handler (package engine), so that the parser, the refusals, the
// framing check, the limits and the engine are the live ones; only the
// backend client differs: it records the request instead of sending it.
// The handler's observer traces every decision (rule tried, access
// control, answer) into the [Result].
package dryrun

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ocsiproxy/ocsiproxy/admin"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/forward"
	"github.com/ocsiproxy/ocsiproxy/http1"
	"github.com/ocsiproxy/ocsiproxy/pool"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Request describes a simulated request for --dry-run.
type Request struct {
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
	// Group is, for a request proxied to an upstream group (<upstream
	// name=...>), the group's name: which of its servers the request
	// goes to is decided when it is sent, not in a dry run.
	Group string `json:"group,omitempty"`
	// Server is, for a group balanced by a hash policy, the server (its
	// url) the request goes to when every server is up.
	Server string `json:"server,omitempty"`
}

// Result is the whole dry run of one URL.
type Result struct {
	Request  string      `json:"request"`
	Trace    []TraceLine `json:"trace"`
	Decision Decision    `json:"decision"`
}

// recorder is the Transport of a dry run: it records the request and
// answers with an empty stand-in response.
type recorder struct{ last *wire.Request }

func (r *recorder) Send(req *wire.Request) (*wire.Response, error) {
	r.last = req
	return &wire.Response{StatusCode: http.StatusOK, Status: "200 OK", ProtoMinor: 1, Body: standIn{}, ContentLength: -1}, nil
}

// standIn is the empty body of the recorder's answer ([stage.StandIn]).
type standIn struct{}

func (standIn) Read([]byte) (int, error) { return 0, io.EOF }
func (standIn) Close() error             { return nil }
func (standIn) StandIn()                 {}

// Runner simulates requests on a compiled configuration without
// opening any socket. A request is written as bytes into an in-memory
// connection served by the same HTTP/1.1 server (with HTTPS, over TLS as
// on the live HTTPS ports) and handler as the live server's, so it meets the
// same parser, refusals, framing check, limits and engine; only the
// backend client differs: it records the request instead of sending it.
// A Runner runs one request at a time.
type Runner struct {
	handler *engine.Handler
	h1      *http1.Server
	rec     *recorder
	port    int
	pool    []string
	// groupOf names the upstream group of a backend host ("" for none);
	// hashedServer is the server of a hash-balanced group a request goes
	// to when all are up.
	groupOf      func(host string) string
	hashedServer func(group string, req *wire.Request) (string, bool)
	// tlsConf is the TLS configuration of --https requests, made at the
	// first one.
	tlsConf *tls.Config
	// run is the request being simulated.
	run struct {
		res  *Result
		done chan struct{}
	}
}

// New compiles cfg for dry runs. The backend pool configuration
// is checked too.
func New(cfg *xmlconf.Config, opts engine.Options) (*Runner, error) {
	rec := &recorder{}
	var errs xmlconf.ErrorList
	pc := pool.ParseConfig(cfg, &errs)
	admin.ParseConfig(cfg, &errs) // checked; a dry run opens no listener
	env := &stage.Env{Transport: rec, Forwarded: forward.ParseConfig(cfg, &errs), PathPrefix: pc.PathPrefixFunc()}
	tree, err := engine.Compile(cfg, env, opts)
	if err = errs.With(err); err != nil {
		return nil, err
	}
	port := 80
	if len(cfg.Ports) > 0 {
		port = cfg.Ports[0].Port
	}
	d := &Runner{rec: rec, port: port, pool: pc.Describe(), groupOf: pc.GroupName, hashedServer: pc.HashedServer}
	d.handler = engine.NewHandler(tree, cfg, dryObserver{d})
	maxHeader := int(cfg.NetBufferSize)
	if maxHeader <= 0 {
		maxHeader = http.DefaultMaxHeaderBytes
	}
	d.h1 = http1.NewServer(d.handler, http1.Options{MaxHeaderBytes: maxHeader}, log.New(io.Discard, "", 0))
	return d, nil
}

// Close stops the servers of the dry runs.
func (d *Runner) Close() {
	d.h1.Close()
}

// PoolLines describes the backend pool settings: a line for the <pool>
// defaults and one per <upstream>; none when the configuration has
// neither.
func (d *Runner) PoolLines() []string { return d.pool }

// dryObserver is the handler's observer of a dry run: it traces the
// request's stages into the result of the run and decides when the
// request is answered.
type dryObserver struct{ d *Runner }

func (dryObserver) Done(*stage.State, int, int64, time.Duration, error) {}

func (o dryObserver) Begin(st *stage.State) func(error) {
	d := o.d
	res := d.run.res
	st.Trace = func(pos xmlconf.Pos, msg string) {
		p := ""
		if pos.File != "" {
			p = pos.Short()
		}
		res.Trace = append(res.Trace, TraceLine{Pos: p, Msg: msg})
	}
	d.rec.last = nil
	return func(err error) {
		res.Decision = decide(st, err, d.rec.last)
		if p := d.rec.last; p != nil && res.Decision.Action == "proxy" {
			res.Decision.Group = d.groupOf(p.Backend)
			if res.Decision.Group != "" {
				res.Decision.Server, _ = d.hashedServer(res.Decision.Group, p)
			}
		}
		close(d.run.done)
	}
}

// dryTimeout bounds a dry run: a regexp that runs away is cut by its own
// match timeout long before.
const dryTimeout = 30 * time.Second

// Run simulates dr. The error is about dr itself (a malformed URL or
// header option); what the server would answer, refusals included, is in
// the result.
func (d *Runner) Run(dr Request) (*Result, error) {
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
	head, localPort, secure, err := d.head(method, dr)
	if err != nil {
		return nil, err
	}
	res := &Result{Request: method + " " + dr.URL}
	d.run.res, d.run.done = res, make(chan struct{})
	defer func() { d.run.res = nil }()

	srv, cli := net.Pipe()
	conn := &addrConn{Conn: srv,
		local:  &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: localPort},
		remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(peer, 40000))}
	var client net.Conn = cli
	if secure {
		d.startTLS()
		d.h1.ServeTLS(tls.Server(conn, d.tlsConf), nil, nil)
		client = tls.Client(cli, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	} else {
		d.h1.ServeConn(conn, nil)
	}
	answer := make(chan []byte, 1)
	go func() {
		// The server writes into the pipe only as fast as this reads: a
		// head and the start of a body are kept, the rest dropped.
		var buf bytes.Buffer
		io.Copy(&buf, io.LimitReader(client, 64<<10))
		io.Copy(io.Discard, client)
		answer <- buf.Bytes()
	}()
	go client.Write(head)
	var refusal []byte
	select {
	case <-d.run.done:
	case refusal = <-answer:
		// The connection ended before any handler ran: a refusal of the
		// parser (400, 431, 505...).
	case <-time.After(dryTimeout):
		cli.Close()
		return nil, fmt.Errorf("dry-run: %s: no decision within %v", dr.URL, dryTimeout)
	}
	cli.Close()
	if refusal != nil {
		select {
		case <-d.run.done: // answered by the handler after all
		default:
			res.Decision = refused(refusal)
		}
	}
	return res, nil
}

// head returns the bytes of the request dr describes, the listening port
// it arrives on and whether it arrives over TLS. An absolute URL is sent in
// origin form with its authority as Host, or, when a Host header is given
// too, in absolute form (RFC 9112 section 3.2.2: the authority wins, as
// on the live server); a bare path is sent as HTTP/1.0 without Host
// unless a Host header is given.
func (d *Runner) head(method string, dr Request) (head []byte, localPort int, secure bool, err error) {
	secure = dr.HTTPS
	localPort = dr.LocalPort
	if localPort == 0 {
		localPort = d.port
	}
	var fields strings.Builder
	hasHost := false
	for _, h := range dr.Headers {
		name, _, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, 0, false, fmt.Errorf("dry-run: --header %q: want \"Name: value\"", h)
		}
		if strings.ContainsAny(h, "\r\n") {
			return nil, 0, false, fmt.Errorf("dry-run: --header %q: a line break in a header", h)
		}
		// The line goes as written: "X-Bad : v" is refused as on the wire.
		hasHost = hasHost || strings.EqualFold(strings.TrimSpace(name), "Host")
		fields.WriteString(strings.TrimSpace(h) + "\r\n")
	}
	if strings.ContainsAny(dr.URL, " \t\r\n") {
		return nil, 0, false, fmt.Errorf("dry-run: %q: a URL has no spaces", dr.URL)
	}
	target, proto, host := dr.URL, "HTTP/1.0", ""
	if hasHost {
		proto = "HTTP/1.1"
	}
	if !strings.HasPrefix(dr.URL, "/") {
		u, err := url.Parse(dr.URL)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, 0, false, fmt.Errorf("dry-run: %q: want http://host/path or /path", dr.URL)
		}
		switch p := u.Port(); {
		case p != "":
			localPort, _ = strconv.Atoi(p)
		case u.Scheme == "https":
			localPort = 443
		case dr.LocalPort == 0 && !dr.HTTPS:
			localPort = 80
		}
		secure = secure || u.Scheme == "https"
		proto = "HTTP/1.1"
		if !hasHost {
			host = "Host: " + u.Host + "\r\n"
			target = u.EscapedPath()
			if target == "" {
				target = "/"
			}
			if u.RawQuery != "" || u.ForceQuery {
				target += "?" + u.RawQuery
			}
		}
	}
	return []byte(method + " " + target + " " + proto + "\r\n" + host + fields.String() + "\r\n"), localPort, secure, nil
}

// startTLS makes the TLS configuration of --https requests, with a
// certificate made for the purpose: they are served, as on the live
// HTTPS ports, by the HTTP/1 server's ServeTLS.
func (d *Runner) startTLS() {
	if d.tlsConf != nil {
		return
	}
	d.tlsConf = &tls.Config{Certificates: []tls.Certificate{dryCertificate()}, NextProtos: []string{"http/1.1"}}
}

// dryCertificate returns a self-signed certificate for the TLS of dry
// runs, which never leaves the process.
func dryCertificate() tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ocsiproxy dry run"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// addrConn is one end of an in-memory connection with the addresses of a
// TCP connection.
type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c *addrConn) LocalAddr() net.Addr  { return c.local }
func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

// refused returns the decision of a request the server refused before any
// handler ran, from the answer it wrote.
func refused(answer []byte) Decision {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(answer)), nil)
	if err != nil {
		return Decision{Action: "error", Error: "connection closed without an answer"}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return Decision{Action: "error", Status: resp.StatusCode, Error: strings.TrimSpace(string(body))}
}

// decide turns the outcome of a simulated request into its Decision:
// proxied (to the recorded request), redirected, answered or refused.
func decide(st *stage.State, err error, proxied *wire.Request) Decision {
	if err != nil {
		return Decision{Action: "error", Status: stage.StatusOf(err), Error: err.Error()}
	}
	if st.Answer == nil {
		return Decision{Action: "status", Status: st.Status}
	}
	a := st.Answer
	d := Decision{Status: a.StatusCode, Rule: st.AnswerPos.Short()}
	headers := a.Header.HTTP()
	if len(headers) > 0 {
		d.Headers = headers
	}
	switch {
	case st.AnswerRequest != nil && st.AnswerRequest == proxied:
		d.Action, d.Method, d.Host = "proxy", proxied.Method, proxied.Host
		d.Backend = forward.ForwardingHeaders(proxied.Header.HTTP())
		d.URL = proxied.Scheme + "://" + proxied.Backend + proxied.Target
		if a.StatusCode == http.StatusOK {
			d.Status = 0 // the backend decides
		}
	case a.Header.Get("Location") != "" && a.StatusCode/100 == 3:
		d.Action, d.Location = "redirect", a.Header.Get("Location")
		d.Headers = nil
		if len(headers) > 1 {
			d.Headers = headers
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
		switch {
		case d.Server != "":
			s += fmt.Sprintf(" (group %s: server %s when every server is up)", d.Group, d.Server)
		case d.Group != "":
			s += fmt.Sprintf(" (group %s: its server is chosen when the request is sent)", d.Group)
		}
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
func (r *Result) WriteText(w io.Writer) {
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
