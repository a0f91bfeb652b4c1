package accesslog

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/testwait"
)

// TestBatchWriter checks that the access log's writer loses and reorders
// no line, across concurrent writers, output switches and close.
func TestBatchWriter(t *testing.T) {
	var outs [3]strings.Builder
	var mu sync.Mutex // strings.Builder is not safe for concurrent use
	w := newBatchWriter(lockedWriter{&mu, &outs[0]})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				fmt.Fprintf(w, "g%d %d\n", g, i)
			}
		}()
	}
	time.Sleep(time.Millisecond)
	w.setOutput(lockedWriter{&mu, &outs[1]})
	wg.Wait()
	w.close()
	fmt.Fprintf(w, "after close\n")
	w.setOutput(lockedWriter{&mu, &outs[2]})
	fmt.Fprintf(w, "after switch\n")
	mu.Lock()
	all := outs[0].String() + outs[1].String()
	last := outs[2].String()
	mu.Unlock()
	next := map[string]int{}
	for line := range strings.SplitSeq(strings.TrimSuffix(all, "\n"), "\n") {
		g, i, _ := strings.Cut(line, " ")
		n, err := strconv.Atoi(i)
		if err != nil && line != "after close" {
			t.Fatalf("bad line %q", line)
		}
		if err == nil && n != next[g] {
			t.Fatalf("%s: line %d after %d", g, n, next[g]-1)
		}
		next[g]++
	}
	for g := range 4 {
		if n := next[fmt.Sprintf("g%d", g)]; n != 2000 {
			t.Errorf("g%d: %d lines, want 2000", g, n)
		}
	}
	if !strings.HasSuffix(all, "after close\n") || last != "after switch\n" {
		t.Errorf("writes after close: %q, %q", all[len(all)-20:], last)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func TestAppendQuoted(t *testing.T) {
	for _, parts := range [][]string{
		{"GET", " ", "/a?b=c&d", " ", "HTTP/1.1"},
		{"curl/8.0 (x86_64)"},
		{""},
		{"say \"hi\""},
		{`back\slash`},
		{"tab\there"},
		{"é", "\xff", "\x7f"},
		{"-"},
	} {
		want := strconv.Quote(strings.Join(parts, ""))
		if got := string(appendQuoted([]byte("x"), parts...)); got != "x"+want {
			t.Errorf("appendQuoted(%q) = %s, want x%s", parts, got, want)
		}
	}
}

// countingWriter counts the writes it is given and the lines in them.
type countingWriter struct {
	mu            sync.Mutex
	writes, lines int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	w.lines += strings.Count(string(p), "\n")
	return len(p), nil
}

func (w *countingWriter) counts() (writes, lines int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes, w.lines
}

// writeTogether has n goroutines write a line each to w ("prefix i"), all
// let go at once once every one waits (requests answered in one turn of
// the scheduler), and returns when they have written.
func writeTogether(w *batchWriter, n int, prefix string) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fmt.Fprintf(w, "%s %d\n", prefix, i)
		}()
	}
	time.Sleep(10 * time.Millisecond) // every writer waits on start
	close(start)
	wg.Wait()
}

// TestBatchWriterGathers checks that lines written by goroutines that are
// ready to run at the same time (requests answered in one turn of the
// scheduler) leave in one or two writes, not one write each: the writer's
// goroutine lets them run before it writes.
func TestBatchWriterGathers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const writers = 32
	out := &countingWriter{}
	w := newBatchWriter(out)
	defer w.close()
	writeTogether(w, writers, "line")
	deadline := time.Now().Add(5 * time.Second)
	writes, lines := out.counts()
	for lines < writers && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		writes, lines = out.counts()
	}
	if lines != writers {
		t.Fatalf("%d lines written, want %d", lines, writers)
	}
	// One write when the writer's goroutine runs after all of them; a
	// preemption or a collection may split the batch once or twice.
	if writes > 4 {
		t.Errorf("%d lines took %d writes, want at most 4", writers, writes)
	}
}

// TestBatchWriterDirect checks the writer's direct way. Once directAfter
// writes of its goroutine in a row have carried a single line, lines that
// come one at a time are written before Write returns, except one in
// probeEvery+1 (the probe), which goes to the goroutine. And when lines
// come together again (requests answered in one turn of the scheduler),
// the probe's batch gathers them and writing goes back to batches.
func TestBatchWriterDirect(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	out := &countingWriter{}
	w := newBatchWriter(out)
	defer w.close()
	state := func() (direct bool, batches int) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.singles >= directAfter, w.batches
	}

	// One line at a time, each waited for (and, when batched, the
	// goroutine's account of its write): a new writer batches its first
	// directAfter lines, then writes probeEvery directly and batches a
	// probe, over and over.
	const n = directAfter + 3*(probeEvery+1)
	direct, batched := 0, 0
	for i := range n {
		fmt.Fprintf(w, "line %d\n", i)
		if _, lines := out.counts(); lines == i+1 {
			direct++
		} else {
			batched++
		}
		testwait.Until(t, fmt.Sprintf("line %d written", i), 5*time.Second, func() bool {
			_, lines := out.counts()
			_, batches := state()
			return lines == i+1 && batches == batched
		})
	}
	if want := n - directAfter - 3; direct != want {
		t.Errorf("%d of %d lines written before Write returned, want %d", direct, n, want)
	}
	if writes, lines := out.counts(); writes != n || lines != n {
		t.Errorf("%d lines in %d writes, want %d in %d", lines, writes, n, n)
	}

	// Lines that come together: the direct lines left before a probe,
	// then batches. A probe finds itself alone now and then even so (the
	// scheduler ran the writer's goroutine before the others): three
	// probes are allowed for. A second turn of the same size is batched
	// from the start.
	const writers = 96
	for turn, most := range []int{3*(probeEvery+1) + 4, 4} {
		writes0, lines0 := out.counts()
		writeTogether(w, writers, fmt.Sprintf("turn %d line", turn))
		testwait.Until(t, "the turn's lines written", 5*time.Second, func() bool {
			_, lines := out.counts()
			return lines == lines0+writers
		})
		writes, _ := out.counts()
		if writes-writes0 > most {
			t.Errorf("turn %d: %d lines took %d writes, want at most %d", turn, writers, writes-writes0, most)
		}
	}
	if direct, _ := state(); direct {
		t.Error("still writing directly after turns of many lines")
	}
}

// TestAppendMillis: the duration is written as the float formatting it
// replaces writes it.
func TestAppendMillis(t *testing.T) {
	ds := []time.Duration{0, time.Microsecond, 999 * time.Microsecond, time.Millisecond, 1001 * time.Microsecond,
		1234567 * time.Microsecond, 10 * time.Second, 90 * time.Minute, 1500 * time.Nanosecond}
	for i := int64(1); i < 1<<45; i = i*3 + 7 {
		ds = append(ds, time.Duration(i)*time.Microsecond+time.Duration(i%1000))
	}
	for _, d := range ds {
		want := strconv.AppendFloat(nil, float64(d.Microseconds())/1000, 'f', 3, 64)
		if got := appendMillis([]byte("x"), d); string(got) != "x"+string(want) {
			t.Errorf("appendMillis(%v) = %q, want %q", d, got[1:], want)
		}
	}
	if got := appendMillis(nil, -time.Second); string(got) != "0.000" {
		t.Errorf("appendMillis(-1s) = %q, want 0.000", got)
	}
}
