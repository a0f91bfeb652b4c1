// Command suite is ocsiproxy's benchmark suite: it starts a fast backend
// (bench/backend), ocsiproxy, nginx and HAProxy in front of it on
// loopback, loads each in turn with wrk, and prints requests per second,
// p50/p99 latency, CPU time per request, resident memory and the ratios
// to nginx. Run it through bench/run.sh, which installs what is missing
// and builds the binaries; see docs/benchmarks.md.
//
// Every server it starts runs in a process group of its own and is
// stopped by that group's id, on exit, on SIGINT/SIGTERM and when the
// whole run exceeds its time limit.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// suite holds the settings and the state of one run.
type suite struct {
	targets     []string
	scenarios   []string
	duration    time.Duration
	warmup      time.Duration
	conns       int
	rounds      int
	fdLimit     int // open files a server may have (the hard limit, at most 2*idle-conns+2000)
	idleConns   int
	rules       int
	pin         string
	proxyCPUs   string // taskset lists; "" when not pinned
	loadCPUs    string
	proxyNCPU   int
	loadNCPU    int
	logs        bool
	gomaxprocs  string
	portBase    int
	backendPort int
	out, run    string
	bin         string
	ocsiproxy   string
	backend     *proc
	// groupBackends are the second and third backends of the groups
	// scenario, started when it first runs.
	groupBackends []*proc
	results       []result
	idleResults   []idleResult
	deadline      time.Time
	wrkScript     string

	// tls makes every target serve HTTPS with the certificate in
	// certFile and keyFile (both in pemFile too, as HAProxy reads them),
	// made for the run.
	tls                        bool
	certFile, keyFile, pemFile string
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func main() {
	s := &suite{}
	targets := flag.String("targets", env("TARGETS", "ocsiproxy nginx haproxy"), "targets, in order: ocsiproxy nginx haproxy")
	scenarios := flag.String("scenarios", env("SCENARIOS", "small 1k 64k lat1 idle rules groups"), "scenarios: small 1k 64k lat1 idle rules groups")
	duration := flag.Int("duration", envInt("DURATION", 10), "seconds per measured run (1-120)")
	warmup := flag.Int("warmup", envInt("WARMUP", 2), "seconds of load before each measured run (0-60)")
	flag.IntVar(&s.conns, "conns", envInt("CONNS", 64), "connections in the throughput scenarios")
	flag.IntVar(&s.rounds, "rounds", envInt("ROUNDS", 1), "times the load scenarios are run; the tables show medians")
	flag.IntVar(&s.idleConns, "idle-conns", envInt("IDLE_CONNS", 10000), "connections in the idle scenario")
	flag.IntVar(&s.rules, "rules", envInt("RULES", 10000), "rules in the large config of the rules scenario")
	flag.StringVar(&s.pin, "pin", env("PIN", "split"), "split: proxy and backend on PROXY_CPUS, wrk on LOAD_CPUS; none: no pinning")
	proxyCPUs := flag.String("proxy-cpus", env("PROXY_CPUS", "0"), "CPUs of the proxy and the backend with -pin split")
	loadCPUs := flag.String("load-cpus", env("LOAD_CPUS", "1"), "CPUs of wrk with -pin split")
	logs := flag.String("logs", env("LOGS", "on"), "on: every proxy writes an access log line per request to a file; off: none does (ocsiproxy's goes to /dev/null)")
	tlsMode := flag.String("tls", env("TLS", "off"), "on: every target serves HTTPS (a self-signed ECDSA P-256 certificate made for the run; HTTP/1.1, no ALPN from wrk) and the clients speak it; off: plain HTTP")
	flag.IntVar(&s.portBase, "port-base", envInt("PORT_BASE", 18300), "backend port; the targets use the next ones")
	flag.StringVar(&s.out, "out", env("OUT", ""), "result directory (default bench/results/DATE)")
	flag.StringVar(&s.bin, "bin", env("BIN", "bench/.bin"), "directory of the built binaries (ocsiproxy, backend, idle)")
	flag.Parse()

	s.targets = strings.Fields(strings.ReplaceAll(*targets, ",", " "))
	s.scenarios = strings.Fields(strings.ReplaceAll(*scenarios, ",", " "))
	s.duration = time.Duration(*duration) * time.Second
	s.warmup = time.Duration(*warmup) * time.Second
	s.logs = *logs == "on"
	s.tls = *tlsMode == "on"
	if err := s.check(*duration, *warmup, *logs, *tlsMode, *proxyCPUs, *loadCPUs); err != nil {
		fmt.Fprintln(os.Stderr, "suite:", err)
		os.Exit(2)
	}
	// The whole run is bounded: every load run, plus start-ups, idle
	// connection set-ups and slack.
	runs := 0
	for range s.rounds {
		for _, sc := range s.scenarios {
			switch sc {
			case "rules", "groups":
				runs += 4
			case "idle":
			default:
				runs += len(s.targets)
			}
		}
	}
	limit := time.Duration(runs)*(s.duration+s.warmup+5*time.Second) + time.Duration(len(s.targets))*3*time.Minute + 2*time.Minute
	s.deadline = time.Now().Add(limit)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		select {
		case v := <-sig:
			fmt.Fprintf(os.Stderr, "suite: %v: stopping the servers\n", v)
		case <-time.After(limit):
			fmt.Fprintf(os.Stderr, "suite: over the time limit of %v: stopping the servers\n", limit)
		}
		stopAll()
		os.Exit(3)
	}()
	err := s.main()
	stopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "suite:", err)
		os.Exit(1)
	}
}

