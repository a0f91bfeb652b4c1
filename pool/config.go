package pool

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/youmark/pkcs8"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Strategy chooses the connection ("worker") a request goes to. The names
// are MongooseIM's (worker_pool's).
type Strategy uint8

const (
	// BestWorker sends to the connection with the fewest requests in
	// flight, opening a new one while fewer than Workers are open and
	// every open one is busy. Among idle connections it prefers the one
	// that went idle last (nginx's keepalive cache does the same), so
	// that connections left over from a burst stay idle and reach
	// idle_timeout. It is the default.
	BestWorker Strategy = iota
	// RandomWorker sends to a connection chosen at random among those
	// that can take the request, unopened slots included.
	RandomWorker
	// NextWorker goes round the Workers slots in turn.
	NextWorker
	// AvailableWorker sends to an idle connection (preferring the one
	// that went idle last) and waits when none is idle: it never
	// pipelines.
	AvailableWorker
	// NextAvailableWorker sends to the next idle connection in turn and
	// fails at once (502) when none is idle and no more may be opened:
	// load shedding. It never pipelines.
	NextAvailableWorker
)

var strategyNames = []string{"best_worker", "random_worker", "next_worker", "available_worker", "next_available_worker"}

func (s Strategy) String() string {
	if int(s) < len(strategyNames) {
		return strategyNames[s]
	}
	return "strategy(" + strconv.Itoa(int(s)) + ")"
}

// Never is the value of HOLTimeout and Distrust written "infinity".
const Never = xmlconf.InfiniteDuration

// Settings are the options of the connections to one upstream. A zero
// CallTimeout, RequestTimeout, ConnectTimeout or IdleTimeout means no
// bound ("infinity").
type Settings struct {
	// Workers is the most connections open to the upstream at once
	// (default 1024). Connections are opened when needed, not in advance.
	// The default is high because a request waiting for its response
	// head holds its connection: long polls (Eliom's comet) must not
	// queue behind a small cap.
	Workers int
	// Strategy chooses among them (default BestWorker).
	Strategy Strategy
	// CallTimeout bounds the whole call, from RoundTrip until the
	// response head: waiting for a connection, connecting, sending, and
	// waiting for the backend (default: the server's <timeout>, 30 s).
	// The time spent sending a request body does not count, so uploads
	// are never cut. It fires at most 10 ms late (sweepTick), never early.
	CallTimeout time.Duration
	// RequestTimeout bounds the wait for the response head from the
	// moment the request has been sent (default: the server's
	// <timeout>). It fires at most 10 ms late, never early.
	RequestTimeout time.Duration
	// ConnectTimeout bounds connecting, TLS handshake included (default
	// 10 s).
	ConnectTimeout time.Duration
	// IdleTimeout closes a connection with nothing in flight for that
	// long (default 30 s).
	IdleTimeout time.Duration
	// PipelineDepth is the most requests in flight on one connection;
	// 1 turns pipelining off (default 1, see the package documentation
	// for the measurements behind it).
	PipelineDepth int
	// MaxBuffered is the largest response body, with a Content-Length,
	// that is read whole before the response is handed over (default
	// 64 KiB). Such a response frees its connection at once, whatever
	// the speed of the client reading it, and a backend that breaks
	// in its middle costs a clean retry or 502, never a truncated
	// answer.
	MaxBuffered int64
	// HOLTimeout is how long requests pipelined behind a response whose
	// body is streamed may wait for that body to end before they are
	// sent again on another connection (default 100 ms; Never: they
	// wait).
	HOLTimeout time.Duration
	// Probation is the number of complete, persistent HTTP/1.1
	// responses a connection must give before requests are pipelined
	// on it (default 1).
	Probation int
	// Distrust is how long pipelining to the upstream stays off after a
	// connection carrying pipelined requests was closed by the server
	// without notice or poisoned by a framing error (default 30 s; 0:
	// never off; Never: off for good).
	Distrust time.Duration
	// TLS configures https upstreams.
	TLS TLS
}

