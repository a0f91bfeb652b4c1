package gctune

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Giving memory back when the server goes quiet.
//
// A burst that leaves much garbage (TLS handshakes: about 10 KB each)
// grows the heap to its goal, and the memory stays resident after it:
// nothing collects the garbage while nothing allocates (until the
// runtime's forced collection, every two minutes), and the runtime gives
// back only what lies above the heap goal, which is twice a live heap
// over SmallHeap. Measured with 5,000 idle HTTPS connections opened 64
// at a time: 21 KiB of RSS each, of which about 9 KB live heap and 2 KB
// stack; 14.4 KiB after a collection that gave the free memory back.
//
// So a Tuner also looks at the heap every TrimTick. When the process
// allocated less than QuietBytes since the last look (quiet: an idle
// server, or a few requests a second), and the heap holds garbage and
// free memory of at least a quarter of the live heap and at least
// MinTrim, it collects and gives the free memory back to the system
// (debug.FreeOSMemory): one collection, at a time when no request waits
// on it. After that the heap holds no more to give until garbage comes
// again, so a quiet server trims once; a busy one never does.

// TrimTick is the time between two looks at the heap for memory to give
// back.
const TrimTick = time.Second

// QuietBytes is the most a process may allocate between two looks and
// still be quiet.
const QuietBytes = 256 << 10

// MinTrim is the least garbage and free memory worth a collection to give
// back.
const MinTrim = 8 << 20

// trimmer decides, from one look at the heap to the next, when to give
// memory back.
type trimmer struct {
	allocs  uint64 // bytes allocated in all, at the last look
	looked  bool   // allocs is set
	samples []metrics.Sample
}

func newTrimmer() *trimmer {
	return &trimmer{samples: []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}}
}

// heap is what one look at the heap sees, in bytes.
type heap struct {
	allocs   uint64 // allocated in all
	live     uint64 // marked live by the last collection
	objects  uint64 // in objects: the live ones, and garbage not yet freed
	free     uint64 // free and still resident
	released uint64 // given back to the system
}

// read looks at the heap.
func (tr *trimmer) read() heap {
	metrics.Read(tr.samples)
	v := func(i int) uint64 { return uint64Of(tr.samples[i]) }
	return heap{allocs: v(0), live: v(1), objects: v(2), free: v(3), released: v(4)}
}

// due reports whether to give memory back, given the heap seen now: the
// process was quiet since the last look and the heap holds at least
// trimFloor(live) of garbage and free memory. The first look only
// records.
func (tr *trimmer) due(h heap) bool {
	quiet := tr.looked && h.allocs >= tr.allocs && h.allocs-tr.allocs < QuietBytes
	tr.allocs, tr.looked = h.allocs, true
	return quiet && spare(h) >= trimFloor(h.live)
}

// spare is the garbage and free memory the heap holds.
func spare(h heap) uint64 {
	s := h.free
	if h.objects > h.live {
		s += h.objects - h.live
	}
	return s
}

// trimFloor is the least garbage and free memory worth a collection when
// live bytes are live: a quarter of them, and at least MinTrim.
func trimFloor(live uint64) uint64 {
	return max(live/4, MinTrim)
}

// trim looks at the heap every tick until stop is closed, and gives
// memory back when it is due. The look after a trim starts afresh: the
// collection allocated too.
func (t *Tuner) trim(tick time.Duration, stop <-chan struct{}) {
	tr := newTrimmer()
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
		}
		before := tr.read()
		if !tr.due(before) {
			continue
		}
		debug.FreeOSMemory()
		after := tr.read()
		tr.allocs = after.allocs
		t.mu.Lock()
		t.trims++
		logf := t.logf
		t.mu.Unlock()
		if logf != nil && after.released >= before.released {
			logf("gc: quiet with %.1f MiB of garbage and free memory: collected, %.1f MiB given back to the system (live heap %.1f MiB)",
				mib(spare(before)), mib(after.released-before.released), mib(after.live))
		}
	}
}

// mib is n bytes in MiB.
func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// SetEventLog has the tuner report each time it gives memory back, with
// logf (nil: not reported).
func (t *Tuner) SetEventLog(logf func(format string, args ...any)) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.logf = logf
}

// Trims returns how many times the tuner gave memory back.
func (t *Tuner) Trims() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.trims
}
