package main

import (
	"os"
	"strings"
	"testing"
)

// TestOneRequest reads a trace of one request whole and the start of the
// next (testdata/one-request.txt, lines of a real trace) and checks each
// segment's length.
func TestOneRequest(t *testing.T) {
	f, err := os.Open("testdata/one-request.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := parse(f)
	if err != nil {
		t.Fatal(err)
	}
	reqs := requests(evs, "wrk", "ocsiproxy", "backend")
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
	report(&out, "ocsiproxy", reqs)
	if !strings.Contains(out.String(), "ocsiproxy: 1 requests traced whole") || !strings.Contains(out.String(), "S5 answer work") {
		t.Errorf("report:\n%s", out.String())
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
		evs, err := parse(strings.NewReader(trace))
		if err != nil {
			return // a line longer than the scanner takes
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