// TLS is the <tls> element of an upstream or of <pool>.
type TLS struct {
	// VerifyPeer checks the backend's certificate chain and name
	// (default true).
	VerifyPeer bool
	// CACertFile is a PEM file of the roots to verify against (default:
	// the system roots; SSL_CERT_FILE and SSL_CERT_DIR are honoured).
	CACertFile string
	// CertFile and KeyFile are the PEM client certificate and key
	// (default none). KeyFile defaults to CertFile.
	CertFile, KeyFile string
	// Password decrypts an encrypted PKCS#8 key ("ENCRYPTED PRIVATE
	// KEY"): the password attribute, or the content of PasswordFile
	// without its final line break (default none: the key must not be
	// encrypted). A legacy encrypted PEM key (Proc-Type: 4,ENCRYPTED) is
	// refused, with the openssl command that converts it.
	Password     string
	PasswordFile string
	// MinVersion and MaxVersion are the TLS versions allowed, from
	// versions="tlsv1.2 tlsv1.3" (default Go's: TLS 1.2 and 1.3).
	MinVersion, MaxVersion uint16
	// Ciphers are the TLS 1.2 cipher suites allowed (default Go's);
	// OpenSSL or IANA names. TLS 1.3 suites are not configurable.
	Ciphers []uint16
	// ServerName is the name sent as SNI and checked in the
	// certificate (default: the upstream's host).
	ServerName string
	// NoSNI is server_name_indication="false": no SNI is sent; the
	// certificate is still checked against ServerName or the host.
	NoSNI bool
}

// DefaultSettings returns the built-in defaults; timeout is the server's
// <timeout> (0: no bound).
func DefaultSettings(timeout time.Duration) Settings {
	return Settings{
		Workers:        1024,
		Strategy:       BestWorker,
		CallTimeout:    timeout,
		RequestTimeout: timeout,
		ConnectTimeout: 10 * time.Second,
		IdleTimeout:    30 * time.Second,
		PipelineDepth:  1,
		MaxBuffered:    64 << 10,
		HOLTimeout:     100 * time.Millisecond,
		Probation:      1,
		Distrust:       30 * time.Second,
		TLS:            TLS{VerifyPeer: true},
	}
}

// Upstream is one <upstream url="..."> element: the settings of the
// connections to one scheme, host and port.
type Upstream struct {
	// URL is the url attribute as written.
	URL string
	// Key is "scheme://host:port" with the host in lower case and the
	// port always present.
	Key string
	// PathPrefix is prepended to the path of every request sent to the
	// upstream: the path_prefix attribute, or the path of URL (both
	// percent-encoded as written, without a trailing slash; "" for none,
	// the default).
	PathPrefix string
	Settings   Settings
	Pos        xmlconf.Pos
	tls        *tls.Config
	// group is the name of the group whose servers this upstream
	// configures: its url has no port and its host is a group name.
	group    string
	portless bool // the url has no port
}

// Config is the backend pool configuration: the defaults from <pool>
// (for every upstream not listed) and the listed upstreams.
type Config struct {
	Defaults  Settings
	Upstreams []*Upstream
	// Groups are the <upstream name=...> elements, in document order
	// (see [Group]).
	Groups []*Group
	// Configured reports whether the configuration has a <pool> or an
	// <upstream> element (a group included).
	Configured bool
	// DefaultsPos is the position of <pool>, if any.
	DefaultsPos xmlconf.Pos
	defaultTLS  *tls.Config // without ServerName
}

// settingAttrs are the attributes of <pool> and <upstream> that set
// Settings.
var settingAttrs = []string{"workers", "strategy", "call_timeout", "request_timeout", "connect_timeout",
	"idle_timeout", "pipeline_depth", "max_buffered", "hol_timeout", "probation", "distrust"}

var tlsAttrs = []string{"verify_peer", "cacertfile", "certfile", "keyfile", "password", "password_file", "versions", "ciphers", "server_name_indication"}