func (s *suite) check(duration, warmup int, logs, tlsMode, proxyCPUs, loadCPUs string) error {
	if duration < 1 || duration > 120 {
		return errors.New("duration must be 1..120 seconds")
	}
	if warmup < 0 || warmup > 60 {
		return errors.New("warmup must be 0..60 seconds")
	}
	if logs != "on" && logs != "off" {
		return errors.New("logs must be on or off")
	}
	if tlsMode != "on" && tlsMode != "off" {
		return errors.New("tls must be on or off")
	}
	for _, t := range s.targets {
		_, floor := floorFlags(t)
		if !floor && t != "ocsiproxy" && t != "nginx" && t != "haproxy" {
			return fmt.Errorf("unknown target %q (ocsiproxy nginx haproxy, floor[+part...])", t)
		}
		if floor && s.tls {
			return fmt.Errorf("target %q serves plain HTTP only: drop it or TLS=on", t)
		}
	}
	for _, sc := range s.scenarios {
		if _, ok := loads[sc]; !ok && sc != "idle" && sc != "rules" && sc != "groups" {
			return fmt.Errorf("unknown scenario %q (small 1k 64k lat1 idle rules groups)", sc)
		}
	}
	if s.conns < 1 || s.idleConns < 1 || s.rules < 10 || s.rounds < 1 || s.rounds > 20 {
		return errors.New("conns and idle-conns must be positive, rules at least 10, rounds 1..20")
	}
	switch s.pin {
	case "split":
		s.proxyCPUs, s.loadCPUs = proxyCPUs, loadCPUs
		s.proxyNCPU, s.loadNCPU = countCPUs(proxyCPUs), countCPUs(loadCPUs)
		if s.proxyNCPU == 0 || s.loadNCPU == 0 {
			return fmt.Errorf("bad CPU lists %q, %q", proxyCPUs, loadCPUs)
		}
	case "none":
		s.proxyNCPU, s.loadNCPU = runtime.NumCPU(), runtime.NumCPU()
	default:
		return errors.New("pin must be split or none")
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	s.fdLimit = int(min(uint64(rl.Max), uint64(2*s.idleConns+2000))) // rl.Max is int64 on FreeBSD
	if s.idleConns+1000 > s.fdLimit && slices.Contains(s.scenarios, "idle") {
		return fmt.Errorf("the open file limit (ulimit -Hn: %d) is too low for %d idle connections: lower IDLE_CONNS or raise the limit", rl.Max, s.idleConns)
	}
	s.backendPort = s.portBase
	if s.portBase < 1024 || s.lastPort() > 65535 {
		return errors.New("bad port base")
	}
	need := []string{"wrk", "taskset"}
	for _, t := range s.targets {
		if t == "nginx" || t == "haproxy" {
			need = append(need, t)
		}
	}
	for _, c := range need {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("%s is not installed (bench/run.sh installs it)", c)
		}
	}
	s.ocsiproxy = filepath.Join(s.bin, "ocsiproxy")
	bins := []string{"ocsiproxy", "backend", "idle", "floor"}
	for _, b := range bins {
		if _, err := os.Stat(filepath.Join(s.bin, b)); err != nil {
			return fmt.Errorf("missing %s in %s (bench/run.sh builds it)", b, s.bin)
		}
	}
	return nil
}

