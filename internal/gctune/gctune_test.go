package gctune

import (
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	for _, tt := range []struct {
		live, headroom uint64
		want           int
	}{
		{2 << 20, 16 << 20, 450},      // small heap: goal 18 MiB, the runtime's minimum x 4.5
		{8 << 20, 16 << 20, 200},      // goal 24 MiB, live x 3
		{16 << 20, 16 << 20, 100},     // as large as the headroom: doubling
		{300 << 20, 16 << 20, 100},    // large heap: doubling
		{32 << 20, 16 << 20, 100},     // twice the headroom, a large heap: doubling
		{16 << 20, 4 << 20, 50},       // small heap: half of it
		{SmallHeap + 1, 4 << 20, 100}, // just larger: doubling
		{0, 16 << 20, 425},            // before any collection: as for 1 MiB
		{12 << 20, 16 << 20, 133},     // in between
		{2 << 20, 1 << 20, 50},        // little garbage: goal 3 MiB
		{1 << 20, 1 << 20, 50},        // goal the runtime's minimum at 50, 2 MiB
		{512 << 10, 1 << 20, 50},      // smaller: still that minimum
		{100 << 20, 64 << 20, 100},    // large heap, headroom below it: doubling
		{10 << 20, 8 << 20, 80},       // headroom above half the live heap
		{2 << 20, 64 << 20, 1650},     // most garbage, small heap: goal 66 MiB
		{1 << 30, MaxHeadroom, 100},   // a heap of a GiB: doubling
	} {
		if got := percentFor(tt.live, tt.headroom); got != tt.want {
			t.Errorf("percentFor(%d, %d) = %d, want %d", tt.live, tt.headroom, got, tt.want)
		}
	}
}

func TestHeadroomFor(t *testing.T) {
	for _, tt := range []struct {
		allocated uint64
		elapsed   time.Duration
		want      uint64
	}{
		{4 << 20, time.Second, 2 << 20},     // 4 MiB/s: 2 MiB a half second
		{4 << 20, 2 * time.Second, 1 << 20}, // 2 MiB/s
		{1 << 20, time.Second, MinHeadroom}, // little garbage: the minimum
		{0, time.Hour, MinHeadroom},         // none
		{30 << 20, time.Second, 15 << 20},   // HTTP/2 at 10,000 requests/s, 3 KB each
		{1 << 30, time.Second, MaxHeadroom}, // more: the maximum
		{1 << 20, 0, MaxHeadroom},           // no time: as if very fast
		{3 << 20, 1500 * time.Millisecond, 1 << 20},
	} {
		if got := headroomFor(tt.allocated, tt.elapsed); got != tt.want {
			t.Errorf("headroomFor(%d, %v) = %d, want %d", tt.allocated, tt.elapsed, got, tt.want)
		}
	}
}

// TestObserve follows an adapting tuner through collections: garbage
// raises the headroom, and the headroom falls back when the garbage
// stops; a fixed headroom stays.
func TestObserve(t *testing.T) {
	at := time.Unix(1000, 0)
	tu := &Tuner{headroom: MinHeadroom}
	const live = 2 << 20
	if p := tu.observe(live, 10<<20, at); p != 50 || tu.headroom != MinHeadroom {
		t.Fatalf("first observation: GOGC %d, headroom %d; want 50, %d (nothing to size from)", p, tu.headroom, MinHeadroom)
	}
	// 8 MiB in 250 ms, four times: 32 MiB/s, 16 MiB a half second,
	// reached by doubling.
	for i, want := range []uint64{2 << 20, 4 << 20, 8 << 20, 16 << 20} {
		at = at.Add(250 * time.Millisecond)
		if p := tu.observe(live, uint64(18+8*i)<<20, at); tu.headroom != want || p != percentFor(live, want) {
			t.Fatalf("much garbage, step %d: headroom %d, GOGC %d; want %d, %d", i, tu.headroom, p, want, percentFor(live, want))
		}
	}
	// 8 MiB in 2 s: 2 MiB a half second; the goal is live+headroom,
	// 4 MiB, the runtime's minimum at GOGC 100.
	at = at.Add(2 * time.Second)
	if p := tu.observe(live, 50<<20, at); tu.headroom != 2<<20 || p != 100 {
		t.Fatalf("less garbage: headroom %d, GOGC %d; want %d, 100", tu.headroom, p, 2<<20)
	}
	// Idle for an hour: the minimum, the heap grows by half of it.
	at = at.Add(time.Hour)
	if p := tu.observe(live, 51<<20, at); tu.headroom != MinHeadroom || p != 50 {
		t.Fatalf("idle: headroom %d, GOGC %d; want %d, 50", tu.headroom, p, MinHeadroom)
	}

	fixed := &Tuner{headroom: 16 << 20, fixed: true}
	fixed.observe(live, 1, at)
	fixed.observe(live, 1<<30, at.Add(time.Millisecond))
	if fixed.headroom != 16<<20 {
		t.Errorf("fixed headroom became %d", fixed.headroom)
	}
}

