package difftest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	ocsigenOnly = flag.Bool("difftest.ocsigen-only", false,
		"run every scenario against Ocsigen alone: check the declared Ocsigen behaviour, compare nothing")
	dumpFile = flag.String("difftest.dump", "",
		"write every exchange (request, both outcomes) to this file")
)

// ocsigenBin is the Ocsigen Server binary under test.
const ocsigenBin = "ocsigenserver"

// buildTimeout bounds `go build` of ocsiproxy.
const buildTimeout = 4 * time.Minute

var (
	buildOnce sync.Once
	buildBin  string // path of the ocsiproxy binary, "" if unavailable
	buildMsg  string // why it is unavailable
	buildDir  string // temp dir to remove in TestMain
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// ocsiproxyBinary builds the main package once per test run into a temp dir.
// $OCSIPROXY_BIN names a prebuilt binary instead.
func ocsiproxyBinary() (string, string) {
	buildOnce.Do(func() {
		if *ocsigenOnly {
			buildMsg = "-difftest.ocsigen-only given"
			return
		}
		if b := os.Getenv("OCSIPROXY_BIN"); b != "" {
			buildBin = b
			return
		}
		dir, err := os.MkdirTemp("", "difftest-bin-")
		if err != nil {
			buildMsg = err.Error()
			return
		}
		buildDir = dir
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			goTool = "go"
		}
		bin := filepath.Join(dir, "ocsiproxy")
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".")
		cmd.Dir = ".." // the module root, where package main lives
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildMsg = fmt.Sprintf("go build of the main package failed: %v\n%s", err, out)
			return
		}
		buildBin = bin
	})
	return buildBin, buildMsg
}

// tally counts what the run compared, for the summary line.
type tally struct {
	mu         sync.Mutex
	compared   int
	declared   int
	undeclared int
	rowHits    map[string]int
	// declaredRows counts the declared differences per row (exchanges that
	// matched after the row was applied).
	declaredRows map[string]int
	sent         int // requests sent to Ocsigen alone
	dump         *os.File
}

func (ty *tally) add(compared, declared, undeclared int, rows []string) {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	ty.compared += compared
	ty.declared += declared
	ty.undeclared += undeclared
	for _, r := range rows {
		ty.rowHits[r]++
		if declared > 0 {
			ty.declaredRows[r]++
		}
	}
}

func (ty *tally) dumpf(format string, args ...any) {
	if ty.dump == nil {
		return
	}
	ty.mu.Lock()
	defer ty.mu.Unlock()
	fmt.Fprintf(ty.dump, format, args...)
}

func TestDifferential(t *testing.T) {
	skipUnlessOcsigen(t)
	bin, why := ocsiproxyBinary()
	if bin == "" {
		if _, err := os.Stat("../main.go"); err == nil && !*ocsigenOnly {
			// The main package exists but does not build: that is a
			// failure, not a reason to compare nothing.
			t.Fatalf("ocsiproxy: %s", why)
		}
		t.Logf("ocsiproxy side skipped, Ocsigen alone: %s", why)
	}
	ty := &tally{rowHits: map[string]int{}, declaredRows: map[string]int{}}
	if *dumpFile != "" {
		f, err := os.Create(*dumpFile)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ty.dump = f
	}
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			runScenario(t, sc, bin, ty)
		})
	}
	mode := ""
	if bin == "" {
		mode = fmt.Sprintf(" (Ocsigen alone: %d requests sent, nothing compared)", ty.sent)
	}
	proposed, readme := 0, 0
	for row, n := range ty.declaredRows {
		switch {
		case isProposed(row):
			proposed += n
		case isReadme(row):
			readme += n
		}
	}
	summary := fmt.Sprintf("%d compared, %d declared differences, %d undeclared%s", ty.compared, ty.declared, ty.undeclared, mode)
	if proposed > 0 || readme > 0 {
		summary += fmt.Sprintf(" (%d of the declared under rows PROPOSED for SPEC 8, %d under ocsiproxy decisions in the README)", proposed, readme)
	}
	t.Log(summary)
	fmt.Println("difftest: " + summary)
	var rows []string
	for _, kd := range knownDiffs {
		rows = append(rows, fmt.Sprintf("  %3d %3d  %s", ty.rowHits[kd.row], ty.declaredRows[kd.row], kd.row))
	}
	t.Logf("SPEC section 8 rows (seen on Ocsigen, declared differences, row):\n%s", strings.Join(rows, "\n"))
}

