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
// Each is given as the median, mean and 90th percentile over the requests
// of the trace, in microseconds. Tracing adds about a microsecond to each
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

var (
	lineRE  = regexp.MustCompile(`^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$`)
	enterRE = regexp.MustCompile(`^NR (\d+) \(([0-9a-f]+)`)
	exitRE  = regexp.MustCompile(`^NR (\d+) = (-?\d+)`)
)

// parse reads the trace and returns its socket events in time order.
func parse(r io.Reader) ([]event, error) {
	type pending struct {
		nr, fd int
	}
	open := map[int]pending{} // by thread
	var evs []event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		comm, name, rest := m[1], m[5], m[6]
		tid, _ := strconv.Atoi(m[2])
		sec, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			continue
		}
		t := sec * 1e6
		switch name {
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
	return evs, sc.Err()
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

// stats returns the median, mean and 90th percentile of v (sorted in
// place).
func stats(v []float64) (median, mean, p90 float64) {
	slices.Sort(v)
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	return v[len(v)/2], sum / float64(len(v)), v[len(v)*9/10]
}

func report(w io.Writer, name string, reqs [][8]float64) {
	fmt.Fprintf(w, "%s: %d requests traced whole (microseconds, tracing included)\n", name, len(reqs))
	if len(reqs) == 0 {
		return
	}
	fmt.Fprintf(w, "  %-32s %8s %8s %8s\n", "", "median", "mean", "p90")
	seg := make([]float64, len(reqs))
	row := func(label string, from, to int) {
		for i, r := range reqs {
			seg[i] = r[to] - r[from]
		}
		med, mean, p90 := stats(seg)
		fmt.Fprintf(w, "  %-32s %8.1f %8.1f %8.1f\n", label, med, mean, p90)
	}
	for i, label := range segmentNames {
		row(label, i, i+1)
	}
	row("total", 0, 7)
}

func main() {
	client := flag.String("client", "wrk", "the client's command name")
	proxy := flag.String("proxy", "ocsiproxy", "the proxy's command name (as perf prints it: 15 characters at most)")
	backend := flag.String("backend", "backend", "the backend's command name")
	name := flag.String("name", "", "the name printed (default: the proxy's)")
	flag.Parse()
	evs, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "timeline:", err)
		os.Exit(1)
	}
	label := *name
	if label == "" {
		label = *proxy
	}
	report(os.Stdout, label, requests(evs, *client, strings.TrimSpace(*proxy), *backend))
}
