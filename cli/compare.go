package cli

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ocsiproxy/ocsiproxy/dryrun"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// logRequest is one request read from an argument or a line of input:
// a URL, or a line of an access log.
type logRequest struct {
	Method string
	// Target is an absolute URL, or a path with its query when the log
	// line did not say which host the request was for.
	Target string
	// Host is the host the log line names ("" when it names none).
	Host string
	// From is the client address the log line names ("" when none).
	From string
	// XFF is the X-Forwarded-For the log line names ("" when none).
	XFF string
}

// combinedLine matches a line of the Combined Log Format (nginx's and
// Apache's access.log, ocsiproxy's own, which adds rule= and ms=): the
// client, identity, user, [time], then the quoted request line, in which
// a quote is escaped (\" in ocsiproxy's, \x22 in nginx's).
var combinedLine = regexp.MustCompile(`^(\S+) \S+ \S+ \[[^\]]*\] "((?:[^"\\]|\\.)*)" `)

// ocsigenLine matches a line of Ocsigen Server's own access.log, as
// 5.0.1 writes it: "Dec  5 14:17:00: ocsigen:access: connection for
// HOST from IP (USER-AGENT)[ X-Forwarded-For: ...]: PATH".
var ocsigenLine = regexp.MustCompile(`ocsigen:access: connection for (\S+|<host not specified in the request>) from (\S+) \(.*?\)(?: X-Forwarded-For: (.*))?: (\S*)$`)

// parseLogLine reads one line of input for --compare: an access-log line
// of one of the formats above, or a URL (http://host/path or /path).
// It reports false for a line that is neither, such as the garbage
// request line of a 400 in a Combined log.
func parseLogLine(line string) (logRequest, bool) {
	if m := ocsigenLine.FindStringSubmatch(line); m != nil {
		r := logRequest{Method: "GET", Target: m[4], From: m[2], XFF: m[3]}
		if !strings.HasPrefix(m[1], "<") {
			r.Host = m[1]
		}
		return r, strings.HasPrefix(r.Target, "/")
	}
	if m := combinedLine.FindStringSubmatch(line); m != nil {
		req := m[2]
		if u, err := strconv.Unquote(`"` + req + `"`); err == nil {
			req = u
		}
		f := strings.Split(req, " ")
		if len(f) != 3 || f[0] == "" || !strings.HasPrefix(f[2], "HTTP/") ||
			!(strings.HasPrefix(f[1], "/") || strings.HasPrefix(f[1], "http://") || strings.HasPrefix(f[1], "https://")) {
			return logRequest{}, false
		}
		return logRequest{Method: f[0], Target: f[1], From: m[1]}, true
	}
	if strings.ContainsAny(line, " \t") {
		return logRequest{}, false
	}
	if strings.HasPrefix(line, "/") || strings.HasPrefix(line, "http://") || strings.HasPrefix(line, "https://") {
		return logRequest{Target: line}, true
	}
	return logRequest{}, false
}

// sameDecision reports whether two configurations decided alike: the
// same action, status, backend request (method, URL, Host, forwarding
// fields), Location and answer headers. The answering rules' positions
// are not compared (they differ between two files); errors are compared
// by status, since their text can name positions.
func sameDecision(a, b dryrun.Decision) bool {
	if a.Action == "error" || b.Action == "error" {
		return a.Action == b.Action && a.Status == b.Status
	}
	a.Rule, b.Rule = "", ""
	return reflect.DeepEqual(a, b)
}

// compareRow is one distinct request of --compare and what each
// configuration decides.
type compareRow struct {
	Request string          `json:"request"`
	From    string          `json:"from"`
	XFF     string          `json:"x_forwarded_for,omitempty"`
	Count   int             `json:"count"` // how many times the input has it
	Old     dryrun.Decision `json:"old"`
	New     dryrun.Decision `json:"new"`
	req     dryrun.Request
	same    bool
}

