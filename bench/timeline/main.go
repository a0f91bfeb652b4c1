// Command timeline reads a trace of one proxied connection (`perf script`
// of the sched and raw_syscalls tracepoints, as bench/timeline.sh records
// it) and prints where each request's time goes, from the client's write
// of the request to its read of the answer:
//
//	S1 the client's write of the request, to the proxy's read of it
//	S2 the proxy's work on the request, to its write to the backend
//	S3 the backend: from that write to the end of its write of the answer
//	S4 the end of the backend's write, to the proxy's read of the answer
//	S5 the proxy's work on the answer, to its write to the client
//	S6 that write (loopback: the client's side of TCP runs in it)
//	S7 the end of that write, to the client's read of the answer
//
// Each is given as the median, mean, 90th and 99th percentile over the
// requests of the trace, in microseconds, with the share of requests in
// which, during that segment, a timer interrupt came on the proxy's CPU
// (-cpu, 0), the proxy was preempted (switched out while it could still
// run: in S3, the backend it has just woken takes its CPU), or it took a
// page fault (with the trace's exceptions:page_fault_user tracepoint). Two
// more rows: S1 to S6, the client's write to the end of the proxy's write
// of the answer, and the total. With the trace's local_timer_entry and
// local_timer_exit tracepoints, timeline also says how many timer
// interrupts came on that CPU a second and which tasks they woke (a
// sleeping thread's timer, such as a Go runtime's sysmon waking from
// nanosleep, or none: the scheduler's tick), and how many of the slowest
// 1% of requests (by their total) met one: at one connection the tail is
// made of such interruptions, which cost far more on a virtual machine
// than their handlers' own time. Tracing adds about a microsecond to each
// system call, so compare proxies traced alike, not these figures with
// untraced ones. The trace must hold one client connection at a time: a
// request is a client write, then the proxy's first read of a request, its
// first write elsewhere, the backend's first write, the proxy's read of
// the answer, its write back, and the client's read, in that order.
package main

import (
	"bufio"
	"cmp"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The system calls that read and write a socket (x86-64 numbers): read,
// readv, recvfrom, pread64; write, writev, sendto, pwrite64.
var (
	readCalls  = map[int]bool{0: true, 19: true, 45: true, 17: true}
	writeCalls = map[int]bool{1: true, 20: true, 44: true, 18: true}
)

// event is a socket read that returned bytes, or a write, of one process.
type event struct {
	t     float64 // microseconds
	comm  string
	kind  string // "read" (its end), "write" (its start), "wrote" (its end)
	fd    int
	bytes int
}

// mark is a moment a task was interrupted: a page fault it took, or its
// preemption (switched out while it could still run).
type mark struct {
	t    float64 // microseconds
	comm string
}

// timerIRQ is a timer interrupt on the proxy's CPU.
type timerIRQ struct {
	t    float64 // its start, microseconds
	woke string  // the first task it woke; "" for none
}

// trace is what parse keeps of a trace.
type trace struct {
	events []event    // in time order
	timers []timerIRQ // on the CPU asked for, in time order
	// faults are the page faults taken in user space (a task touching a
	// page it does not have yet), and preempts the switches away from a
	// task that could still run (another task took its CPU), in time
	// order.
	faults, preempts []mark
	// first and last are the times of the first and last lines read.
	first, last float64
}

var (
	lineRE  = regexp.MustCompile(`^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$`)
	enterRE = regexp.MustCompile(`^NR (\d+) \(([0-9a-f]+)`)
	exitRE  = regexp.MustCompile(`^NR (\d+) = (-?\d+)`)
	wokeRE  = regexp.MustCompile(`comm=(.+?) pid=`)
	// prevRE takes a switch's task and its state: R (or R+) is a task
	// preempted, S or D one that went to sleep.
	prevRE = regexp.MustCompile(`prev_comm=(.+?) prev_pid=\d+ prev_prio=\d+ prev_state=(\S+)`)
)

// parse reads the trace and returns its socket events, and the timer
// interrupts on CPU cpu, in time order.
func parse(r io.Reader, cpu int) (*trace, error) {
	type pending struct {
		nr, fd int
	}
	open := map[int]pending{} // by thread
	tr := &trace{}
	var evs []event
	inTimer := false // within a timer interrupt on cpu
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		comm, name, rest := m[1], m[5], m[6]
		tid, _ := strconv.Atoi(m[2])
		onCPU, _ := strconv.Atoi(m[3])
		sec, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			continue
		}
		t := sec * 1e6
		if tr.first == 0 || t < tr.first {
			tr.first = t
		}
		tr.last = max(tr.last, t)
		switch name {
		case "irq_vectors:local_timer_entry":
			if onCPU == cpu {
				tr.timers = append(tr.timers, timerIRQ{t: t})
				inTimer = true
			}
		case "irq_vectors:local_timer_exit":
			if onCPU == cpu {
				inTimer = false
			}
		case "exceptions:page_fault_user":
			tr.faults = append(tr.faults, mark{t: t, comm: comm})
		case "sched:sched_switch":
			if p := prevRE.FindStringSubmatch(rest); p != nil && strings.HasPrefix(p[2], "R") {
				tr.preempts = append(tr.preempts, mark{t: t, comm: p[1]})
			}
		case "sched:sched_wakeup":
			if n := len(tr.timers); inTimer && onCPU == cpu && tr.timers[n-1].woke == "" {
				if w := wokeRE.FindStringSubmatch(rest); w != nil {
					tr.timers[n-1].woke = w[1]
				}
			}
		case "raw_syscalls:sys_enter":
			e := enterRE.FindStringSubmatch(rest)
			if e == nil {
				continue
			}
			nr, _ := strconv.Atoi(e[1])
			fd, err := strconv.ParseInt(e[2], 16, 64)
			if err != nil {
				continue
			}
			open[tid] = pending{nr, int(fd)}
			if writeCalls[nr] {
				evs = append(evs, event{t: t, comm: comm, kind: "write", fd: int(fd)})
			}
		case "raw_syscalls:sys_exit":
			e := exitRE.FindStringSubmatch(rest)
			if e == nil {
				continue
			}
			nr, _ := strconv.Atoi(e[1])
			ret, _ := strconv.Atoi(e[2])
			p, ok := open[tid]
			if !ok || p.nr != nr {
				continue
			}
			delete(open, tid)
			switch {
			case readCalls[nr] && ret > 0:
				evs = append(evs, event{t: t, comm: comm, kind: "read", fd: p.fd, bytes: ret})
			case writeCalls[nr]:
				evs = append(evs, event{t: t, comm: comm, kind: "wrote", fd: p.fd, bytes: ret})
			}
		}
	}
	slices.SortStableFunc(evs, func(a, b event) int { return cmp.Compare(a.t, b.t) })
	slices.SortStableFunc(tr.timers, func(a, b timerIRQ) int { return cmp.Compare(a.t, b.t) })
	byTime := func(a, b mark) int { return cmp.Compare(a.t, b.t) }
	slices.SortStableFunc(tr.faults, byTime)
	slices.SortStableFunc(tr.preempts, byTime)
	tr.events = evs
	return tr, sc.Err()
}

