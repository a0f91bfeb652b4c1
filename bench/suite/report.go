package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
)

// report prints the tables and the targets, and writes
// summary.txt and results.tsv in the result directory.
func (s *suite) report() error {
	var b strings.Builder
	over := ""
	if s.tls {
		over = ", over TLS (HTTPS)"
	}
	fmt.Fprintf(&b, "\nocsiproxy benchmark suite: %v per run after %v of warm-up, %d round(s) (medians), pin=%s, access logs %s%s\n",
		s.duration, s.warmup, s.rounds, s.pin, map[bool]string{true: "on", false: "off"}[s.logs], over)
	for _, sc := range s.scenarios {
		switch sc {
		case "idle":
			s.idleTable(&b)
		case "rules":
			s.rulesTable(&b)
		case "groups":
			s.groupsTable(&b)
		default:
			s.loadTable(&b, sc)
		}
	}
	s.verdicts(&b)
	var noisy []string
	for _, r := range s.results {
		if r.otherCores > 0.3 {
			noisy = append(noisy, fmt.Sprintf("%s/%s (%.2f)", r.scenario, r.target, r.otherCores))
		}
	}
	if len(noisy) > 0 {
		fmt.Fprintf(&b, "\nWARNING: other processes used more than 0.3 cores during %s: those numbers are disturbed.\n", strings.Join(noisy, ", "))
	}
	fmt.Print(b.String())
	if err := os.WriteFile(filepath.Join(s.out, "summary.txt"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	var tsv strings.Builder
	tsv.WriteString("scenario\ttarget\trules\tconns\treq_per_s\tp50_us\tp99_us\tcpu_us_per_req\tuser_us_per_req\tbackend_cpu_us_per_req\trss_mib\terrors\tother_cores\n")
	for _, r := range s.results {
		fmt.Fprintf(&tsv, "%s\t%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.1f\t%d\t%.2f\n", r.scenario, r.target, r.rules, r.conns,
			r.reqs, r.p50, r.p99, r.cpuPerReq, r.userPerReq, r.backendPerReq, r.rssMiB, r.errors, r.otherCores)
	}
	for _, r := range s.idleResults {
		fmt.Fprintf(&tsv, "idle\t%s\t0\t%d\t\t\t\t\t\t%.1f\t\t\n", r.target, r.conns, float64(r.after)/(1<<20))
	}
	fmt.Printf("\nresults: %s\n", s.out)
	return os.WriteFile(filepath.Join(s.out, "results.tsv"), []byte(tsv.String()), 0o644)
}

// find returns the result of (scenario, target): with several rounds,
// each figure is the median over the rounds, and spread is the CPU per
// request's (max-min)/2/median.
func (s *suite) find(scenario, target string) *result {
	var rs []result
	for _, r := range s.results {
		if r.scenario == scenario && r.target == target {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	med := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	m := rs[0]
	m.reqs = med(func(r result) float64 { return r.reqs })
	m.p50 = med(func(r result) float64 { return r.p50 })
	m.p99 = med(func(r result) float64 { return r.p99 })
	m.cpuPerReq = med(func(r result) float64 { return r.cpuPerReq })
	m.userPerReq = med(func(r result) float64 { return r.userPerReq })
	m.backendPerReq = med(func(r result) float64 { return r.backendPerReq })
	m.rssMiB = med(func(r result) float64 { return r.rssMiB })
	m.otherCores = med(func(r result) float64 { return r.otherCores })
	m.errors = 0
	lo, hi := rs[0].cpuPerReq, rs[0].cpuPerReq
	for _, r := range rs {
		m.errors += r.errors
		lo, hi = min(lo, r.cpuPerReq), max(hi, r.cpuPerReq)
	}
	if m.cpuPerReq > 0 {
		m.spread = (hi - lo) / 2 / m.cpuPerReq
	}
	return &m
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func (s *suite) loadTable(b *strings.Builder, sc string) {
	l := loads[sc]
	fmt.Fprintf(b, "\n== %s: %s, %d connection(s)\n", sc, l.title, l.conns(s))
	w := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "target\treq/s\tx nginx\tp50 ms\tp99 ms\tp99 x nginx\tCPU us/req\tuser us/req\tspread\tCPU x nginx\tbackend us/req\tRSS MiB\terrors\tother cores\t")
	ng := s.find(sc, "nginx")
	for _, name := range s.targets {
		r := s.find(sc, name)
		if r == nil {
			continue
		}
		rq, rp, rc := "-", "-", "-"
		if ng != nil {
			rq, rp, rc = ratio(r.reqs, ng.reqs), ratio(r.p99, ng.p99), ratio(r.cpuPerReq, ng.cpuPerReq)
		}
		fmt.Fprintf(w, "%s\t%.0f\t%s\t%.3f\t%.3f\t%s\t%.1f\t%.1f\t±%.0f%%\t%s\t%.1f\t%.1f\t%d\t%.2f\t\n", name, r.reqs, rq, r.p50/1000, r.p99/1000, rp,
			r.cpuPerReq, r.userPerReq, 100*r.spread, rc, r.backendPerReq, r.rssMiB, r.errors, r.otherCores)
	}
	w.Flush()
}

func (s *suite) idleTable(b *strings.Builder) {
	fmt.Fprintf(b, "\n== idle: %d idle keep-alive client connections (each had one answer); RSS of the proxy\n", s.idleConns)
	w := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "target\tRSS before MiB\tRSS with them MiB\tKiB per connection\tx nginx\t")
	var ng float64
	for _, r := range s.idleResults {
		if r.target == "nginx" {
			ng = float64(r.after - r.before)
		}
	}
	for _, r := range s.idleResults {
		d := float64(r.after - r.before)
		fmt.Fprintf(w, "%s\t%.1f\t%.1f\t%.2f\t%s\t\n", r.target, float64(r.before)/(1<<20), float64(r.after)/(1<<20), d/float64(r.conns)/1024, ratio(d, ng))
	}
	w.Flush()
}

func (s *suite) rulesTable(b *strings.Builder) {
	fmt.Fprintf(b, "\n== rules: the request matches the last rule; 10 rules vs %d (regexps \"svcI/(v1|v2)/(.*)\", nginx: regexp locations), %d connections\n", s.rules, s.conns)
	w := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "target\trules\treq/s\tp50 ms\tp99 ms\tCPU us/req\tCPU x 10 rules\tother cores\t")
	for _, kind := range []string{"ocsiproxy", "nginx"} {
		small := s.find("rules", fmt.Sprintf("%s-rules10", kind))
		for _, n := range []int{10, s.rules} {
			r := s.find("rules", fmt.Sprintf("%s-rules%d", kind, n))
			if r == nil || small == nil {
				continue
			}
			fmt.Fprintf(w, "%s\t%d\t%.0f\t%.3f\t%.3f\t%.1f\t%s\t%.2f\t\n", kind, n, r.reqs, r.p50/1000, r.p99/1000, r.cpuPerReq, ratio(r.cpuPerReq, small.cpuPerReq), r.otherCores)
		}
	}
	w.Flush()
}

func (s *suite) groupsTable(b *strings.Builder) {
	fmt.Fprintf(b, "\n== groups: GET / (64-byte answer), %d connections; one upstream vs <upstream name=\"g\" balance=\"round_robin\"> of 3 servers (nginx: an upstream block of 1, then 3); backend us/req sums the backends\n", s.conns)
	w := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "target\tservers\treq/s\tp50 ms\tp99 ms\tCPU us/req\tspread\tCPU x 1 upstream\tbackend us/req\terrors\tother cores\t")
	for _, kind := range []string{"ocsiproxy", "nginx"} {
		single := s.find("groups", kind+"-single")
		for _, name := range []string{"single", "group3"} {
			r := s.find("groups", kind+"-"+name)
			if r == nil || single == nil {
				continue
			}
			n := 1
			if name == "group3" {
				n = 3
			}
			fmt.Fprintf(w, "%s\t%d\t%.0f\t%.3f\t%.3f\t%.1f\t±%.0f%%\t%s\t%.1f\t%d\t%.2f\t\n", kind, n, r.reqs, r.p50/1000, r.p99/1000,
				r.cpuPerReq, 100*r.spread, ratio(r.cpuPerReq, single.cpuPerReq), r.backendPerReq, r.errors, r.otherCores)
		}
	}
	w.Flush()
}

// verdicts compares ocsiproxy with the targets of issue 7, and of the
// upstream groups' issue.
func (s *suite) verdicts(b *strings.Builder) {
	for _, name := range []string{"ocsiproxy"} {
		fmt.Fprintf(b, "\n== targets (issue 7): %s\n", name)
		line := func(what string, value float64, unit, cmp string, limit float64, ok bool) {
			v := "NOT MET"
			if ok {
				v = "met"
			}
			fmt.Fprintf(b, "  %-48s %8.2f%s (target %s %.2f%s): %s\n", what, value, unit, cmp, limit, unit, v)
		}
		if o, n := s.find("small", name), s.find("small", "nginx"); o != nil && n != nil {
			line("small: CPU per request, x nginx", o.cpuPerReq/n.cpuPerReq, "", "<=", 1.25, o.cpuPerReq <= 1.25*n.cpuPerReq)
			line("small: requests/s, x nginx", o.reqs/n.reqs, "", ">=", 0.8, o.reqs >= 0.8*n.reqs)
			line("small: p99 latency, x nginx", o.p99/n.p99, "", "<=", 1.5, o.p99 <= 1.5*n.p99)
		}
		if o, n := s.find("lat1", name), s.find("lat1", "nginx"); o != nil && n != nil {
			line("lat1: p99 latency, x nginx", o.p99/n.p99, "", "<=", 1.5, o.p99 <= 1.5*n.p99)
		}
		for _, r := range s.idleResults {
			if r.target == name {
				kib := float64(r.after-r.before) / float64(r.conns) / 1024
				line("idle: RSS per idle connection", kib, " KiB", "<", 10, kib < 10)
			}
		}
		if name != "ocsiproxy" {
			continue
		}
		small, large := s.find("rules", "ocsiproxy-rules10"), s.find("rules", fmt.Sprintf("ocsiproxy-rules%d", s.rules))
		if small != nil && large != nil {
			line(fmt.Sprintf("rules: CPU per request, %d rules x 10 rules", s.rules), large.cpuPerReq/small.cpuPerReq, "", "<=", 1.5, large.cpuPerReq <= 1.5*small.cpuPerReq)
		}
		single, group := s.find("groups", "ocsiproxy-single"), s.find("groups", "ocsiproxy-group3")
		if single != nil && group != nil {
			line("groups: CPU per request, 3-server group x single upstream", group.cpuPerReq/single.cpuPerReq, "", "<=", 1.10, group.cpuPerReq <= 1.10*single.cpuPerReq)
		}
	}
}
