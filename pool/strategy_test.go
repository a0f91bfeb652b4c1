package pool

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// connServe answers every request with the number of its connection.
func connServe(release signal) func(c *rawConn) {
	return func(c *rawConn) {
		c.each(func(req *http.Request) bool {
			if req.URL.Path == "/hold" {
				release.wait(nil)
			}
			c.write(ok(fmt.Sprint(c.n)))
			return true
		})
	}
}

func TestStrategies(t *testing.T) {
	sequence := func(t *testing.T, s Strategy, workers, n int) string {
		b := newRawBackend(t, connServe(nil))
		p := testPool(t, func(st *Settings) { st.Workers, st.Strategy = workers, s })
		var got []string
		for i := 0; i < n; i++ {
			r := roundTrip(p, "GET", b.url("/"), nil)
			if r.err != nil {
				t.Fatal(r.err)
			}
			got = append(got, r.body)
		}
		return strings.Join(got, " ")
	}
	t.Run("best_worker reuses the idle connection", func(t *testing.T) {
		if got := sequence(t, BestWorker, 4, 5); got != "1 1 1 1 1" {
			t.Errorf("connections %s", got)
		}
	})
	t.Run("next_worker goes round the slots", func(t *testing.T) {
		if got := sequence(t, NextWorker, 3, 7); got != "1 2 3 1 2 3 1" {
			t.Errorf("connections %s", got)
		}
	})
	t.Run("random_worker stays within workers", func(t *testing.T) {
		got := sequence(t, RandomWorker, 3, 40)
		for _, c := range strings.Fields(got) {
			if c != "1" && c != "2" && c != "3" {
				t.Fatalf("connections %s", got)
			}
		}
	})
	t.Run("available_worker never pipelines", func(t *testing.T) {
		var p *Pool
		b := newRawBackend(t, func(c *rawConn) {
			c.each(func(req *http.Request) bool {
				if req.URL.Path == "/hold" {
					waitFor(t, "one queued call", func() bool { return stats(t, p).Waiting == 1 })
				}
				c.write(ok(req.URL.Path))
				return true
			})
		})
		p = testPool(t, func(s *Settings) { s.Workers, s.PipelineDepth, s.Probation, s.Strategy = 1, 8, 0, AvailableWorker })
		h := goRoundTrip(p, "GET", b.url("/hold"), nil)
		waitFor(t, "/hold in flight", func() bool { return stats(t, p).InFlight == 1 })
		if r := roundTrip(p, "GET", b.url("/next"), nil); r.body != "/next" {
			t.Errorf("%v", r)
		}
		wait(t, h)
		if st := stats(t, p); st.Pipelined != 0 {
			t.Errorf("pipelined %d", st.Pipelined)
		}
	})
	t.Run("next_available_worker sheds load", func(t *testing.T) {
		release := newSignal()
		b := newRawBackend(t, connServe(release))
		p := testPool(t, func(s *Settings) { s.Workers, s.Strategy = 1, NextAvailableWorker })
		h := goRoundTrip(p, "GET", b.url("/hold"), nil)
		waitFor(t, "/hold in flight", func() bool { return stats(t, p).InFlight == 1 })
		r := roundTrip(p, "GET", b.url("/shed"), nil)
		if r.err == nil || !strings.Contains(r.err.Error(), "no available worker") {
			t.Errorf("%v, want no available worker", r)
		}
		release.fire()
		if r := wait(t, h); r.body != "1" {
			t.Errorf("%v", r)
		}
	})
}
