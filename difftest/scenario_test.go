package difftest

import (
	"strconv"
	"strings"
)

// scenario is one config and the requests sent to both servers running it.
type scenario struct {
	name string
	spec string // the SPEC sections it exercises
	// server is XML put inside <server> before the hosts; hosts holds the
	// <host> elements. config, when set, is the whole file instead of
	// configTemplate. Placeholders: see vars.expand.
	server, hosts, config string
	// extconf maps file names to the content of the {DIR}/extconf directory.
	extconf map[string]string
	// refuse says Ocsigen refuses the config: it exits non-zero without
	// listening, and ocsiproxy must do the same.
	refuse bool
	// startRow names the start-up row of a config Ocsigen runs and SPEC
	// requires ocsiproxy to refuse (see knownDiff.startup).
	startRow string
	// poolCheck checks the no-pooling row over the whole scenario: Ocsigen
	// opens one backend connection per request, ocsiproxy reuses some.
	poolCheck bool
	reqs      []*request
}

// request is one raw HTTP request (CRLF line ends, placeholders expanded
// per server) and what the harness knows about it.
type request struct {
	raw  string
	note string
	// rows are the SPEC section 8 rows this request is a witness of: Ocsigen
	// must show the bug, and non-automatic rows apply only where named.
	rows []string
	// want is what SPEC requires of ocsiproxy, for rows that replace a whole
	// outcome (a 500 of Ocsigen's cannot be rewritten into the right answer).
	want *want
	// slowOK says a slow answer is expected (timeouts).
	slowOK bool
}

// want describes the outcome SPEC requires when Ocsigen's is unusable.
type want struct {
	status int
	// target is the request target the backend must receive; "" means the
	// backend must not be contacted, unless anyBackend says it may be.
	target     string
	anyBackend bool
	// headers the backend must receive with these exact values
	// ("" value: must be absent).
	backend map[string]string
	// location is the Location the client must get, if set.
	location string
}

// defaultHost is the Host header of requests that do not set one.
const defaultHost = "test.example"

// build makes a raw request. Header lines are "Name: value"; "-Host" and
// "-User-Agent" drop the default Host (test.example) and User-Agent
// (difftest), "Host: x" replaces it. The body, if any, follows a line "".
func build(method, target, proto string, lines ...string) *request {
	host, ua := "Host: "+defaultHost, "User-Agent: difftest"
	var hdrs []string
	body, hasBody := "", false
	for i, l := range lines {
		switch {
		case l == "":
			body, hasBody = strings.Join(lines[i+1:], "\r\n"), true
		case strings.EqualFold(l, "-Host"):
			host = ""
		case strings.EqualFold(l, "-User-Agent"):
			ua = ""
		case len(l) > 5 && strings.EqualFold(l[:5], "Host:"):
			host = l
		default:
			hdrs = append(hdrs, l)
		}
		if hasBody {
			break
		}
	}
	var sb strings.Builder
	sb.WriteString(method + " " + target + " " + proto + "\r\n")
	if host != "" {
		sb.WriteString(host + "\r\n")
	}
	if ua != "" {
		sb.WriteString(ua + "\r\n")
	}
	chunked := false
	for _, h := range hdrs {
		sb.WriteString(h + "\r\n")
		if strings.HasPrefix(strings.ToLower(h), "transfer-encoding:") {
			chunked = true
		}
	}
	if hasBody && !chunked {
		sb.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	sb.WriteString("\r\n")
	sb.WriteString(body)
	return &request{raw: sb.String()}
}

// get builds "GET target HTTP/1.1" with the default Host and User-Agent.
func get(target string, lines ...string) *request { return build("GET", target, "HTTP/1.1", lines...) }

// raw takes a request verbatim; "\n" line ends become CRLF.
func raw(s string) *request {
	return &request{raw: strings.ReplaceAll(s, "\n", "\r\n")}
}

func (r *request) withNote(n string) *request      { r.note = n; return r }
func (r *request) witness(rows ...string) *request { r.rows = append(r.rows, rows...); return r }
func (r *request) wants(w want) *request           { r.want = &w; return r }
func (r *request) slow() *request                  { r.slowOK = true; return r }

// proxyAll is the host used by many scenarios: everything to the backend.
const proxyAll = `<host hostfilter="*" defaulthostname="dflt.example">
      <revproxy suburl="(.*)" dest="http://{B}/\1"/>
    </host>`

// scenarios returns every scenario, in the order of the SPEC sections.
func scenarios() []*scenario {
	var all []*scenario
	for _, group := range [][]*scenario{
		configScenarios(), hostScenarios(), ruleScenarios(), filterScenarios(),
		accessScenarios(), forwardingScenarios(), limitScenarios(), refusedScenarios(),
	} {
		all = append(all, group...)
	}
	return all
}
