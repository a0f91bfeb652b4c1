// Package gctune sets the garbage collector's pace while serving: as
// little memory as the garbage allows, and no more than about two
// collections a second.
//
// Go's default (GOGC=100) collects whenever the heap has grown by the
// live heap, and at least every 4 MiB. That pace suits neither end of a
// proxy's life:
//
//   - when requests leave garbage (3 KB each, as the plain path once did;
//     HTTP/2 and compression still do), a live heap of 2 MiB is collected
//     many times a second, and a request arriving during a collection
//     waits on a busy core. Measured with bench/ (lat1, three interleaved
//     pairs of 3-round runs): p99 0.34-0.47 ms at GOGC=100, 0.17-0.24 ms
//     with 16 MiB between collections;
//   - when they leave next to none (the plain path now: 1 allocation,
//     163 bytes), 4 MiB between collections is memory held for nothing:
//     under the suite's small load (64 connections, 2 MiB live; measured
//     with the proxy and its backend on one core, wrk on the other) RSS
//     was 21.7 MiB with a 4 MiB headroom, 20.2 with GOGC=100 and 18.8
//     with GOGC=50, the collector then running about twice a second
//     (about 1.5 ms of CPU each).
//
// A Tuner therefore sets GOGC after each collection so that the heap may
// grow by the larger of a headroom and the live heap (half of it for a
// live heap up to SmallHeap), and sizes the headroom to the garbage: what
// was allocated per second since the last collection, times Interval,
// within MinHeadroom and MaxHeadroom, and at most twice the headroom
// before. Under load the collector so runs about every Interval, or less
// often when the live heap is larger; idle, the headroom is MinHeadroom.
// A collection costs in proportion to the live heap: growing a small one
// by half costs little (about 1.5 ms of CPU a collection at 2 MiB), but a
// large one (10,000 rules, 10,000 idle connections) keeps Go's doubling,
// which halves its collections. An operator's headroom (HeadroomEnv) is
// kept as it is.
//
// A Tuner also gives memory back once the server goes quiet after a
// burst that left garbage (see trim.go): the heap is then collected once
// and its free memory returned to the system.
package gctune

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"
)

// MinHeadroom and MaxHeadroom bound the headroom a Tuner adapts; it
// starts at MinHeadroom.
const (
	MinHeadroom = 1 << 20
	MaxHeadroom = 64 << 20
)

// Interval is the time between two collections that the adapted
// headroom aims at, under load.
const Interval = 500 * time.Millisecond

// HeadroomEnv is the environment variable that fixes the headroom, in
// MiB, in place of the adapted one.
const HeadroomEnv = "OCSIPROXY_GC_HEADROOM"

// maxHeadroomMiB bounds the headroom HeadroomEnv may set.
const maxHeadroomMiB = 4096

// Headroom returns the headroom HeadroomEnv fixes, a whole number of
// MiB from 1 to 4096, when the variable is set (an error when it is not
// such a number); 0, for a headroom adapted to the garbage, when it is
// not set.
func Headroom() (uint64, error) {
	v, ok := os.LookupEnv(HeadroomEnv)
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxHeadroomMiB {
		return 0, fmt.Errorf("gctune: %s=%q: want a whole number of MiB from 1 to %d", HeadroomEnv, v, maxHeadroomMiB)
	}
	return uint64(n) << 20, nil
}

// goPercent is GOGC's default, restored by Stop.
const goPercent = 100

// minPercent is the GOGC of a live heap up to SmallHeap larger than twice
// the headroom: the heap grows by half of it between collections. A
// larger live heap gets at least goPercent.
const minPercent = 50

// SmallHeap is the largest live heap that grows by less than itself
// between collections.
const SmallHeap = 16 << 20

// Tuner adjusts GOGC after each collection, and gives memory back when
// the process goes quiet (trim.go).
type Tuner struct {
	mu       sync.Mutex
	headroom uint64 // the headroom in force
	fixed    bool   // an operator's headroom: not adapted
	stopped  bool
	percent  int       // the GOGC set last
	allocs   uint64    // bytes allocated in all, at the last update
	at       time.Time // the time of the last update
	samples  []metrics.Sample
	trims    int                              // memory given back (trim.go)
	endTrim  chan struct{}                    // closed by Stop
	logf     func(format string, args ...any) // reports each trim; nil: none
}

