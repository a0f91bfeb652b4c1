package pool_test

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/pool"
	"github.com/ocsiproxy/ocsiproxy/server"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// stressBackend echoes each request's path, and now and then delays,
// closes its connection (politely or not) or sends a response that cannot
// be delimited. It counts the requests that arrived pipelined: read while
// an earlier one on the same connection was still unanswered.
type stressBackend struct {
	ln                                                   net.Listener
	seed                                                 atomic.Uint64
	conns, requests, pipelined, maxOutstanding           atomic.Int64
	delays, chunked, politeCloses, rudeCloses, misframes atomic.Int64
	wg                                                   sync.WaitGroup
	mu                                                   sync.Mutex
	open                                                 map[net.Conn]bool
}

func newStressBackend(t *testing.T) *stressBackend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &stressBackend{ln: ln, open: map[net.Conn]bool{}}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns.Add(1)
			b.mu.Lock()
			b.open[c] = true
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				b.serve(c)
				c.Close()
				b.mu.Lock()
				delete(b.open, c)
				b.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for c := range b.open {
			c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *stressBackend) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	br := bufio.NewReader(c)
	q := make(chan string, 1024)
	var outstanding atomic.Int64
	go func() {
		defer close(q)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			b.requests.Add(1)
			n := outstanding.Add(1)
			if n > 1 {
				b.pipelined.Add(1)
			}
			for {
				m := b.maxOutstanding.Load()
				if n <= m || b.maxOutstanding.CompareAndSwap(m, n) {
					break
				}
			}
			q <- req.URL.Path
		}
	}()
	defer func() {
		c.Close()
		for range q {
		}
	}()
	rng := rand.New(rand.NewPCG(b.seed.Add(1), 42))
	bw := bufio.NewWriter(c)
	for path := range q {
		body := "id=" + path
		normal := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		switch r := rng.IntN(1000); {
		case r < 4: // closes without answering
			b.rudeCloses.Add(1)
			return
		case r < 8: // answers, says so, and closes
			b.politeCloses.Add(1)
			fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			bw.Flush()
			return
		case r < 11: // a status line that is not one
			b.misframes.Add(1)
			fmt.Fprintf(bw, "HTTP/1.1 2OO OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		case r < 14: // Content-Length and chunked together
			b.misframes.Add(1)
			fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), len(body), body)
		case r < 17: // bytes after the body
			b.misframes.Add(1)
			bw.WriteString(normal + "extra bytes\r\n")
		case r < 20: // a body cut short, then the connection closed
			b.misframes.Add(1)
			fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body)+10, body)
			bw.Flush()
			return
		case r < 60: // slow
			b.delays.Add(1)
			bw.Flush()
			time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
			bw.WriteString(normal)
		case r < 200:
			b.chunked.Add(1)
			fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body)
		default:
			bw.WriteString(normal)
		}
		outstanding.Add(-1)
		if len(q) == 0 {
			if bw.Flush() != nil {
				return
			}
		}
	}
}

// TestStress sends 64 clients x 1,000 keep-alive requests with unique ids
// through ocsiproxy (the server, its pool pipelining up to 8 deep on 8
// connections) to a backend that delays, closes connections and misframes
// responses. Every client must get its own response or a clean 502, never
// another client's; the backend must see pipelined requests.
func TestStress(t *testing.T) { stress(t, 8) }

// TestStressNoPipelining is TestStress with the default pipeline_depth,
// 1: the backend must see no pipelined request.
func TestStressNoPipelining(t *testing.T) { stress(t, 1) }

func stress(t *testing.T, depth int) {
	clients, perClient := 64, 1000
	switch {
	case testing.Short():
		clients, perClient = 16, 200
	case pool.RaceEnabled:
		clients, perClient = 24, 250
	}
	b := newStressBackend(t)
	be := "http://" + b.ln.Addr().String()
	src := `<ocsigen><server><port>127.0.0.1:8080</port><timeout>20</timeout>
<extension findlib-package="ocsigenserver.ext.revproxy">
  <upstream url="` + be + `" workers="8" pipeline_depth="` + fmt.Sprint(depth) + `" distrust="10ms" hol_timeout="100ms"/>
</extension>
<host><revproxy suburl="(.*)" dest="` + be + `/\1"/></host>
</server></ocsigen>`
	cfg, err := xmlconf.Parse("stress.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var errLog lockedBuffer
	logs, err := accesslog.OpenLogs("", accesslog.Normal, io.Discard, &errLog)
	if err != nil {
		t.Fatal(err)
	}
	// A generous regexp match timeout: under the race detector on a busy
	// machine, a 100 ms match can be descheduled past its limit (500).
	srv, err := server.New(cfg, logs, engine.Options{MatchTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(srv.Handler)
	defer front.Close()

	var own, bad502, wrong, other atomic.Int64
	var examples sync.Map
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: time.Minute}
			for j := 0; j < perClient; j++ {
				path := fmt.Sprintf("/c%d/r%d", i, j)
				resp, err := client.Get(front.URL + path)
				if err != nil {
					other.Add(1)
					examples.LoadOrStore("transport error", err.Error())
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					other.Add(1)
					examples.LoadOrStore("body error", err.Error())
				case resp.StatusCode == 200 && string(body) == "id="+path:
					own.Add(1)
				case resp.StatusCode == 502:
					bad502.Add(1)
				case strings.HasPrefix(string(body), "id="):
					wrong.Add(1)
					examples.LoadOrStore("another client's response", fmt.Sprintf("%s got %q", path, body))
				default:
					other.Add(1)
					examples.LoadOrStore(fmt.Sprintf("status %d", resp.StatusCode), string(body))
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := int64(clients * perClient)
	t.Logf("%d requests in %v (%.0f/s): own response %d, clean 502 %d, another client's %d, other %d",
		total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), own.Load(), bad502.Load(), wrong.Load(), other.Load())
	t.Logf("backend: %d requests on %d connections, %d arrived pipelined (at most %d outstanding on one connection); "+
		"sent %d delayed, %d chunked, %d polite closes, %d rude closes, %d misframed",
		b.requests.Load(), b.conns.Load(), b.pipelined.Load(), b.maxOutstanding.Load(),
		b.delays.Load(), b.chunked.Load(), b.politeCloses.Load(), b.rudeCloses.Load(), b.misframes.Load())
	for _, st := range srv.PoolStats() {
		t.Logf("pool %s: %d requests, %d pipelined (deepest %d), %d retried, %d resent after a polite close, %d resent behind a streamed body, "+
			"%d connections poisoned, %d closed early, pipelining distrusted %d times, %d dials, %d timeouts",
			st.Upstream, st.Requests, st.Pipelined, st.MaxDepth, st.Retries, st.Requeued, st.HOLResends,
			st.Poisoned, st.EarlyCloses, st.Distrusts, st.Dials, st.Timeouts)
	}
	examples.Range(func(k, v any) bool {
		t.Logf("example of %s: %v", k, v)
		return true
	})
	if wrong.Load() != 0 || other.Load() != 0 || own.Load()+bad502.Load() != total {
		t.Errorf("every client must get its own response or a clean 502")
		log := errLog.String()
		if len(log) > 4000 {
			log = log[:4000]
		}
		t.Logf("error log:\n%s", log)
	}
	switch {
	case depth > 1 && b.pipelined.Load() == 0:
		t.Errorf("the backend saw no pipelined request")
	case depth == 1 && b.pipelined.Load() != 0:
		t.Errorf("the backend saw %d pipelined requests with pipeline_depth 1", b.pipelined.Load())
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