// ParseConfig reads the <pool> and <upstream> children of the revproxy
// and routes <extension> elements of cfg: both extensions share one set
// of pools, so one <pool> sets the defaults for both (a second <pool>,
// in either element, is an error naming both positions) and an upstream
// is configured once. Every problem, a TLS file that cannot be loaded
// included, goes into errs with its position. An <upstream name=...> is
// a group of servers (see [Group]). Inside the revproxy
// element, any child but <pool>, <upstream> and <forwarded> is an error;
// the routes element's other children are checked by routes.Configure.
//
//	<extension findlib-package="ocsigenserver.ext.revproxy">
//	  <pool workers="16" pipeline_depth="4"/>
//	  <upstream url="https://api:8443" workers="4" call_timeout="5s">
//	    <tls cacertfile="/etc/ssl/api-ca.pem" versions="tlsv1.2 tlsv1.3"/>
//	  </upstream>
//	</extension>
func ParseConfig(cfg *xmlconf.Config, errs *xmlconf.ErrorList) Config {
	c := Config{Defaults: DefaultSettings(cfg.Timeout)}
	var poolElem *xmlconf.Element
	var upstreams, groups []*xmlconf.Element
	for _, ext := range cfg.Extensions {
		short, _ := ext.ShortName()
		if ext.Element == nil || short != "revproxy" && short != "routes" {
			continue
		}
		for _, e := range ext.Element.Children {
			switch e.Name {
			case "pool":
				if poolElem != nil {
					errs.Add(e.Pos, "<pool>: only one is allowed, in the revproxy or the routes <extension> (the first is at %s)", poolElem.Pos)
					continue
				}
				poolElem = e
			case "upstream":
				if _, named := e.Attr("name"); named {
					groups = append(groups, e)
				} else {
					upstreams = append(upstreams, e)
				}
			case "forwarded":
				// Read by forward.ParseConfig (revproxy); a routes
				// <extension> child reported by routes.Configure.
			default:
				if short == "revproxy" {
					errs.Add(e.Pos, "unknown element <%s> in the revproxy <extension> (want <pool>, <upstream> or <forwarded>)", e.Name)
				}
			}
		}
	}
	c.Configured = poolElem != nil || len(upstreams) > 0 || len(groups) > 0
	var defaultTLSElem *xmlconf.Element
	if poolElem != nil {
		c.DefaultsPos = poolElem.Pos
		if poolElem.CheckAttrs(errs, nil, settingAttrs) {
			applySettings(poolElem, &c.Defaults, errs)
		}
		defaultTLSElem = tlsChild(poolElem, errs)
		if defaultTLSElem != nil && !applyTLS(defaultTLSElem, &c.Defaults.TLS, errs) {
			// Reported: the defaults keep Go's TLS settings.
			c.Defaults.TLS = DefaultSettings(0).TLS
		}
	}
	var err error
	if c.defaultTLS, err = buildTLS(&c.Defaults.TLS); err != nil {
		pos := c.DefaultsPos
		if defaultTLSElem != nil {
			pos = defaultTLSElem.Pos
		}
		errs.Add(pos, "<tls>: %v", err)
	}
	seen := map[string]*Upstream{}
	for _, e := range upstreams {
		if !e.CheckAttrs(errs, []string{"url"}, append([]string{"path_prefix"}, settingAttrs...)) {
			continue
		}
		raw, _ := e.Attr("url")
		key, host, prefix, err := upstreamKey(raw)
		if err != nil {
			errs.Add(e.Pos, "<upstream>: url %q: %v", raw, err)
			continue
		}
		if v, ok := e.Attr("path_prefix"); ok {
			if prefix != "" {
				errs.Add(e.Pos, "<upstream>: path_prefix=%q: the url has a path already (%q); give one or the other", v, prefix)
				continue
			}
			if prefix, err = parsePathPrefix(v); err != nil {
				errs.Add(e.Pos, "<upstream>: path_prefix=%q: %v", v, err)
				continue
			}
		}
		if prev := seen[key]; prev != nil {
			errs.Add(e.Pos, "<upstream>: %s is already configured at %s", key, prev.Pos)
			continue
		}
		up := &Upstream{URL: raw, Key: key, PathPrefix: prefix, Settings: c.Defaults, Pos: e.Pos, portless: hasNoPort(raw)}
		seen[key] = up
		applySettings(e, &up.Settings, errs)
		te := tlsChild(e, errs)
		if te != nil {
			if !strings.HasPrefix(key, "https:") {
				errs.Add(te.Pos, "<tls>: %s is not an https upstream", key)
				continue
			}
			if !applyTLS(te, &up.Settings.TLS, errs) {
				continue
			}
		}
		if strings.HasPrefix(key, "https:") {
			pos := e.Pos
			if te != nil {
				pos = te.Pos
			}
			if up.tls, err = buildTLS(&up.Settings.TLS); err != nil {
				errs.Add(pos, "<tls>: %v", err)
				continue
			}
			setServerName(up.tls, &up.Settings.TLS, host)
		}
		c.Upstreams = append(c.Upstreams, up)
	}
	c.parseGroups(groups, errs)
	return c
}

