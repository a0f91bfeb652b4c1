package pool

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// FuzzParseConfig feeds random attribute values to the <pool>, <upstream
// url=>, <upstream name=> (two groups sharing a server), <server> and
// <tls> elements: parsing
// never panics, every problem has the file's position, and a
// configuration that parses without errors builds a pool that can be
// closed.
func FuzzParseConfig(f *testing.F) {
	f.Add("8", "best_worker", "5s", "round_robin", "2", "3", "true", "10s", "tlsv1.2 tlsv1.3")
	f.Add("0", "next_worker", "infinity", "hash:header:X-User", "x", "0", "yes", "0", "tlsv1 tlsv1.3")
	f.Add("1024", "random", "-1", "hash:cookie:", "100", "1001", "false", "soon", "")
	f.Add("", "", "", "ip_hash", "", "", "", "", "ssl3")
	f.Fuzz(func(t *testing.T, workers, strategy, timeout, balance, retries, weight, backup, failTimeout, versions string) {
		attr := func(name, v string) string {
			var b strings.Builder
			xml.EscapeText(&b, []byte(v))
			return " " + name + `="` + strings.ReplaceAll(b.String(), `"`, "&quot;") + `"`
		}
		children := "<pool" + attr("workers", workers) + attr("strategy", strategy) + attr("call_timeout", timeout) + "/>\n" +
			`<upstream url="https://api:8443"` + attr("request_timeout", timeout) + "><tls" + attr("versions", versions) + "/></upstream>\n" +
			`<upstream name="grp"` + attr("balance", balance) + attr("retries", retries) + attr("try_duration", timeout) + ">" +
			`<server url="http://127.0.0.1:1"` + attr("weight", weight) + attr("backup", backup) + attr("fail_timeout", failTimeout) + "/>" +
			`<server url="http://127.0.0.1:2"/></upstream>` +
			// A server in two groups: its connection settings must agree.
			`<upstream name="grp2"` + attr("workers", retries) + `><server url="http://127.0.0.1:2"` + attr("max_fails", weight) + "/></upstream>"
		src := "<ocsigen><server>\n<extension findlib-package=\"ocsigenserver.ext.revproxy\">\n" + children + "\n</extension>\n</server></ocsigen>\n"
		cfg, err := xmlconf.Parse("f.conf", []byte(src))
		if err != nil {
			return // not a file the loader reads: not this parser's business
		}
		var errs xmlconf.ErrorList
		c := ParseConfig(cfg, &errs)
		for _, e := range errs {
			if !strings.HasPrefix(e.Error(), "f.conf:") {
				t.Fatalf("error without position: %q", e.Error())
			}
		}
		if len(errs) == 0 {
			New(c).Close()
		}
	})
}