// compare runs --compare: every request of urls (or of the lines of
// stdin, URLs or access-log lines) through the dry runners of cfg (the
// new configuration, -c) and of the configuration file oldFile, and
// prints each distinct request whose decisions differ, with both
// decisions and their rules, then a summary line. The exit status is 0
// when every request got the same decision from both, 1 otherwise (and
// when a configuration does not load).
func compare(o *options, cfg *xmlconf.Config, loadErr error, opts engine.Options, oldFile string, urls []string, stdin io.Reader, stdout, stderr io.Writer) int {
	newRun, err := dryrun.New(cfg, opts)
	if err = xmlconf.Join(loadErr, err); err != nil {
		if newRun != nil {
			newRun.Close()
		}
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	defer newRun.Close()
	oldCfg, err := xmlconf.Load(oldFile)
	var oldRun *dryrun.Runner
	if oldCfg != nil {
		var cerr error
		oldRun, cerr = dryrun.New(oldCfg, opts)
		err = xmlconf.Join(err, cerr)
	}
	if err != nil {
		if oldRun != nil {
			oldRun.Close()
		}
		fmt.Fprintf(stderr, "ocsiproxy: --compare %s:\n%v\n", oldFile, err)
		return 1
	}
	defer oldRun.Close()

	host := o.host
	if host == "" && len(cfg.Hosts) > 0 {
		host = cfg.Hosts[0].DefaultHostname
	}
	var lines []string
	if len(urls) > 0 {
		lines = urls
	} else if stdin != nil && !isTerminal(stdin) {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		if err := sc.Err(); err != nil {
			fmt.Fprintf(stderr, "ocsiproxy: --compare: reading stdin: %v\n", err)
			return 1
		}
	}
	var rows []*compareRow
	byKey := map[string]*compareRow{}
	skipped := 0
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lr, ok := parseLogLine(line)
		if !ok {
			skipped++
			fmt.Fprintf(stderr, "ocsiproxy: --compare: line %d: neither a URL nor an access-log request (skipped): %.120q\n", i+1, line)
			continue
		}
		req := dryrun.Request{Method: o.method, Headers: o.headers, From: o.from, HTTPS: o.https}
		if lr.Method != "" {
			req.Method = lr.Method
		}
		if lr.XFF != "" {
			req.Headers = append(slices.Clip(req.Headers), "X-Forwarded-For: "+lr.XFF)
		}
		if _, err := netip.ParseAddr(lr.From); err == nil {
			req.From = lr.From
		}
		req.URL = lr.Target
		if strings.HasPrefix(lr.Target, "/") {
			switch h := cmp.Or(lr.Host, host); {
			case h == "":
				// No host known: the request goes without Host, as a bare
				// path does in --dry-run.
			case o.https:
				req.URL = "https://" + h + lr.Target
			default:
				req.URL = "http://" + h + lr.Target
			}
		}
		key := req.Method + " " + req.URL + " " + req.From + " " + lr.XFF
		if r := byKey[key]; r != nil {
			r.Count++
			continue
		}
		r := &compareRow{Request: req.Method + " " + req.URL, From: req.From, XFF: lr.XFF, Count: 1, req: req}
		byKey[key] = r
		rows = append(rows, r)
	}
	enc := json.NewEncoder(stdout)
	var same, different, distinctDifferent, failed int
	for _, r := range rows {
		oldRes, err1 := oldRun.Run(r.req)
		newRes, err2 := newRun.Run(r.req)
		if err := cmp.Or(err1, err2); err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			failed += r.Count
			continue
		}
		r.Old, r.New = oldRes.Decision, newRes.Decision
		if sameDecision(r.Old, r.New) {
			same += r.Count
			continue
		}
		different += r.Count
		distinctDifferent++
		if o.json {
			enc.Encode(r)
			continue
		}
		from := r.From
		if r.XFF != "" {
			from += ", X-Forwarded-For: " + r.XFF
		}
		if r.Count > 1 {
			from += fmt.Sprintf(", %d requests", r.Count)
		}
		fmt.Fprintf(stdout, "%s (from %s)\n  old: %s\n  new: %s\n", r.Request, from, r.Old, r.New)
	}
	summary := stdout
	if o.json {
		summary = stderr
	}
	fmt.Fprintf(summary, "compare: %d requests (%d distinct): %d same, %d different (%d distinct)", same+different+failed, len(rows), same, different, distinctDifferent)
	if failed > 0 {
		fmt.Fprintf(summary, ", %d not run", failed)
	}
	if skipped > 0 {
		fmt.Fprintf(summary, "; %d skipped (not a request)", skipped)
	}
	fmt.Fprintf(summary, "; old %s, new %s\n", oldFile, cfg.File)
	if different > 0 || failed > 0 {
		return 1
	}
	return 0
}