// tlsChild returns the <tls> child of e, reporting any other child.
func tlsChild(e *xmlconf.Element, errs *xmlconf.ErrorList) *xmlconf.Element {
	var t *xmlconf.Element
	for _, ch := range e.Children {
		switch {
		case ch.Name != "tls":
			errs.Add(ch.Pos, "<%s>: unknown element <%s> (want <tls>)", e.Name, ch.Name)
		case t != nil:
			errs.Add(ch.Pos, "<%s>: only one <tls> is allowed", e.Name)
		default:
			t = ch
		}
	}
	if t != nil && !t.CheckAttrs(errs, nil, tlsAttrs) {
		return nil
	}
	return t
}

// upstreamKey checks an upstream URL (http or https, a host, an optional
// port and path, no query or user) and returns its key, its host and its
// path as a path prefix.
func upstreamKey(raw string) (key, host, prefix string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", "", "", fmt.Errorf("want http://host[:port][/path] or https://host[:port][/path]")
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return "", "", "", fmt.Errorf("want only a scheme, a host, a port and a path")
	}
	key, host, ok := normalize(scheme, u.Host)
	if !ok {
		return "", "", "", fmt.Errorf("bad host or port %q", u.Host)
	}
	if prefix, err = parsePathPrefix(u.EscapedPath()); err != nil {
		return "", "", "", err
	}
	return key, host, prefix, nil
}

// parsePathPrefix checks a path prefix ("/api", percent-encoded as it is
// to be sent) and returns it without its trailing slashes: "" for "" or
// "/".
func parsePathPrefix(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("want a path beginning with \"/\"")
	}
	if strings.ContainsAny(p, "?#") || httpsyntax.HasSpaceOrCRLF(p) || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", fmt.Errorf("want a path without query, fragment, spaces or control characters")
	}
	if _, err := url.PathUnescape(p); err != nil {
		return "", err
	}
	return strings.TrimRight(p, "/"), nil
}

// PathPrefixFunc returns the function that gives the path prefix of the
// upstream a request goes to, from its URL's scheme ("http" or "https")
// and host[:port]: the PathPrefix of the <upstream> with that key, ""
// for none (an <upstream> that configures a group, its url a group name
// without port, gives its prefix only to a host without port: a request
// to the group). It returns nil when no upstream has a path prefix.
func (c *Config) PathPrefixFunc() func(scheme, hostport string) string {
	prefixes := map[string]string{}
	groups := map[string]bool{} // keys of the upstreams that configure a group
	for _, u := range c.Upstreams {
		if u.PathPrefix != "" {
			prefixes[u.Key] = u.PathPrefix
			if u.group != "" {
				groups[u.Key] = true
			}
		}
	}
	if len(prefixes) == 0 {
		return nil
	}
	return func(scheme, hostport string) string {
		key, _, ok := normalize(strings.ToLower(scheme), hostport)
		if !ok {
			return ""
		}
		if groups[key] && strings.IndexByte(hostport, ':') >= 0 {
			// With a port, the host is not the group.
			return ""
		}
		return prefixes[key]
	}
}

