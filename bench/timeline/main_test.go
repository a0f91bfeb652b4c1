package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// parseFile parses the trace in the file name, for CPU 0.
func parseFile(t *testing.T, name string) *trace {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := parse(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestOneRequest reads a trace of one request whole and the start of the
// next (testdata/one-request.txt, lines of a real trace) and checks each
// segment's length.
func TestOneRequest(t *testing.T) {
	tr := parseFile(t, "testdata/one-request.txt")
	reqs := requests(tr.events, "wrk", "ocsiproxy", "backend")
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1 (the second is not traced whole)", len(reqs))
	}
	// The client writes at .604590; the proxy has read the request at
	// .604615, starts its write to the backend at .604621, the backend has
	// written at .604649, the proxy has read the answer at .604675 (not the
	// empty read after it), starts writing it at .604685 and is done at
	// .604698; the client has read it at .604709.
	want := []float64{25, 6, 28, 26, 10, 13, 11}
	for i, w := range want {
		if got := reqs[0][i+1] - reqs[0][i]; got < w-0.01 || got > w+0.01 {
			t.Errorf("%s: %.3f us, want %v", segmentNames[i], got, w)
		}
	}
	var out strings.Builder
	report(&out, "ocsiproxy", "ocsiproxy", tr, reqs)
	if !strings.Contains(out.String(), "ocsiproxy: 1 requests traced whole") || !strings.Contains(out.String(), "S5 answer work") {
		t.Errorf("report:\n%s", out.String())
	}
}

// TestTimerInterrupts reads the request of one-request.txt with three
// timer interrupts added: one on CPU 0 during the proxy's work on the
// request, which wakes the backend (as a Go runtime's sysmon waking from
// nanosleep); one on CPU 1, not counted; and a tick on CPU 0 while the
// client reads the answer, which wakes nothing (the wakeup after its exit
// is not its).
func TestTimerInterrupts(t *testing.T) {
	tr := parseFile(t, "testdata/timer-interrupts.txt")
	want := []timerIRQ{{t: 54213.604617e6, woke: "backend"}, {t: 54213.604702e6}}
	if len(tr.timers) != len(want) {
		t.Fatalf("timers %+v, want %+v", tr.timers, want)
	}
	for i, w := range want {
		if g := tr.timers[i]; g.woke != w.woke || g.t < w.t-0.01 || g.t > w.t+0.01 {
			t.Errorf("timer %d: %+v, want %+v", i, g, w)
		}
	}
	// The trace spans 132 us (.604590 to .604722): each timer is 7,576 a
	// second.
	reportHas(t, tr, []string{
		// The proxy is preempted once, by the backend, during S3.
		"S2 request work                       6.0      6.0      6.0      6.0   100.0%     0.0%     0.0%",
		"S3 backend                           28.0     28.0     28.0     28.0     0.0%   100.0%     0.0%",
		"S7 wrote > client read               11.0     11.0     11.0     11.0   100.0%     0.0%     0.0%",
		"S1-S6 to the answer written         108.0    108.0    108.0    108.0   100.0%   100.0%     0.0%",
		"timer interrupts on the proxy's CPU: 15152 a second; woke: backend 7576/s none (tick) 7576/s",
		"page faults of the proxy: 0 a second",
		"slowest 1% of requests: 1, from 119.0 us",
		"requests that met a timer interrupt: 100.0% of all, 100.0% of the slowest 1%",
		"requests that met a preemption of the proxy: 100.0% of all, 100.0% of the slowest 1%",
		"requests that met a page fault of the proxy: 0.0% of all, 0.0% of the slowest 1%",
	})
}

// TestPageFaults reads the trace of TestTimerInterrupts with two page
// faults added (testdata/interruptions.txt): one of the backend during
// S3, not the proxy's, and one of the proxy during its work on the
// answer (S5).
func TestPageFaults(t *testing.T) {
	tr := parseFile(t, "testdata/interruptions.txt")
	if len(tr.faults) != 2 || tr.faults[0].comm != "backend" || tr.faults[1].comm != "ocsiproxy" {
		t.Fatalf("faults %+v, want the backend's then the proxy's", tr.faults)
	}
	reportHas(t, tr, []string{
		"S3 backend                           28.0     28.0     28.0     28.0     0.0%   100.0%     0.0%",
		"S5 answer work                       10.0     10.0     10.0     10.0     0.0%     0.0%   100.0%",
		"page faults of the proxy: 7576 a second",
		"requests that met a page fault of the proxy: 100.0% of all, 100.0% of the slowest 1%",
	})
}

// reportHas checks that tr holds one request traced whole, and that the
// report of it (the proxy ocsiproxy) has each of lines.
func reportHas(t *testing.T, tr *trace, lines []string) {
	t.Helper()
	reqs := requests(tr.events, "wrk", "ocsiproxy", "backend")
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	var out strings.Builder
	report(&out, "ocsiproxy", "ocsiproxy", tr, reqs)
	for _, line := range lines {
		if !strings.Contains(out.String(), line) {
			t.Errorf("report lacks %q:\n%s", line, out.String())
		}
	}
}

// FuzzParse feeds random traces to parse and requests: no panic, the
// events in time order, and every request's steps in time order.
func FuzzParse(f *testing.F) {
	seed, err := os.ReadFile("testdata/one-request.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(seed))
	f.Add("wrk 1 [001] 1.000001: raw_syscalls:sys_enter: NR 1 (5, 0, 0)\n")
	f.Fuzz(func(t *testing.T, trace string) {
		tr, err := parse(strings.NewReader(trace), 0)
		if err != nil {
			return // a line longer than the scanner takes
		}
		evs := tr.events
		for _, marks := range [][]mark{tr.faults, tr.preempts} {
			for i := 1; i < len(marks); i++ {
				if marks[i].t < marks[i-1].t {
					t.Fatalf("mark %d at %v before mark %d at %v", i, marks[i].t, i-1, marks[i-1].t)
				}
			}
		}
		for i := 1; i < len(tr.timers); i++ {
			if tr.timers[i].t < tr.timers[i-1].t {
				t.Fatalf("timer %d at %v before timer %d at %v", i, tr.timers[i].t, i-1, tr.timers[i-1].t)
			}
		}
		if reqs := requests(evs, "wrk", "ocsiproxy", "backend"); len(reqs) > 0 {
			report(io.Discard, "fuzz", "ocsiproxy", tr, reqs)
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].t < evs[i-1].t {
				t.Fatalf("event %d at %v before event %d at %v", i, evs[i].t, i-1, evs[i-1].t)
			}
		}
		for _, r := range requests(evs, "wrk", "ocsiproxy", "backend") {
			for i := 1; i < len(r); i++ {
				if r[i] < r[i-1] {
					t.Fatalf("request steps out of order: %v", r)
				}
			}
		}
	})
}