// segmentNames are the segments of a request, in order.
var segmentNames = []string{
	"S1 client write > proxy read",
	"S2 request work",
	"S3 backend",
	"S4 backend wrote > proxy read",
	"S5 answer work",
	"S6 write to the client",
	"S7 wrote > client read",
}

// requests walks the events and returns, for each request traced whole,
// the times of its eight steps.
func requests(evs []event, client, proxy, backend string) [][8]float64 {
	var out [][8]float64
	var cur [8]float64
	step := -1    // the last step seen; -1: no request under way
	clientFD := 0 // the proxy's descriptor of the client connection
	for _, e := range evs {
		if e.comm == client && e.kind == "write" {
			cur, step = [8]float64{e.t}, 0
			continue
		}
		if step < 0 {
			continue
		}
		switch {
		case step == 0 && e.comm == proxy && e.kind == "read":
			clientFD = e.fd
		case step == 1 && e.comm == proxy && e.kind == "write" && e.fd != clientFD:
		case step == 2 && e.comm == backend && e.kind == "wrote":
		case step == 3 && e.comm == proxy && e.kind == "read" && e.fd != clientFD:
		case step == 4 && e.comm == proxy && e.kind == "write" && e.fd == clientFD:
		case step == 5 && e.comm == proxy && e.kind == "wrote" && e.fd == clientFD:
		case step == 6 && e.comm == client && e.kind == "read":
		default:
			continue
		}
		step++
		cur[step] = e.t
		if step == 7 {
			out = append(out, cur)
			step = -1
		}
	}
	return out
}

// stats returns the median, mean, 90th and 99th percentile of v (sorted
// in place).
func stats(v []float64) (median, mean, p90, p99 float64) {
	slices.Sort(v)
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	return v[len(v)/2], sum / float64(len(v)), v[len(v)*9/10], v[len(v)*99/100]
}

// timerIn reports whether a timer interrupt of timers (in time order)
// started in [from, to).
func timerIn(timers []timerIRQ, from, to float64) bool {
	i, _ := slices.BinarySearchFunc(timers, from, func(x timerIRQ, t float64) int { return cmp.Compare(x.t, t) })
	return i < len(timers) && timers[i].t < to
}

// markIn reports whether marks (in time order) has one of comm in
// [from, to).
func markIn(marks []mark, comm string, from, to float64) bool {
	i, _ := slices.BinarySearchFunc(marks, from, func(x mark, t float64) int { return cmp.Compare(x.t, t) })
	for ; i < len(marks) && marks[i].t < to; i++ {
		if marks[i].comm == comm {
			return true
		}
	}
	return false
}