// normalize returns the key "scheme://host:port" of hostport (host in
// lower case, default port added) and the bare host.
func normalize(scheme, hostport string) (key, host string, ok bool) {
	host, port := hostport, ""
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.Contains(hostport[i:], "]") {
		host, port = hostport[:i], hostport[i+1:]
	}
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 || port[0] == '+' {
		return "", "", false
	}
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return "", "", false
		}
		host = host[1 : len(host)-1]
		if net.ParseIP(host) == nil {
			return "", "", false
		}
	}
	if host == "" || strings.ContainsAny(host, " /?#@[]\\\r\n\t") {
		return "", "", false
	}
	host = strings.ToLower(host)
	return scheme + "://" + net.JoinHostPort(host, port), host, true
}

// applySettings reads the <pool> or <upstream> attributes of e into s.
func applySettings(e *xmlconf.Element, s *Settings, errs *xmlconf.ErrorList) {
	for _, a := range e.Attrs {
		bad := func(want string) { errs.Add(e.Pos, "<%s>: %s=%q: want %s", e.Name, a.Name, a.Value, want) }
		switch a.Name {
		case "workers":
			if n, ok := intIn(a.Value, 1, 100000); ok {
				s.Workers = n
			} else {
				bad("a number of connections from 1 to 100000")
			}
		case "strategy":
			found := false
			for i, name := range strategyNames {
				if a.Value == name {
					s.Strategy, found = Strategy(i), true
				}
			}
			if !found {
				bad(strings.Join(strategyNames, ", ") + " or " + strategyNames[len(strategyNames)-1])
			}
		case "call_timeout", "request_timeout", "connect_timeout", "idle_timeout":
			d, ok := xmlconf.ParseDuration(a.Value)
			if !ok || d == 0 {
				bad(`a duration ("5000" milliseconds, "5s", "500ms") or "infinity"`)
				continue
			}
			if d == Never {
				d = 0
			}
			switch a.Name {
			case "call_timeout":
				s.CallTimeout = d
			case "request_timeout":
				s.RequestTimeout = d
			case "connect_timeout":
				s.ConnectTimeout = d
			default:
				s.IdleTimeout = d
			}
		case "hol_timeout", "distrust":
			d, ok := xmlconf.ParseDuration(a.Value)
			if !ok {
				bad(`a duration ("100" milliseconds, "100ms", "1s", "0") or "infinity"`)
				continue
			}
			if a.Name == "hol_timeout" {
				s.HOLTimeout = d
			} else {
				s.Distrust = d
			}
		case "pipeline_depth":
			if n, ok := intIn(a.Value, 1, 1024); ok {
				s.PipelineDepth = n
			} else {
				bad("a number of requests from 1 (no pipelining) to 1024")
			}
		case "probation":
			if n, ok := intIn(a.Value, 0, 1000000); ok {
				s.Probation = n
			} else {
				bad("a number of responses from 0")
			}
		case "max_buffered":
			n, err := xmlconf.ParseSize(a.Value)
			if err != nil || n < 0 || n > 64<<20 {
				bad(`a size up to 64MiB ("64kiB")`)
				continue
			}
			s.MaxBuffered = int64(n)
		}
	}
}

// applyTLS reads the attributes of a <tls> element into t. It returns
// false if it reported a problem.
func applyTLS(e *xmlconf.Element, t *TLS, errs *xmlconf.ErrorList) bool {
	ok := true
	for _, a := range e.Attrs {
		bad := func(want string) { errs.Add(e.Pos, "<tls>: %s=%q: %s", a.Name, a.Value, want); ok = false }
		switch a.Name {
		case "verify_peer":
			switch a.Value {
			case "true":
				t.VerifyPeer = true
			case "false":
				t.VerifyPeer = false
			default:
				bad(`want "true" or "false"`)
			}
		case "cacertfile":
			t.CACertFile = a.Value
		case "certfile":
			t.CertFile = a.Value
		case "keyfile":
			t.KeyFile = a.Value
		case "password":
			if _, both := e.Attr("password_file"); both {
				bad(`give password or password_file, not both`)
				continue
			}
			t.Password, t.PasswordFile = a.Value, ""
		case "password_file":
			b, err := os.ReadFile(a.Value)
			if err != nil {
				bad(err.Error())
				continue
			}
			t.Password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
			t.PasswordFile = a.Value
		case "versions":
			lo, hi, err := parseVersions(a.Value)
			if err != nil {
				bad(err.Error())
				continue
			}
			t.MinVersion, t.MaxVersion = lo, hi
		case "ciphers":
			cs, err := parseCiphers(a.Value)
			if err != nil {
				bad(err.Error())
				continue
			}
			t.Ciphers = cs
		case "server_name_indication":
			switch v := strings.TrimSpace(a.Value); v {
			case "true", "default":
				t.NoSNI, t.ServerName = false, ""
			case "false", "disable":
				t.NoSNI = true
			default:
				if v == "" || strings.ContainsAny(v, " /:\t") {
					bad(`want "true", "false" or a host name`)
					continue
				}
				t.NoSNI, t.ServerName = false, v
			}
		}
	}
	return ok
}

