// Package gctune keeps the garbage collector from running after every few
// megabytes of allocation when the live heap is small.
//
// With GOGC=100 the collector runs whenever the heap has grown by the
// live heap since the last collection, and at least every 4 MiB. A proxy
// keeps little alive (about 2 MiB) and allocates a few kilobytes per
// request, so it collected many times a second under load, and a request
// that arrived during a collection waited for it on a busy core. Raising
// GOGC for good would multiply the memory of a large live heap (10,000
// idle connections) as well. Tuner instead sets GOGC after each
// collection so that the next one comes when the heap has grown by the
// larger of the live heap and a fixed headroom: a small heap gets the
// headroom, a large one the usual doubling.
//
// Measured with bench/ (lat1: one connection, one request at a time;
// three interleaved pairs of 3-round runs), when a request left 3.1 KB of
// garbage: p99 0.34-0.47 ms with GOGC=100, 0.17-0.24 ms with a 16 MiB
// headroom; CPU per request unchanged within the noise; RSS 16.7 -> 28.7
// MiB. At 2.0 KB per request (the suite, small and lat1, 3 rounds each,
// 2026-12-05), headrooms of 16, 8 and 4 MiB gave the same CPU per request
// (28.4, 28.2, 28.0 us in small) and lat1 p99 (0.219, 0.197, 0.215 ms),
// and RSS under load of 37.3, 27.6 and 22.6 MiB: the default is 4 MiB.
package gctune

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
)

// DefaultHeadroom is the growth of the heap between two collections that
// Start keeps at least, 4 MiB: the resident memory it adds when the live
// heap is small.
const DefaultHeadroom = 4 << 20

// HeadroomEnv is the environment variable that sets the headroom, in
// MiB, in place of DefaultHeadroom.
const HeadroomEnv = "OCSIPROXY_GC_HEADROOM"

// maxHeadroomMiB bounds the headroom HeadroomEnv may set.
const maxHeadroomMiB = 4096

// Headroom returns the headroom to tune with: HeadroomEnv's, a whole
// number of MiB from 1 to 4096, when the variable is set (an error when
// it is not such a number), else DefaultHeadroom.
func Headroom() (uint64, error) {
	v, ok := os.LookupEnv(HeadroomEnv)
	if !ok {
		return DefaultHeadroom, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxHeadroomMiB {
		return 0, fmt.Errorf("gctune: %s=%q: want a whole number of MiB from 1 to %d", HeadroomEnv, v, maxHeadroomMiB)
	}
	return uint64(n) << 20, nil
}

// basePercent is GOGC's default, kept for live heaps above the headroom.
const basePercent = 100

// Tuner adjusts GOGC after each collection.
type Tuner struct {
	headroom uint64

	mu      sync.Mutex
	stopped bool
	percent int // the GOGC set last
	samples []metrics.Sample
}

// Start starts tuning with the given headroom. It returns nil, and
// changes nothing, when the GOGC environment variable is set: the
// operator's choice stands.
func Start(headroom uint64) *Tuner {
	if _, ok := os.LookupEnv("GOGC"); ok {
		return nil
	}
	t := &Tuner{
		headroom: headroom,
		percent:  basePercent,
		samples:  []metrics.Sample{{Name: "/gc/heap/live:bytes"}},
	}
	t.update()
	t.arm()
	return t
}

// Stop ends the tuning and restores GOGC's default.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	debug.SetGCPercent(basePercent)
}

// Percent returns the GOGC the tuner set last.
func (t *Tuner) Percent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.percent
}

// sentinel is the object whose cleanup marks a collection; its pointer
// keeps it out of the tiny allocator, whose objects' cleanups may never
// run.
type sentinel struct{ _ *byte }

// arm has the next collection call update: a cleanup runs once the
// collector has found its object unreachable.
func (t *Tuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *Tuner) {
		if t.update() {
			t.arm()
		}
	}, t)
}

// update sets GOGC from the live heap of the last collection; false once
// stopped.
func (t *Tuner) update() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.samples)
	live := uint64(0)
	if s := t.samples[0]; s.Value.Kind() == metrics.KindUint64 {
		live = s.Value.Uint64()
	}
	p := percentFor(live, t.headroom)
	if p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
	return true
}

// runtimeHeapMinimum is the runtime's smallest heap goal at GOGC=100; it
// scales with GOGC (a goal is never under 4 MiB x GOGC/100).
const runtimeHeapMinimum = 4 << 20

// percentFor is the GOGC that makes the heap goal the larger of twice the
// live heap and live+headroom. The runtime's goal is the larger of
// live x (1+GOGC/100) and its minimum, which grows with GOGC: past the
// point where that minimum is live+headroom, a larger GOGC would only
// raise it.
func percentFor(live, headroom uint64) int {
	if live == 0 {
		live = 1 << 20 // before the first collection: as for 1 MiB
	}
	p := min(headroom*100/live, (live+headroom)*100/runtimeHeapMinimum)
	return int(max(p, basePercent))
}