// Start starts tuning: with the given headroom, or, when it is 0, with a
// headroom adapted to the garbage; and trimming, a look every TrimTick.
// It returns nil, and changes nothing, when the GOGC environment variable
// is set: the operator's choice stands.
func Start(headroom uint64) *Tuner {
	if _, ok := os.LookupEnv("GOGC"); ok {
		return nil
	}
	t := &Tuner{
		headroom: headroom,
		fixed:    headroom != 0,
		percent:  goPercent,
		samples: []metrics.Sample{
			{Name: "/gc/heap/live:bytes"},
			{Name: "/gc/heap/allocs:bytes"},
		},
	}
	if !t.fixed {
		t.headroom = MinHeadroom
	}
	t.update()
	t.arm()
	t.endTrim = make(chan struct{})
	go t.trim(TrimTick, t.endTrim)
	return t
}

// Stop ends the tuning and the trimming, and restores GOGC's default.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		close(t.endTrim)
	}
	t.stopped = true
	debug.SetGCPercent(goPercent)
}

// Percent returns the GOGC the tuner set last.
func (t *Tuner) Percent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.percent
}

// Headroom returns the headroom in force.
func (t *Tuner) Headroom() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.headroom
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

// update sets GOGC from the live heap of the last collection, after
// sizing the headroom to the garbage since the previous update; false
// once stopped.
func (t *Tuner) update() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.samples)
	live, allocs := uint64Of(t.samples[0]), uint64Of(t.samples[1])
	p := t.observe(live, allocs, time.Now())
	if p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
	return true
}

// uint64Of is the value of a sample of a uint64 metric, 0 when the
// runtime does not have it.
func uint64Of(s metrics.Sample) uint64 {
	if s.Value.Kind() == metrics.KindUint64 {
		return s.Value.Uint64()
	}
	return 0
}

// observe sizes the headroom to the bytes allocated since the last
// observation (allocs counts them all, now is the time) and returns the
// GOGC for the live heap. The first observation only records. Called
// with t.mu held.
func (t *Tuner) observe(live, allocs uint64, now time.Time) int {
	if !t.fixed && !t.at.IsZero() && allocs >= t.allocs {
		// At most doubled at a time: a burst (loading the
		// configuration, say) would otherwise set a headroom so large
		// that the next collection, which sizes it again, never comes.
		t.headroom = min(headroomFor(allocs-t.allocs, now.Sub(t.at)), 2*t.headroom)
	}
	t.allocs, t.at = allocs, now
	return percentFor(live, t.headroom)
}

// headroomFor returns the headroom that would have spaced collections by
// Interval when allocated bytes took elapsed, within MinHeadroom and
// MaxHeadroom.
func headroomFor(allocated uint64, elapsed time.Duration) uint64 {
	if elapsed <= 0 {
		return MaxHeadroom
	}
	h := float64(allocated) * float64(Interval) / float64(elapsed)
	return uint64(min(max(h, MinHeadroom), MaxHeadroom))
}

// runtimeHeapMinimum is the runtime's smallest heap goal at GOGC=100; it
// scales with GOGC (a goal is never under 4 MiB x GOGC/100).
const runtimeHeapMinimum = 4 << 20

// percentFor is the GOGC that makes the heap goal the larger of one and a
// half times the live heap (twice a live heap larger than SmallHeap) and
// live+headroom. The runtime's goal is the
// larger of live x (1+GOGC/100) and its minimum, which grows with GOGC:
// past the point where that minimum is live+headroom, a larger GOGC would
// only raise it.
func percentFor(live, headroom uint64) int {
	if live == 0 {
		live = 1 << 20 // before the first collection: as for 1 MiB
	}
	p := min(headroom*100/live, (live+headroom)*100/runtimeHeapMinimum)
	if live > SmallHeap {
		return int(max(p, goPercent))
	}
	return int(max(p, minPercent))
}