func intIn(s string, lo, hi int) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	return n, err == nil && n >= lo && n <= hi
}

var tlsVersions = map[string]uint16{
	"tlsv1": tls.VersionTLS10, "tlsv1.0": tls.VersionTLS10, "tlsv1.1": tls.VersionTLS11,
	"tlsv1.2": tls.VersionTLS12, "tlsv1.3": tls.VersionTLS13,
}

func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "tlsv1"
	case tls.VersionTLS11:
		return "tlsv1.1"
	case tls.VersionTLS12:
		return "tlsv1.2"
	case tls.VersionTLS13:
		return "tlsv1.3"
	}
	return "default"
}

// parseVersions reads "tlsv1.2 tlsv1.3" (spaces or commas): the lowest
// and highest versions named. Go's TLS takes a range of versions, so a
// list that leaves out a version between two it names ("tlsv1
// tlsv1.3") is refused rather than widened.
func parseVersions(s string) (lo, hi uint16, err error) {
	named := map[uint16]bool{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == ':' }) {
		v, ok := tlsVersions[strings.ToLower(f)]
		if !ok {
			return 0, 0, fmt.Errorf("unknown version %q (want tlsv1, tlsv1.1, tlsv1.2, tlsv1.3)", f)
		}
		named[v] = true
		if lo == 0 || v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	if lo == 0 {
		return 0, 0, fmt.Errorf("no version")
	}
	for v := lo; v <= hi; v++ {
		if !named[v] {
			return 0, 0, fmt.Errorf("%s is left out between %s and %s: Go's TLS takes a range of versions, so list every version from the lowest to the highest", versionName(v), versionName(lo), versionName(hi))
		}
	}
	return lo, hi, nil
}

// opensslCiphers maps OpenSSL's names of the TLS 1.2 suites Go implements
// to Go's (IANA) names.
var opensslCiphers = map[string]string{
	"ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"ECDHE-RSA-AES128-GCM-SHA256":   "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"ECDHE-RSA-AES256-GCM-SHA384":   "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	"ECDHE-RSA-CHACHA20-POLY1305":   "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	"ECDHE-ECDSA-AES128-SHA":        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
	"ECDHE-RSA-AES128-SHA":          "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
	"ECDHE-ECDSA-AES256-SHA":        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
	"ECDHE-RSA-AES256-SHA":          "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
	"ECDHE-ECDSA-AES128-SHA256":     "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
	"ECDHE-RSA-AES128-SHA256":       "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
	"AES128-GCM-SHA256":             "TLS_RSA_WITH_AES_128_GCM_SHA256",
	"AES256-GCM-SHA384":             "TLS_RSA_WITH_AES_256_GCM_SHA384",
	"AES128-SHA":                    "TLS_RSA_WITH_AES_128_CBC_SHA",
	"AES256-SHA":                    "TLS_RSA_WITH_AES_256_CBC_SHA",
	"AES128-SHA256":                 "TLS_RSA_WITH_AES_128_CBC_SHA256",
	"DES-CBC3-SHA":                  "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
	"ECDHE-RSA-DES-CBC3-SHA":        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
}