// Ports, from portBase: the backend's, then ocsiproxy's, nginx's and
// HAProxy's (+1 to +3), the rules scenario's four targets (+4 to +7),
// the groups scenario's (portGroups: its ocsiproxy targets with one
// upstream and with the group of three, +8 and +9; its second and third
// backends, +10 and +11; its nginx targets, +12 and +13), and the floor
// targets' (portFloors and up).
const (
	portGroups = 8
	portFloors = 14
)

// lastPort is the last port the suite uses (see portGroups).
func (s *suite) lastPort() int {
	n := 0
	for _, t := range s.targets {
		if _, floor := floorFlags(t); floor {
			n++
		}
	}
	return s.portBase + portFloors - 1 + n
}

// countCPUs counts the CPUs of a taskset list such as "0", "0,2" or "0-3".
func countCPUs(list string) int {
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0
			}
		}
		n += b - a + 1
	}
	return n
}

func (s *suite) main() error {
	if s.out == "" {
		s.out = filepath.Join("bench", "results", time.Now().Format("20060102-150405"))
	}
	out, err := filepath.Abs(s.out)
	if err != nil {
		return err
	}
	s.out, s.run = out, filepath.Join(out, "run")
	if err := os.MkdirAll(s.run, 0o755); err != nil {
		return err
	}
	if s.tls {
		if err := s.makeCert(); err != nil {
			return err
		}
	}
	s.wrkScript = filepath.Join(s.run, "result.lua")
	if err := os.WriteFile(s.wrkScript, []byte(wrkLua), 0o644); err != nil {
		return err
	}
	// Ports: see portGroups.
	ports := map[string]int{"ocsiproxy": 1, "nginx": 2, "haproxy": 3}
	for p := s.portBase; p <= s.lastPort(); p++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return fmt.Errorf("port %d is taken (choose another PORT_BASE): %v", p, err)
		}
		l.Close()
	}
	s.writeEnv()

	s.backend, err = start("backend", s.proxyCPUs, filepath.Join(s.run, "backend.log"), nil,
		filepath.Join(s.bin, "backend"), "-listen", fmt.Sprintf("127.0.0.1:%d", s.backendPort))
	if err != nil {
		return err
	}
	if err := waitHTTP(fmt.Sprintf("127.0.0.1:%d", s.backendPort), "/", false, s.backend); err != nil {
		return fmt.Errorf("backend: %v\n%s", err, s.backend.tail())
	}

	var targets []*target
	floors := 0
	for _, name := range s.targets {
		t := &target{name: name, kind: name, port: s.portBase + ports[name]}
		if _, floor := floorFlags(name); floor {
			t.kind, t.port = "floor", s.portBase+portFloors+floors
			floors++
		}
		targets = append(targets, t)
	}
	// The idle scenario first, on fresh processes; then the load
	// scenarios, ROUNDS times.
	if slices.Contains(s.scenarios, "idle") {
		if err := s.idle(targets); err != nil {
			return err
		}
	}
	launched := false
	rot := 0
	for round := range s.rounds {
		if s.rounds > 1 {
			fmt.Printf("round %d of %d\n", round+1, s.rounds)
		}
		for _, sc := range s.scenarios {
			switch sc {
			case "idle":
			case "rules":
				if err := s.rulesScenario(); err != nil {
					return err
				}
			case "groups":
				if err := s.groupsScenario(round); err != nil {
					return err
				}
			default:
				if !launched {
					for _, t := range targets {
						if err := s.launch(t); err != nil {
							return err
						}
					}
					launched = true
				}
				// The order rotates from one scenario to the next, so
				// that slow drift (other tenants, heat) spreads over all
				// targets.
				for i := range targets {
					t := targets[(i+rot)%len(targets)]
					if err := s.measure(sc, t, loads[sc].path, loads[sc].conns(s), ""); err != nil {
						return err
					}
				}
				rot++
			}
		}
	}
	for _, t := range targets {
		if t.proc != nil {
			t.proc.stop()
		}
	}
	for _, b := range s.groupBackends {
		b.stop()
	}
	return s.report()
}

