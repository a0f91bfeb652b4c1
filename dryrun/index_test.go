package dryrun

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/rules"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// randomRule returns a rule element whose regexp is drawn from shapes
// that index well (literal prefixes) and shapes that do not
// (alternations, options, classes first).
func randomRule(r *rand.Rand) string {
	word := func() string {
		const letters = "abc/"
		n := 1 + r.Intn(4)
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteByte(letters[r.Intn(len(letters))])
		}
		return b.String()
	}
	var re string
	switch r.Intn(11) {
	case 8:
		re = word() + "(" + word() + "|" + word() + ")/(.*)" // alternation inside a group
	case 9:
		re = word() + "(" + word() + ")|" + word() + "(.*)" // at the top level, after a group
	case 10:
		re = word() + "[|(]" + word() + "|" + word() // after a class holding | and (
	case 0:
		re = word() + "(.*)"
	case 1:
		re = word() + "[a-c]+"
	case 2:
		re = word() + "b?(.*)"
	case 3:
		re = word() + "|" + word() + "(.*)"
	case 4:
		re = "(?i)" + word() + ".*"
	case 5:
		re = "[ab]" + word() + "(.*)"
	case 6:
		re = word()
	default:
		re = word() + `\/?(.*)`
	}
	attr := "suburl"
	if r.Intn(5) == 0 {
		attr, re = "fullurl", "http://h(:\\d+)?/"+re
	}
	switch r.Intn(6) {
	case 0:
		return fmt.Sprintf(`<redirect %s="%s" dest="/r%d"/>`, attr, re, r.Intn(1000))
	case 1:
		if attr == "suburl" {
			cont := ""
			if r.Intn(2) == 0 {
				cont = ` continue="continue"`
			}
			return fmt.Sprintf(`<rewrite regexp="%s" url="/w%d/x"%s/>`, re, r.Intn(1000), cont)
		}
	case 2:
		return fmt.Sprintf(`<redirect regexp="%s" dest="/g%d"/>`, re, r.Intn(1000))
	}
	return fmt.Sprintf(`<revproxy %s="%s" dest="http://b%d:8080/p"/>`, attr, re, r.Intn(1000))
}

// TestIndexMatchesLinear compiles random configurations with and without
// the rule index and checks that every random request gets the same
// decision, from the same rule.
func TestIndexMatchesLinear(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	configs, requests := 60, 150
	if testing.Short() {
		configs = 10
	}
	indexedRuns, answered, compared := 0, 0, 0
	for c := 0; c < configs; c++ {
		var body strings.Builder
		n := rules.MinIndexed + r.Intn(120)
		for i := 0; i < n; i++ {
			if r.Intn(40) == 0 {
				body.WriteString(`<site path="a"><revproxy suburl="(.*)" dest="http://site/\1"/></site>`)
			}
			body.WriteString(randomRule(r) + "\n")
		}
		src := "<ocsigen><server><port>80</port>" + ruleExtensions + "<host>" + body.String() + "</host></server></ocsigen>"
		cfg, err := xmlconf.Parse("rand.conf", []byte(src))
		if err != nil {
			t.Fatalf("config %d: %v", c, err)
		}
		// Decisions are compared, not timeouts: a wall-clock match limit
		// can fire on a loaded machine (the race detector, other jobs).
		linear, err := New(cfg, engine.Options{NoIndex: true, MatchTimeout: time.Minute})
		if err != nil {
			t.Fatalf("config %d: %v\n%s", c, err, src)
		}
		indexed, err := New(cfg, engine.Options{MatchTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range indexed.handler.Tree().HostStages(0) {
			if _, ok := s.(*rules.Index); ok {
				indexedRuns++
			}
		}
		for q := 0; q < requests; q++ {
			const letters = "abc/"
			var p strings.Builder
			p.WriteByte('/')
			for i, n := 0, r.Intn(8); i < n; i++ {
				p.WriteByte(letters[r.Intn(len(letters))])
			}
			if r.Intn(4) == 0 {
				p.WriteString("?q=" + string(letters[r.Intn(3)]))
			}
			url := "http://h" + p.String()
			a, err := linear.Run(Request{URL: url})
			if err != nil {
				continue // a path the normaliser refuses (a/../..)
			}
			b, err := indexed.Run(Request{URL: url})
			if err != nil {
				t.Fatal(err)
			}
			compared++
			if a.Decision.Action != "status" {
				answered++
			}
			if fmt.Sprint(a.Decision) != fmt.Sprint(b.Decision) {
				t.Fatalf("config %d, %s:\nlinear  %v\nindexed %v\n%s", c, url, a.Decision, b.Decision, src)
			}
		}
	}
	if indexedRuns == 0 || answered < compared/4 {
		t.Fatalf("weak test: %d indexed runs, %d of %d requests answered", indexedRuns, answered, compared)
	}
	t.Logf("%d configurations (%d indexed runs), %d requests, %d answered by a rule, same decisions", configs, indexedRuns, compared, answered)
}

// benchmarkRules measures the decision for a request whose rule is the
// last of n.
func benchmarkRules(b *testing.B, n int, opts engine.Options) {
	var body strings.Builder
	for i := 0; i < n-1; i++ {
		fmt.Fprintf(&body, `<revproxy suburl="app%d/(.*)" dest="http://b%d:8080/\1"/>`+"\n", i, i)
	}
	body.WriteString(`<revproxy suburl="last/(.*)" dest="http://last:8080/\1"/>`)
	src := "<ocsigen><server><port>80</port>" + ruleExtensions + "<host>" + body.String() + "</host></server></ocsigen>"
	cfg, err := xmlconf.Parse("bench.conf", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	d, err := New(cfg, opts)
	if err != nil {
		b.Fatal(err)
	}
	req := Request{URL: "http://h/last/some/page?x=1"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := d.Run(req)
		if err != nil || res.Decision.Action != "proxy" {
			b.Fatalf("%v %v", res, err)
		}
	}
}

func BenchmarkRules10(b *testing.B)          { benchmarkRules(b, 10, engine.Options{}) }
func BenchmarkRules10000(b *testing.B)       { benchmarkRules(b, 10000, engine.Options{}) }
func BenchmarkRules10000Linear(b *testing.B) { benchmarkRules(b, 10000, engine.Options{NoIndex: true}) }

// ruleExtensions loads the extensions of the rules the tests draw.
const ruleExtensions = `<extension findlib-package="ocsigenserver.ext.revproxy"/>
<extension findlib-package="ocsigenserver.ext.redirectmod"/>
<extension findlib-package="ocsigenserver.ext.rewritemod"/>`