// parseCiphers reads a list of cipher suite names separated by colons,
// commas or spaces, in OpenSSL's spelling or IANA's. TLS 1.3 suite names
// are accepted and have no effect (Go does not let them be chosen).
func parseCiphers(s string) ([]uint16, error) {
	byName := map[string]uint16{}
	for _, c := range tls.CipherSuites() {
		byName[c.Name] = c.ID
	}
	for _, c := range tls.InsecureCipherSuites() {
		byName[c.Name] = c.ID
	}
	var ids []uint16
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		name := f
		if iana, ok := opensslCiphers[strings.ToUpper(f)]; ok {
			name = iana
		}
		switch name {
		case "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256":
			continue
		}
		id, ok := byName[strings.ToUpper(name)]
		if !ok {
			return nil, fmt.Errorf("unknown cipher suite %q (want OpenSSL names such as ECDHE-RSA-AES128-GCM-SHA256, or IANA names)", f)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 && strings.TrimSpace(s) != "" && !strings.Contains(s, "TLS_") {
		return nil, fmt.Errorf("no cipher suite")
	}
	return ids, nil
}

// buildTLS returns the client TLS configuration of t, with its files
// loaded, but no server name yet.
func buildTLS(t *TLS) (*tls.Config, error) {
	c := &tls.Config{
		InsecureSkipVerify: !t.VerifyPeer,
		MinVersion:         t.MinVersion,
		MaxVersion:         t.MaxVersion,
		CipherSuites:       t.Ciphers,
		NextProtos:         []string{"http/1.1"},
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
	}
	if t.CACertFile != "" {
		pem, err := os.ReadFile(t.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("cacertfile: %v", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cacertfile %q: no PEM certificate in it", t.CACertFile)
		}
		c.RootCAs = roots
	}
	if t.Password != "" && t.CertFile == "" {
		return nil, fmt.Errorf("password without certfile and keyfile")
	}
	if t.CertFile != "" || t.KeyFile != "" {
		if t.CertFile == "" {
			return nil, fmt.Errorf("keyfile without certfile")
		}
		key := t.KeyFile
		if key == "" {
			key = t.CertFile
		}
		cert, err := loadKeyPair(t.CertFile, key, t.Password)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// loadKeyPair loads a client certificate and its key, decrypting an
// encrypted PKCS#8 key with password (github.com/youmark/pkcs8). An
// encrypted key without a password, a password for a key that is not
// encrypted, and a legacy encrypted PEM key are refused with what to do.
func loadKeyPair(certFile, keyFile, password string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certfile: %v", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("keyfile: %v", err)
	}
	var keyBlock *pem.Block
	for rest := keyPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || strings.HasSuffix(b.Type, "PRIVATE KEY") {
			keyBlock = b
			break
		}
	}
	switch {
	case keyBlock == nil:
		// tls.X509KeyPair says what is missing.
	case keyBlock.Headers["Proc-Type"] == "4,ENCRYPTED":
		return tls.Certificate{}, fmt.Errorf("keyfile %q: a legacy encrypted PEM key (Proc-Type: 4,ENCRYPTED) is not supported (its encryption is unauthenticated); "+
			"convert it to encrypted PKCS#8 (openssl pkcs8 -topk8 -v2 aes-256-cbc -in %s -out key.p8) and give password=, or decrypt it (openssl pkey -in %s -out key.pem)",
			keyFile, keyFile, keyFile)
	case keyBlock.Type == "ENCRYPTED PRIVATE KEY" && password == "":
		return tls.Certificate{}, fmt.Errorf("keyfile %q is encrypted: give password= or password_file= in <tls>, or decrypt it (openssl pkey -in %s -out key.pem)", keyFile, keyFile)
	case keyBlock.Type == "ENCRYPTED PRIVATE KEY":
		key, err := pkcs8.ParsePKCS8PrivateKey(keyBlock.Bytes, []byte(password))
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("keyfile %q: %v", keyFile, err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("keyfile %q: %v", keyFile, err)
		}
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	case password != "":
		return tls.Certificate{}, fmt.Errorf("keyfile %q is not encrypted: remove password or password_file", keyFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certfile/keyfile: %v", err)
	}
	return cert, nil
}

// setServerName completes c for an upstream whose host is host: the SNI
// and the name the certificate must carry.
func setServerName(c *tls.Config, t *TLS, host string) {
	name := host
	if t.ServerName != "" {
		name = t.ServerName
	}
	if !t.NoSNI {
		c.ServerName = name
		return
	}
	// No SNI: Go sends the ServerName as SNI, so leave it empty and
	// verify the chain and the name ourselves.
	c.ServerName = ""
	if !t.VerifyPeer {
		return
	}
	roots := c.RootCAs
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("pool: no certificate from the backend")
		}
		opts := x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: x509.NewCertPool()}
		for _, ic := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		_, err := cs.PeerCertificates[0].Verify(opts)
		return err
	}
}