// load is a wrk scenario.
type load struct {
	path  string
	conns func(*suite) int
	title string
}

var loads = map[string]load{
	"small": {"/", func(s *suite) int { return s.conns }, "GET / (64-byte answer)"},
	"1k":    {"/size/1024", func(s *suite) int { return s.conns }, "GET /size/1024 (1 KiB answer)"},
	"64k":   {"/size/65536", func(s *suite) int { return s.conns }, "GET /size/65536 (64 KiB answer)"},
	"lat1":  {"/", func(*suite) int { return 1 }, "GET /, one connection, one request at a time (latency)"},
}

// result is one measured load run.
type result struct {
	scenario, target string
	rules            int
	reqs             float64 // per second
	p50, p99         float64 // microseconds
	cpuPerReq        float64 // microseconds of the target's CPU per request
	userPerReq       float64 // of which in user space
	backendPerReq    float64
	rssMiB           float64
	errors           int64
	otherCores       float64 // CPU used meanwhile by neither wrk, the backend nor the target
	conns            int
	spread           float64 // over rounds: (max-min)/2/median of cpuPerReq
}

const wrkLua = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRKRESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
`

// wrk runs one wrk load against addr.
func (s *suite) wrk(addr, path string, conns int, d time.Duration) (string, time.Duration, error) {
	threads := s.loadNCPU
	if conns < threads {
		threads = conns
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	return runCmd(ctx, s.loadCPUs, "wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%ds", int(d/time.Second)), "--timeout", "5s", "-s", s.wrkScript, s.scheme()+"://"+addr+path)
}

// measure warms t up, then measures one load run and records it.
func (s *suite) measure(scenario string, t *target, path string, conns int, label string) error {
	if time.Now().Add(s.warmup + s.duration).After(s.deadline) {
		return errors.New("time limit reached")
	}
	if t.proc.exited() {
		return fmt.Errorf("%s exited:\n%s", t.name, t.proc.tail())
	}
	if s.warmup > 0 {
		if out, _, err := s.wrk(t.addr(), path, conns, s.warmup); err != nil {
			return fmt.Errorf("wrk (warm-up of %s): %v\n%s", t.name, err, out)
		}
	}
	backends := t.backends
	if backends == nil {
		backends = []*proc{s.backend}
	}
	u0, b0 := groupUsage(t.proc.pgid), backendUsage(backends)
	busy0, _ := sysCPU()
	start := time.Now()
	out, wrkCPU, err := s.wrk(t.addr(), path, conns, s.duration)
	wall := time.Since(start)
	busy1, _ := sysCPU()
	u1, b1 := groupUsage(t.proc.pgid), backendUsage(backends)
	if err != nil {
		return fmt.Errorf("wrk on %s: %v\n%s", t.name, err, out)
	}
	f := wrkFields(out)
	n := f["requests"]
	if n == 0 {
		return fmt.Errorf("wrk on %s: no requests\n%s", t.name, out)
	}
	r := result{
		scenario: scenario, target: t.name, rules: t.rules, conns: conns,
		reqs:          float64(n) / (float64(f["duration_us"]) / 1e6),
		p50:           float64(f["p50_us"]),
		p99:           float64(f["p99_us"]),
		cpuPerReq:     float64((u1.cpu - u0.cpu).Microseconds()) / float64(n),
		userPerReq:    float64((u1.user - u0.user).Microseconds()) / float64(n),
		backendPerReq: float64((b1.cpu - b0.cpu).Microseconds()) / float64(n),
		rssMiB:        float64(u1.rss) / (1 << 20),
		errors:        f["errors"],
	}
	other := busy1 - busy0 - (u1.cpu - u0.cpu) - (b1.cpu - b0.cpu) - wrkCPU
	r.otherCores = other.Seconds() / wall.Seconds()
	s.results = append(s.results, r)
	if label == "" {
		label = t.name
	}
	fmt.Printf("  %-8s %-22s %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms  cpu %6.1f us/req  rss %6.1f MiB  errors %d  other cores %.2f\n",
		scenario, label, r.reqs, r.p50/1000, r.p99/1000, r.cpuPerReq, r.rssMiB, r.errors, r.otherCores)
	for _, file := range s.accessLogs(t) {
		os.Truncate(file, 0) // the logs of a run can be large; keep the disk clean
	}
	return nil
}

// backendUsage sums the usage of the backends' process groups.
func backendUsage(backends []*proc) usage {
	var u usage
	for _, b := range backends {
		g := groupUsage(b.pgid)
		u.cpu += g.cpu
		u.user += g.user
		u.rss += g.rss
		u.procs += g.procs
	}
	return u
}

// wrkFields parses the WRKRESULT line of the wrk script.
func wrkFields(out string) map[string]int64 {
	f := map[string]int64{}
	for line := range strings.SplitSeq(out, "\n") {
		rest, ok := strings.CutPrefix(line, "WRKRESULT ")
		if !ok {
			continue
		}
		for kv := range strings.FieldsSeq(rest) {
			k, v, _ := strings.Cut(kv, "=")
			f[k], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return f
}

// rulesScenario compares a 10-rule configuration with one of s.rules
// rules, the request matching the last rule of each, for ocsiproxy (and
// nginx, with regexp locations, when it is a target).
func (s *suite) rulesScenario() error {
	kinds := []string{"ocsiproxy"}
	for _, t := range s.targets {
		if t == "nginx" {
			kinds = append(kinds, "nginx")
		}
	}
	port := s.portBase + 4
	for _, kind := range kinds {
		for _, n := range []int{10, s.rules} {
			t := &target{name: fmt.Sprintf("%s-rules%d", kind, n), kind: kind, port: port, rules: n}
			port++
			if err := s.launch(t); err != nil {
				return err
			}
			err := s.measure("rules", t, rulePath(n), s.conns, fmt.Sprintf("%s, %d rules", kind, n))
			t.proc.stop()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// groupsScenario compares, under the small scenario's load (GET /, CONNS
// connections), ocsiproxy with one upstream (the catch-all rule's dest
// is the backend) and with a group of three servers (<upstream name="g"
// balance="round_robin">: the backend and two more bench/backend
// processes), each started fresh and measured back to back, the order
// alternating from round to round; nginx the same (an upstream block of
// one server, then of three) when it is a target.
func (s *suite) groupsScenario(round int) error {
	if s.groupBackends == nil {
		for i := range 2 {
			port := s.portBase + portGroups + 2 + i
			name := fmt.Sprintf("backend%d", i+2)
			p, err := start(name, s.proxyCPUs, filepath.Join(s.run, name+".log"), nil,
				filepath.Join(s.bin, "backend"), "-listen", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				return err
			}
			s.groupBackends = append(s.groupBackends, p)
			if err := waitHTTP(fmt.Sprintf("127.0.0.1:%d", port), "/", false, p); err != nil {
				return fmt.Errorf("%s: %v\n%s", name, err, p.tail())
			}
		}
	}
	three := append([]*proc{s.backend}, s.groupBackends...)
	kinds := []string{"ocsiproxy"}
	if slices.Contains(s.targets, "nginx") {
		kinds = append(kinds, "nginx")
	}
	for k, kind := range kinds {
		ts := []*target{
			{name: kind + "-single", kind: kind, port: s.portBase + portGroups + 4*k},
			{name: kind + "-group3", kind: kind, port: s.portBase + portGroups + 4*k + 1, group: 3, backends: three},
		}
		if round%2 == 1 {
			ts[0], ts[1] = ts[1], ts[0]
		}
		for _, t := range ts {
			if err := s.launch(t); err != nil {
				return err
			}
			label := kind + ", 1 upstream"
			if t.group > 0 {
				label = fmt.Sprintf("%s, group of %d", kind, t.group)
			}
			err := s.measure("groups", t, "/", s.conns, label)
			t.proc.stop()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// groupPorts returns the ports of the groups scenario's servers: the
// backend's and the two others'.
func (s *suite) groupPorts() []int {
	return []int{s.backendPort, s.portBase + portGroups + 2, s.portBase + portGroups + 3}
}

// idleResult is the memory one target takes for idle connections.
type idleResult struct {
	target        string
	before, after int64 // RSS, bytes
	conns         int
}

// idle restarts each target, opens s.idleConns keep-alive connections
// (each has had one answer), and measures the growth of its RSS.
func (s *suite) idle(targets []*target) error {
	for _, t := range targets {
		if t.kind == "floor" {
			continue // a backend connection per client: nothing to learn
		}
		if t.proc != nil {
			t.proc.stop()
		}
		if err := s.launch(t); err != nil {
			return err
		}
		time.Sleep(time.Second)
		before := groupUsage(t.proc.pgid).rss
		after, err := s.holdIdle(t)
		t.proc.stop()
		t.proc = nil
		if err != nil {
			return err
		}
		r := idleResult{target: t.name, before: before, after: after, conns: s.idleConns}
		s.idleResults = append(s.idleResults, r)
		fmt.Printf("  idle     %-22s rss %6.1f -> %6.1f MiB: %5.2f KiB per connection\n", t.name,
			float64(before)/(1<<20), float64(after)/(1<<20), float64(after-before)/float64(s.idleConns)/1024)
	}
	return nil
}

// holdIdle opens the idle connections to t and returns t's RSS with them
// open.
func (s *suite) holdIdle(t *target) (int64, error) {
	argv := []string{filepath.Join(s.bin, "idle"), "-addr", t.addr(), "-n", strconv.Itoa(s.idleConns), "-timeout", "90s", "-hold", "60s"}
	if s.tls {
		argv = append(argv, "-tls")
	}
	if s.loadCPUs != "" {
		argv = append([]string{"taskset", "-c", s.loadCPUs}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(l)
		io.Copy(io.Discard, stdout)
	}()
	var got string
	select {
	case got = <-line:
	case <-time.After(100 * time.Second):
		return 0, fmt.Errorf("idle connections to %s: no answer from the idle tool", t.name)
	}
	if !strings.HasPrefix(got, "ready ") {
		return 0, fmt.Errorf("idle connections to %s: %s\n%s", t.name, got, t.proc.tail())
	}
	// Let the servers settle (deferred frees, a GC cycle) before reading.
	time.Sleep(3 * time.Second)
	return groupUsage(t.proc.pgid).rss, nil
}

// waitHTTP waits until GET path on addr (over TLS, not verified, when
// overTLS is set) answers 200.
func waitHTTP(addr, path string, overTLS bool, p *proc) error {
	var last error
	for range 100 {
		if p.exited() {
			return errors.New("exited")
		}
		if last = get(addr, path, overTLS); last == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return last
}

func get(addr, path string, overTLS bool) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if overTLS {
		c = tls.Client(c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n", path)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "HTTP/1.1 200 ") {
		return fmt.Errorf("answered %q", strings.TrimSpace(line))
	}
	return nil
}

func (s *suite) writeEnv() {
	var b strings.Builder
	fmt.Fprintf(&b, "date: %s\n", time.Now().Format(time.RFC3339))
	if u, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&b, "load average at start: %s", u)
	}
	fmt.Fprintf(&b, "cpus: %d, %s\n", runtime.NumCPU(), cpuModel())
	fmt.Fprintf(&b, "settings: targets=%q scenarios=%q rounds=%d duration=%v warmup=%v conns=%d idle-conns=%d rules=%d pin=%s proxy-cpus=%q load-cpus=%q logs=%v tls=%v port-base=%d\n",
		strings.Join(s.targets, " "), strings.Join(s.scenarios, " "), s.rounds, s.duration, s.warmup, s.conns, s.idleConns, s.rules, s.pin, s.proxyCPUs, s.loadCPUs, s.logs, s.tls, s.portBase)
	for _, v := range [][]string{{"wrk", "-v"}, {"nginx", "-v"}, {"haproxy", "-v"}, {s.ocsiproxy, "--version"}, {"go", "version"}} {
		out, _ := exec.Command(v[0], v[1:]...).CombinedOutput()
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		fmt.Fprintf(&b, "%s: %s\n", filepath.Base(v[0]), first)
	}
	os.WriteFile(filepath.Join(s.out, "env.txt"), []byte(b.String()), 0o644)
	fmt.Print(b.String())
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