// side is one server under test in a scenario.
type side struct {
	name  string
	vars  vars
	proc  *proc
	state startState
}

func runScenario(t *testing.T, sc *scenario, bin string, ty *tally) {
	be := startBackend(t)
	down := freePort(t)
	root := t.TempDir()
	// Both servers trust the backend's certificate (OpenSSL and crypto/tls
	// both read SSL_CERT_FILE).
	caFile := filepath.Join(root, "backend-ca.pem")
	if err := os.WriteFile(caFile, be.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"SSL_CERT_FILE=" + caFile}
	mk := func(name string) *side {
		v := vars{Port: freePort(t), Dir: filepath.Join(root, name), Backend: be.Port, Down: down}
		return &side{name: name, vars: v}
	}
	oc := mk("ocsigen")
	start := func(s *side, argv ...string) {
		// A server that neither listens nor exits in time is stopped and
		// started once more on a fresh port (a loaded CI machine).
		for attempt := 0; attempt < 2; attempt++ {
			if attempt > 0 {
				s.proc.stop()
				t.Logf("%s: %s; retrying on another port", s.name, s.state)
				s.vars.Port = freePort(t)
			}
			conf := writeConfig(t, sc, s.vars)
			began := time.Now()
			p, out := startProc(t, s.name, s.vars.Dir, env, append(argv, "-c", conf)...)
			s.proc = p
			s.state = waitStart(p, out, s.vars.Port)
			if d := time.Since(began); d > 2*time.Second {
				t.Logf("%s: slow start (%v): %s", s.name, d.Round(time.Millisecond), s.state)
			}
			if s.state.Listening || s.state.Exited {
				return
			}
		}
	}
	start(oc, ocsigenBin)
	var op *side
	if bin != "" {
		op = mk("ocsiproxy")
		start(op, bin)
	}
	ports := func(s *side) map[int]string {
		return map[int]string{s.vars.Port: "{PORT}", be.Port: "{BPORT}", down: "{DOWN}"}
	}

	if sc.refuse {
		errLog, _ := os.ReadFile(filepath.Join(oc.vars.Dir, "log", "errors.log"))
		ty.dumpf("=== %s: config Ocsigen refuses\nocsigen: %s\n%s\nerrors.log: %s\n", sc.name, oc.state, tail(oc.state.Output, 800), tail(string(errLog), 400))
		if !(oc.state.Exited && oc.state.Code != 0) {
			t.Errorf("Ocsigen no longer refuses this config: %s\n%s", oc.state, tail(oc.state.Output, 2000))
		}
		if op == nil {
			return
		}
		ty.dumpf("ocsiproxy: %s\n%s\n", op.state, tail(op.state.Output, 800))
		if op.state.Exited && op.state.Code != 0 {
			ty.add(1, 0, 0, nil)
			return
		}
		ty.add(1, 0, 1, nil)
		t.Errorf("UNDECLARED: Ocsigen refuses this config (%s), ocsiproxy: %s\n%s\nconfig:\n%s",
			oc.state, op.state, tail(op.state.Output, 2000), sc.hosts+sc.config)
		return
	}
	if !oc.state.Listening {
		t.Fatalf("Ocsigen did not start: %s\n%s", oc.state, tail(oc.state.Output, 3000))
	}
	if sc.startRow != "" {
		runStartupRow(t, sc, oc, op, be, ports(oc), ty)
		return
	}
	if op != nil && !op.state.Listening {
		ty.add(1, 0, 1, nil)
		t.Fatalf("UNDECLARED: Ocsigen starts on this config, ocsiproxy: %s\n%s", op.state, tail(op.state.Output, 3000))
	}

	var ocAll, opAll []*outcome
	defer func() {
		if sc.poolCheck {
			checkPooling(t, ocAll, opAll, op != nil, ty)
		}
	}()
	for i, rq := range sc.reqs {
		label := fmt.Sprintf("%s#%d", sc.name, i)
		if rq.note != "" {
			label += " (" + rq.note + ")"
		}
		x := &exchange{sc: sc, req: rq, oc: send(oc, rq, be, ports(oc))}
		ocAll = append(ocAll, x.oc)
		if op != nil {
			x.op = send(op, rq, be, ports(op))
			opAll = append(opAll, x.op)
		}
		res := evaluate(x)
		for _, o := range []*outcome{x.oc, x.op} {
			if o != nil && o.Slow > 0 && !rq.slowOK {
				t.Logf("%s: slow answer (%v): %s", label, o.Slow.Round(time.Millisecond), firstLine(o.lines()))
			}
		}
		ty.dumpf("=== %s\n%s\n--- ocsigen\n%s\n%s\n", label, showRaw(rq.raw), strings.Join(x.oc.lines(), "\n"), strings.Join(x.oc.details(), "\n"))
		for _, e := range res.ocsigenErrs {
			t.Errorf("%s: %s\nrequest:\n%s\nOcsigen:\n%s", label, e, showRaw(rq.raw), indent(x.oc.lines()))
		}
		if op == nil {
			ty.add(0, 0, 0, res.rows)
			ty.mu.Lock()
			ty.sent++
			ty.mu.Unlock()
			continue
		}
		ty.dumpf("--- ocsiproxy\n%s\n%s\n", strings.Join(x.op.lines(), "\n"), strings.Join(x.op.details(), "\n"))
		for _, e := range res.ocsiproxyErrs {
			t.Errorf("%s: %s\nrequest:\n%s\nOcsigen:\n%s\nocsiproxy:\n%s", label, e, showRaw(rq.raw), indent(x.oc.lines()), indent(x.op.lines()))
		}
		if res.diff != "" {
			ty.add(1, 0, 1, res.rows)
			ty.dumpf("--- UNDECLARED DIFFERENCE (after declared rows %q)\n%s\n", res.rows, res.diff)
			t.Errorf("UNDECLARED difference in %s (SPEC %s)\nrequest:\n%s\ndeclared rows applied: %q\n(- Ocsigen as corrected by the declared rows, + ocsiproxy)\n%s",
				label, sc.spec, showRaw(rq.raw), res.rows, res.diff)
			continue
		}
		ty.add(1, len(res.rows), len(res.ocsiproxyErrs), res.rows)
	}
}

