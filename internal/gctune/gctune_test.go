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
		{2 << 20, 16 << 20, 450},   // small heap: goal 18 MiB, the runtime's minimum x 4.5
		{8 << 20, 16 << 20, 200},   // goal 24 MiB, live x 3
		{16 << 20, 16 << 20, 100},  // as large as the headroom: doubling
		{300 << 20, 16 << 20, 100}, // large heap: doubling
		{0, 16 << 20, 425},         // before any collection: as for 1 MiB
		{12 << 20, 16 << 20, 133},  // in between
	} {
		if got := percentFor(tt.live, tt.headroom); got != tt.want {
			t.Errorf("percentFor(%d, %d) = %d, want %d", tt.live, tt.headroom, got, tt.want)
		}
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

// TestHeadroom checks the headroom OCSIPROXY_GC_HEADROOM sets, and its
// refusals.
func TestHeadroom(t *testing.T) {
	tests := []struct {
		value   string // "-": unset
		want    uint64
		wantErr bool
	}{
		{"-", DefaultHeadroom, false},
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
