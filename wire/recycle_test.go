package wire

import "testing"

// countingRecycler counts the times it is handed a message back.
type countingRecycler struct{ n int }

func (c *countingRecycler) Recycle() { c.n++ }

func TestResponseRelease(t *testing.T) {
	var rc countingRecycler
	r := &Response{StatusCode: 200}
	r.Release() // no recycler: nothing happens
	r.SetRecycler(&rc)
	r.Release()
	r.Release() // a second release does not hand it back again
	if rc.n != 1 {
		t.Errorf("recycled %d times, want 1", rc.n)
	}
}

func TestRequestReleaseNeedsSettle(t *testing.T) {
	tests := []struct {
		name   string
		settle bool
		want   int
	}{
		{"never settled: left to the collector", false, 0},
		{"settled by the sender", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rc countingRecycler
			r := &Request{Method: "GET"}
			r.SetRecycler(&rc)
			if tt.settle {
				r.Settle()
			}
			r.Release()
			r.Release()
			if rc.n != tt.want {
				t.Errorf("recycled %d times, want %d", rc.n, tt.want)
			}
		})
	}
	// Settled without a recycler: nothing to hand back.
	r := &Request{}
	r.Settle()
	r.Release()
}
