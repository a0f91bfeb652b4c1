package gctune

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/syncbuf"
)

// TestTrimmerDue: memory is given back after a quiet interval in which
// the heap holds enough garbage and free memory, and not otherwise.
func TestTrimmerDue(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name  string
		looks []heap
		want  []bool
	}{
		{"first look only records",
			[]heap{{allocs: 0, live: 10 * mib, objects: 60 * mib}},
			[]bool{false}},
		{"quiet with garbage",
			[]heap{{allocs: 100 * mib}, {allocs: 100*mib + 1000, live: 40 * mib, objects: 80 * mib}},
			[]bool{false, true}},
		{"quiet with free memory",
			[]heap{{allocs: 100 * mib}, {allocs: 100 * mib, live: 2 * mib, objects: 2 * mib, free: 9 * mib}},
			[]bool{false, true}},
		{"busy with garbage",
			[]heap{{allocs: 100 * mib}, {allocs: 101 * mib, live: 40 * mib, objects: 80 * mib}},
			[]bool{false, false}},
		{"just under quiet",
			[]heap{{allocs: 100 * mib}, {allocs: 100*mib + QuietBytes - 1, live: 40 * mib, objects: 80 * mib}},
			[]bool{false, true}},
		{"just over quiet",
			[]heap{{allocs: 100 * mib}, {allocs: 100*mib + QuietBytes, live: 40 * mib, objects: 80 * mib}},
			[]bool{false, false}},
		{"quiet, less than MinTrim to give",
			[]heap{{allocs: 0}, {allocs: 0, live: 4 * mib, objects: 8 * mib, free: 3 * mib}},
			[]bool{false, false}},
		{"quiet, less than a quarter of a large live heap",
			[]heap{{allocs: 0}, {allocs: 0, live: 200 * mib, objects: 230 * mib, free: 19 * mib}},
			[]bool{false, false}},
		{"quiet, a quarter of a large live heap",
			[]heap{{allocs: 0}, {allocs: 0, live: 200 * mib, objects: 230 * mib, free: 20 * mib}},
			[]bool{false, true}},
		{"busy, then quiet",
			[]heap{{allocs: 0}, {allocs: 50 * mib, live: 40 * mib, objects: 90 * mib}, {allocs: 50 * mib, live: 40 * mib, objects: 90 * mib}},
			[]bool{false, false, true}},
		{"counter went back (not quiet)",
			[]heap{{allocs: 50 * mib}, {allocs: 1, live: 40 * mib, objects: 90 * mib}},
			[]bool{false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTrimmer()
			for i, h := range tt.looks {
				if got := tr.due(h); got != tt.want[i] {
					t.Errorf("look %d (%+v): due %v, want %v", i, h, got, tt.want[i])
				}
			}
		})
	}
}

// sink keeps the test's garbage from being optimized away.
var sink []byte

// released reads the heap memory given back to the system.
func released() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestTunerTrims: garbage left after a burst is collected and given back
// once the process goes quiet, once. A live heap of 32 MiB keeps the
// collector's goal (GOGC=100) above what the heap holds, so the runtime
// would not give the garbage back by itself.
func TestTunerTrims(t *testing.T) {
	tu := &Tuner{}
	var events syncbuf.Buffer
	tu.SetEventLog(func(format string, args ...any) { fmt.Fprintf(&events, format+"\n", args...) })
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	live := make([][]byte, 512)
	for i := range live {
		live[i] = make([]byte, 64<<10)
	}
	runtime.GC()
	// 24 MiB of garbage that no collection has seen yet, as after a
	// burst of TLS handshakes.
	debug.SetGCPercent(-1)
	for range 384 {
		sink = make([]byte, 64<<10)
	}
	sink = nil
	debug.SetGCPercent(100)
	before := released()

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { tu.trim(20*time.Millisecond, stop); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for tu.Trims() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if tu.Trims() == 0 {
		close(stop)
		<-done
		t.Fatal("no trim within 10 s of going quiet with 24 MiB of garbage")
	}
	if got := released(); got < before+16<<20 {
		t.Errorf("released %d MiB before the trim, %d after: want at least 16 MiB more", before>>20, got>>20)
	}
	time.Sleep(200 * time.Millisecond) // ten more looks, with nothing to give back
	close(stop)
	<-done
	if n := tu.Trims(); n != 1 {
		t.Errorf("%d trims, want 1: a quiet heap with nothing to give back is left alone", n)
	}
	runtime.KeepAlive(live)
	if got := events.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "MiB given back to the system (live heap") {
		t.Errorf("event log %q: want one line saying what was given back", got)
	}
}
