package wire

import (
	"strings"
	"testing"
)

// TestStrings checks that strings made in shared chunks keep their bytes
// while later strings are made, that one chunk serves many, and that long
// strings and a nil *Strings work too.
func TestStrings(t *testing.T) {
	var s Strings
	var made []string
	var want []string
	for i := range 500 {
		w := strings.Repeat(string(rune('a'+i%26)), 1+i%40)
		buf := []byte(w)
		made = append(made, s.Make(buf))
		clear(buf) // the caller's bytes may change: the string may not
		want = append(want, w)
	}
	// Built in place, and grown past the room asked for.
	b := s.Room(3)
	b = append(b, "abcdef"...)
	made, want = append(made, s.Done(b)), append(want, "abcdef")
	b = append(s.Room(2), "xy"...)
	made, want = append(made, s.Done(b)), append(want, "xy")
	long := strings.Repeat("L", maxShared+1)
	made, want = append(made, s.Make([]byte(long))), append(want, long)
	var none *Strings
	made, want = append(made, none.Make([]byte("nil")), none.Make(nil)), append(want, "nil", "")
	for i := range made {
		if made[i] != want[i] {
			t.Fatalf("string %d is %q, want %q", i, made[i], want[i])
		}
	}
	allocs := testing.AllocsPerRun(100, func() { s.Make([]byte("GET / HTTP/1.1\r\nHost: x\r\n")) })
	if allocs > 0.1 {
		t.Errorf("%.2f allocations per short string, want at most 0.1", allocs)
	}
}

func FuzzStrings(f *testing.F) {
	f.Add([]byte("a"), []byte("bc"), uint8(1))
	f.Fuzz(func(t *testing.T, a, b []byte, room uint8) {
		var s Strings
		x := s.Make(a)
		y := s.Done(append(s.Room(int(room)), b...))
		z := s.Make(a)
		if x != string(a) || y != string(b) || z != string(a) {
			t.Fatalf("got %q %q %q from %q %q", x, y, z, a, b)
		}
	})
}