// send sends one request to one server and collects what the backend saw.
func send(s *side, rq *request, be *backend, ports map[int]string) *outcome {
	raw := s.vars.expand(rq.raw)
	be.take()
	began := time.Now()
	r := roundTrip(fmt.Sprintf("127.0.0.1:%d", s.vars.Port), []byte(raw), strings.HasPrefix(raw, "HEAD "))
	if d := time.Since(began); d > 2*time.Second {
		r.Slow = d
	}
	// A proxy may still be talking to the backend after answering (or may
	// never have): give stragglers a moment.
	time.Sleep(settle)
	return newOutcome(r, be.take(), ports)
}

// runStartupRow handles a scenario whose config SPEC requires ocsiproxy to
// refuse while Ocsigen starts: Ocsigen's answers must still show the row, and
// ocsiproxy must exit non-zero naming a position in the file.
func runStartupRow(t *testing.T, sc *scenario, oc, op *side, be *backend, ports map[int]string, ty *tally) {
	kd := lookupRow(sc.startRow)
	if kd == nil || !kd.startup {
		t.Fatalf("harness: %q is not a start-up row", sc.startRow)
	}
	for i, rq := range sc.reqs {
		x := &exchange{sc: sc, req: rq, oc: send(oc, rq, be, ports)}
		ty.dumpf("=== %s#%d (start-up row)\n%s\n--- ocsigen\n%s\n", sc.name, i, showRaw(rq.raw), strings.Join(x.oc.lines(), "\n"))
		if !kd.ocsigen(x) {
			t.Errorf("%s#%d: Ocsigen no longer shows the declared bug: %s\nOcsigen:\n%s", sc.name, i, kd.row, indent(x.oc.lines()))
		}
	}
	if op == nil {
		ty.add(0, 0, 0, []string{kd.row})
		return
	}
	ty.dumpf("--- ocsiproxy: %s\n%s\n", op.state, tail(op.state.Output, 800))
	if op.state.Exited && op.state.Code != 0 && strings.Contains(op.state.Output, "ocsigen.conf:") {
		ty.add(1, 1, 0, []string{kd.row})
		return
	}
	ty.add(1, 0, 1, []string{kd.row})
	t.Errorf("SPEC 8 row %q: ocsiproxy should refuse this config at start-up with a position; it: %s\n%s",
		kd.row, op.state, tail(op.state.Output, 2000))
}

