package adversarial

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReDoS measures what a pathological regexp costs the rest of the
// server (run with ADVERSARIAL_REDOS=1; it takes about a minute). A site
// has <revproxy suburl="(a+)+b">, which backtracks exponentially on
// "aaa...ac" in a backtracking engine, and a second site the same with a
// lookahead, "(?=a)(a+)+b", which keeps it on regexp2 (see
// pattern/linear.go). The first must be decided at once (no match: the
// request goes on to the catch-all rule, 200); the second must end in 500 when the match timeout (100 ms by
// default) fires. Meanwhile other requests, on other paths, must go on
// being served: their latency is measured without and with the attacks
// and logged; the test asserts only the statuses.
func TestReDoS(t *testing.T) {
	if os.Getenv("ADVERSARIAL_REDOS") == "" {
		t.Skip("set ADVERSARIAL_REDOS=1 to measure")
	}
	b := newBackend(t)
	b.forget = true
	p := startOcsiproxyConf(t, `<port>127.0.0.1:0</port>
<host>
<site path="re"><revproxy suburl="(a+)+b" dest="http://`+b.addr+`/re"/></site>
<site path="bt"><revproxy suburl="(?=a)(a+)+b" dest="http://`+b.addr+`/bt"/></site>
<revproxy suburl="(.*)" dest="http://`+b.addr+`/\1"/>
</host>`)

	// measure sends n keep-alive GETs from each of 4 clients and returns
	// the latencies.
	measure := func(n int) ([]time.Duration, int) {
		var mu sync.Mutex
		var lat []time.Duration
		bad := 0
		var wg sync.WaitGroup
		for c := 0; c < 4; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl, err := dial(p.addr)
				if err != nil {
					mu.Lock()
					bad += n
					mu.Unlock()
					return
				}
				defer cl.close()
				for i := 0; i < n; i++ {
					tk := newToken()
					start := time.Now()
					cl.sendSync("GET /normal HTTP/1.1\r\nHost: h\r\nX-Token: " + tk + "\r\n\r\n")
					cl.ex = exchange{}
					e := cl.read([]string{"GET"}, 30*time.Second, 0)
					d := time.Since(start)
					mu.Lock()
					lat = append(lat, d)
					if r := e.first(); r == nil || r.Status != 200 || r.Header.Get("X-Echo-Token") != tk {
						bad++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return lat, bad
	}
	report := func(name string, lat []time.Duration) string {
		slices.Sort(lat)
		q := func(f float64) time.Duration { return lat[int(f*float64(len(lat)-1))].Round(10 * time.Microsecond) }
		return fmt.Sprintf("%s: %d requests, p50 %v, p90 %v, p99 %v, max %v", name, len(lat), q(0.5), q(0.9), q(0.99), q(1))
	}

	base, bad := measure(250)
	if bad > 0 {
		t.Errorf("%d normal requests failed without attack", bad)
	}
	t.Log(report("normal requests, no attack", base))

	for _, attack := range []struct {
		name, path string
		want       int
	}{
		{"linear (a+)+b", "/re/", 200},
		{"backtracking (?=a)(a+)+b", "/bt/", 500},
	} {
		evil := attack.path + strings.Repeat("a", 40) + "c"
		for _, attackers := range []int{2, 8} {
			var stop atomic.Bool
			var wg sync.WaitGroup
			var mu sync.Mutex
			var attackLat []time.Duration
			statuses := map[int]int{}
			for a := 0; a < attackers; a++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						start := time.Now()
						e, err := exchangeOn(p.addr, "GET "+evil+" HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", []string{"GET"}, 30*time.Second, 0)
						d := time.Since(start)
						mu.Lock()
						attackLat = append(attackLat, d)
						if err == nil {
							statuses[e.status()]++
						}
						mu.Unlock()
					}
				}()
			}
			time.Sleep(500 * time.Millisecond)
			under, bad := measure(250)
			stop.Store(true)
			wg.Wait()
			if bad > 0 {
				t.Errorf("%s: %d normal requests failed during the attack", attack.name, bad)
			}
			for s, n := range statuses {
				if s != attack.want {
					t.Errorf("%s: %d attack requests got %d, want %d", attack.name, n, s, attack.want)
				}
			}
			t.Logf("%s, %d attackers: %s", attack.name, attackers, report("normal requests during the attack", under))
			t.Logf("%s, %d attackers: %s; statuses %v", attack.name, attackers, report("attack requests", attackLat), statuses)
		}
	}
}