// tlsFor returns the TLS configuration of an upstream that is not
// listed: the defaults with host as server name.
func (c *Config) tlsFor(host string) *tls.Config {
	base := c.defaultTLS
	if base == nil {
		var err error
		if base, err = buildTLS(&c.Defaults.TLS); err != nil {
			base = &tls.Config{NextProtos: []string{"http/1.1"}}
		}
		c.defaultTLS = base
	}
	t := base.Clone()
	setServerName(t, &c.Defaults.TLS, host)
	return t
}

// Describe returns the lines --dry-run prints for the configuration: the
// defaults, one line per upstream, then one per group followed by one per
// server of the group. It returns nothing when the
// configuration has neither <pool> nor <upstream>.
func (c *Config) Describe() []string {
	if !c.Configured {
		return nil
	}
	lines := []string{"pool defaults: " + c.Defaults.describe(false)}
	for _, u := range c.Upstreams {
		line := fmt.Sprintf("upstream %s (%s): ", u.Key, u.Pos.Short())
		if u.PathPrefix != "" {
			line += "path_prefix=" + u.PathPrefix + " "
		}
		lines = append(lines, line+u.Settings.describe(strings.HasPrefix(u.Key, "https:")))
	}
	return append(lines, c.describeGroups()...)
}

// describe writes the settings as --dry-run prints them.
func (s *Settings) describe(https bool) string {
	d := func(v time.Duration) string {
		switch {
		case v == 0:
			return "infinity"
		case v == Never:
			return "infinity"
		}
		return v.String()
	}
	distrust := d(s.Distrust)
	if s.Distrust == 0 {
		distrust = "0"
	}
	hol := d(s.HOLTimeout)
	if s.HOLTimeout == 0 {
		hol = "0"
	}
	line := fmt.Sprintf("workers=%d strategy=%s pipeline_depth=%d call_timeout=%s request_timeout=%s connect_timeout=%s idle_timeout=%s max_buffered=%s hol_timeout=%s probation=%d distrust=%s",
		s.Workers, s.Strategy, s.PipelineDepth, d(s.CallTimeout), d(s.RequestTimeout), d(s.ConnectTimeout), d(s.IdleTimeout),
		sizeString(s.MaxBuffered), hol, s.Probation, distrust)
	if https {
		t := &s.TLS
		line += fmt.Sprintf(" tls: verify_peer=%t", t.VerifyPeer)
		if t.CACertFile != "" {
			line += " cacertfile=" + t.CACertFile
		}
		if t.CertFile != "" {
			line += " certfile=" + t.CertFile
		}
		if t.KeyFile != "" {
			line += " keyfile=" + t.KeyFile
		}
		switch {
		case t.PasswordFile != "":
			line += " password_file=" + t.PasswordFile
		case t.Password != "":
			line += " password=(hidden)"
		}
		if t.MinVersion != 0 {
			line += " versions=" + versionName(t.MinVersion) + ".." + versionName(t.MaxVersion)
		}
		if len(t.Ciphers) > 0 {
			names := make([]string, len(t.Ciphers))
			for i, id := range t.Ciphers {
				names[i] = tls.CipherSuiteName(id)
			}
			line += " ciphers=" + strings.Join(names, ":")
		}
		switch {
		case t.NoSNI:
			line += " server_name_indication=false"
		case t.ServerName != "":
			line += " server_name_indication=" + t.ServerName
		}
	}
	return line
}

// sizeString writes a byte count in the largest binary unit that divides
// it ("64kiB").
func sizeString(n int64) string {
	switch {
	case n != 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n != 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "kiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}