// checkPooling checks the no-pooling row over a scenario: every backend
// request of Ocsigen's came on a fresh connection, and ocsiproxy reused at
// least one connection.
func checkPooling(t *testing.T, ocAll, opAll []*outcome, compare bool, ty *tally) {
	reused := func(all []*outcome) int {
		n := 0
		for _, o := range all {
			for _, b := range o.Backend {
				if b.ConnReq > 0 {
					n++
				}
			}
		}
		return n
	}
	if n := reused(ocAll); n > 0 {
		t.Errorf("Ocsigen no longer shows the declared bug: %s (%d backend requests on reused connections)", rowNoPooling, n)
		return
	}
	if !compare {
		ty.add(0, 0, 0, []string{rowNoPooling})
		return
	}
	if reused(opAll) == 0 {
		ty.add(1, 0, 1, []string{rowNoPooling})
		t.Errorf("SPEC 8 row %q: ocsiproxy opened a new backend connection for every request", rowNoPooling)
		return
	}
	ty.add(1, 1, 0, []string{rowNoPooling})
}

// settle is how long the harness waits after a response for late backend
// traffic.
const settle = 20 * time.Millisecond

// exchange is one request sent to both servers.
type exchange struct {
	sc  *scenario
	req *request
	oc  *outcome // Ocsigen; known differences rewrite a clone of it
	op  *outcome // ocsiproxy, nil when Ocsigen runs alone
}

// result is the verdict on one exchange.
type result struct {
	rows          []string // declared rows that applied
	ocsigenErrs   []string // Ocsigen no longer shows a row the request names
	ocsiproxyErrs []string // ocsiproxy does not do what a row requires
	diff          string   // undeclared difference, "" if none
}

// evaluate applies the known differences, then compares.
func evaluate(x *exchange) result {
	var res result
	corrected := x.oc.clone()
	y := &exchange{sc: x.sc, req: x.req, oc: corrected, op: x.op}
	explained := false
	for _, kd := range knownDiffs {
		named := slices.Contains(x.req.rows, kd.row)
		if kd.startup || (!kd.auto && !named) {
			continue
		}
		if !kd.ocsigen(y) {
			if named {
				res.ocsigenErrs = append(res.ocsigenErrs, "Ocsigen no longer shows the declared bug: "+kd.row)
			}
			continue
		}
		res.rows = append(res.rows, kd.row)
		switch {
		case kd.ocsiproxy != nil && (x.req.want != nil || kd.fix == nil):
			if x.op == nil {
				continue
			}
			if err := kd.ocsiproxy(y); err != nil {
				res.ocsiproxyErrs = append(res.ocsiproxyErrs, fmt.Sprintf("SPEC 8 row %q: ocsiproxy does not do the specified thing: %v", kd.row, err))
			} else {
				explained = true
			}
		case kd.fix != nil:
			kd.fix(y)
		}
	}
	if x.op == nil || explained || len(res.ocsiproxyErrs) > 0 {
		return res
	}
	a, b := corrected.lines(), x.op.lines()
	if !slices.Equal(a, b) {
		res.diff = diffLines(a, b)
	}
	return res
}

func showRaw(raw string) string {
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(raw, "\r\n", "\n"), "\n"), "\n")
	return indent(lines)
}

func indent(lines []string) string {
	return "    " + strings.Join(lines, "\n    ")
}

func firstLine(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