// gogc reads the GOGC in force.
func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestTunerFollowsCollections: after a collection with a small live heap
// GOGC is the headroom's; Stop restores the default; a GOGC variable
// disables the tuner.
func TestTunerFollowsCollections(t *testing.T) {
	tu := Start(64 << 20)
	if tu == nil {
		t.Skip("GOGC is set in the environment")
	}
	defer tu.Stop()
	live := uint64(0)
	for i := 0; i < 200; i++ { // cleanups run soon after, on their own goroutine
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(s)
		live = s[0].Value.Uint64()
		if uint64(tu.Percent()) == uint64(percentFor(live, 64<<20)) && gogc() == uint64(tu.Percent()) {
			break
		}
	}
	want := percentFor(live, 64<<20)
	if want <= 100 {
		t.Fatalf("live heap %d bytes: the test needs one under 64 MiB", live)
	}
	if got := tu.Percent(); got != want || gogc() != uint64(want) {
		t.Errorf("live heap %d: tuner set %d, runtime has %d; want %d", live, got, gogc(), want)
	}
	tu.Stop()
	if got := gogc(); got != 100 {
		t.Errorf("after Stop GOGC is %d, want 100", got)
	}

	t.Setenv("GOGC", "100")
	if Start(64<<20) != nil {
		t.Errorf("Start with GOGC set returned a tuner")
	}
}

// TestTunerAdapts: garbage made quickly between collections raises an
// adapting tuner's headroom, and GOGC with it.
func TestTunerAdapts(t *testing.T) {
	tu := Start(0)
	if tu == nil {
		t.Skip("GOGC is set in the environment")
	}
	defer tu.Stop()
	if h := tu.Headroom(); h != MinHeadroom {
		t.Fatalf("headroom at start %d, want %d", h, MinHeadroom)
	}
	var keep [][]byte
	for i := 0; i < 100 && tu.Headroom() < 8*MinHeadroom; i++ {
		// 8 MiB of garbage a collection, collections about 10 ms
		// apart: about 800 MiB/s.
		for j := 0; j < 128; j++ {
			keep = append(keep[:0], make([]byte, 64<<10))
		}
		runtime.GC() // cleanups run soon after, on their own goroutine
		time.Sleep(10 * time.Millisecond)
	}
	_ = keep
	if h := tu.Headroom(); h < 8*MinHeadroom {
		t.Fatalf("after much garbage the headroom is %d, want at least %d", h, 8*MinHeadroom)
	}
	if p := tu.Percent(); p <= minPercent || gogc() != uint64(p) {
		t.Errorf("GOGC set %d, in force %d; want them equal and above %d", p, gogc(), minPercent)
	}
}

// TestHeadroom checks the headroom OCSIPROXY_GC_HEADROOM sets, and its
// refusals.
func TestHeadroom(t *testing.T) {
	tests := []struct {
		value   string // "-": unset
		want    uint64
		wantErr bool
	}{
		{"-", 0, false}, // adapted
		{"8", 8 << 20, false},
		{"1", 1 << 20, false},
		{"4096", 4096 << 20, false},
		{"0", 0, true},
		{"4097", 0, true},
		{"8MiB", 0, true},
		{"", 0, true},
		{"-3", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			if tt.value == "-" {
				t.Setenv(HeadroomEnv, "")
				os.Unsetenv(HeadroomEnv)
			} else {
				t.Setenv(HeadroomEnv, tt.value)
			}
			got, err := Headroom()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("Headroom() = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), HeadroomEnv) {
				t.Errorf("error %q does not name %s", err, HeadroomEnv)
			}
		})
	}
}
