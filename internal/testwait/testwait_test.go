package testwait

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestUntil: Until returns once the condition holds, and fails the test
// (without hanging) when it never does.
func TestUntil(t *testing.T) {
	var n atomic.Int32
	go func() {
		time.Sleep(5 * time.Millisecond)
		n.Store(1)
	}()
	Until(t, "the store", 10*time.Second, func() bool { return n.Load() == 1 })

	ft := &fatalRecorder{T: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Until(ft, "never", 20*time.Millisecond, func() bool { return false })
	}()
	<-done
	if ft.msg != "waiting for never: gave up after 20ms" {
		t.Errorf("failure %q, want %q", ft.msg, "waiting for never: gave up after 20ms")
	}
}

// fatalRecorder records the message of Fatalf and ends its goroutine, as
// testing.T does, without failing the test it wraps.
type fatalRecorder struct {
	*testing.T
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
