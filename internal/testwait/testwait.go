// Package testwait lets a test wait for a condition that another
// goroutine brings about (an access line written after its answer, a
// connection closed by a background sweep), failing the test rather than
// hanging it when the condition never holds.
package testwait

import (
	"testing"
	"time"
)

// Until calls cond every millisecond until it reports true, and fails t
// (Fatalf, naming what) when it has not within d.
func Until(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: gave up after %v", what, d)
		}
		time.Sleep(time.Millisecond)
	}
}