// report prints the segments of reqs, and what met them in tr: timer
// interrupts on the proxy's CPU, and the preemptions and page faults of
// proxy (its command name).
func report(w io.Writer, name, proxy string, tr *trace, reqs [][8]float64) {
	fmt.Fprintf(w, "%s: %d requests traced whole (microseconds, tracing included)\n", name, len(reqs))
	if len(reqs) == 0 {
		return
	}
	fmt.Fprintf(w, "  %-32s %8s %8s %8s %8s %8s %8s %8s\n", "", "median", "mean", "p90", "p99", "timer", "preempt", "fault")
	seg := make([]float64, len(reqs))
	pct := func(n int) float64 { return 100 * float64(n) / float64(len(reqs)) }
	row := func(label string, from, to int) {
		timers, preempts, faults := 0, 0, 0
		for i, r := range reqs {
			seg[i] = r[to] - r[from]
			if timerIn(tr.timers, r[from], r[to]) {
				timers++
			}
			if markIn(tr.preempts, proxy, r[from], r[to]) {
				preempts++
			}
			if markIn(tr.faults, proxy, r[from], r[to]) {
				faults++
			}
		}
		med, mean, p90, p99 := stats(seg)
		fmt.Fprintf(w, "  %-32s %8.1f %8.1f %8.1f %8.1f %7.1f%% %7.1f%% %7.1f%%\n", label, med, mean, p90, p99, pct(timers), pct(preempts), pct(faults))
	}
	for i, label := range segmentNames {
		row(label, i, i+1)
	}
	row("S1-S6 to the answer written", 0, 6)
	row("total", 0, 7)
	secs := (tr.last - tr.first) / 1e6
	if len(tr.timers) == 0 {
		fmt.Fprintln(w, "  no timer interrupts in the trace (local_timer_entry not recorded?)")
	} else {
		by := map[string]int{}
		for _, x := range tr.timers {
			by[cmp.Or(x.woke, "none (tick)")]++
		}
		woke := slices.SortedFunc(maps.Keys(by), func(a, b string) int { return cmp.Or(-cmp.Compare(by[a], by[b]), cmp.Compare(a, b)) })
		fmt.Fprintf(w, "  timer interrupts on the proxy's CPU: %.0f a second; woke:", float64(len(tr.timers))/secs)
		for _, k := range woke {
			fmt.Fprintf(w, " %s %.0f/s", k, float64(by[k])/secs)
		}
		fmt.Fprintln(w)
	}
	faults := 0
	for _, f := range tr.faults {
		if f.comm == proxy {
			faults++
		}
	}
	fmt.Fprintf(w, "  page faults of the proxy: %.0f a second\n", float64(faults)/secs)
	order := make([]int, len(reqs))
	for i := range order {
		order[i] = i
	}
	total := func(i int) float64 { return reqs[i][7] - reqs[i][0] }
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(total(b), total(a)) })
	share := func(idx []int, met func(from, to float64) bool) float64 {
		hit := 0
		for _, i := range idx {
			if met(reqs[i][0], reqs[i][7]) {
				hit++
			}
		}
		return 100 * float64(hit) / float64(len(idx))
	}
	slow := order[:max(1, len(order)/100)]
	fmt.Fprintf(w, "  slowest 1%% of requests: %d, from %.1f us\n", len(slow), total(slow[len(slow)-1]))
	for _, m := range []struct {
		what string
		met  func(from, to float64) bool
	}{
		{"a timer interrupt", func(from, to float64) bool { return timerIn(tr.timers, from, to) }},
		{"a preemption of the proxy", func(from, to float64) bool { return markIn(tr.preempts, proxy, from, to) }},
		{"a page fault of the proxy", func(from, to float64) bool { return markIn(tr.faults, proxy, from, to) }},
	} {
		fmt.Fprintf(w, "  requests that met %s: %.1f%% of all, %.1f%% of the slowest 1%%\n", m.what, share(order, m.met), share(slow, m.met))
	}
}

func main() {
	client := flag.String("client", "wrk", "the client's command name")
	proxy := flag.String("proxy", "ocsiproxy", "the proxy's command name (as perf prints it: 15 characters at most)")
	backend := flag.String("backend", "backend", "the backend's command name")
	cpu := flag.Int("cpu", 0, "the CPU the proxy and the backend run on")
	name := flag.String("name", "", "the name printed (default: the proxy's)")
	flag.Parse()
	tr, err := parse(os.Stdin, *cpu)
	if err != nil {
		fmt.Fprintln(os.Stderr, "timeline:", err)
		os.Exit(1)
	}
	label := *name
	if label == "" {
		label = *proxy
	}
	p := strings.TrimSpace(*proxy)
	report(os.Stdout, label, p, tr, requests(tr.events, *client, p, *backend))
}
