package pool

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchBackend answers "GET" requests with a small fixed body after
// latency. A serial backend handles one request at a time per connection,
// as net/http's server does (pipelined requests wait in the socket); a
// concurrent one starts each request as soon as it is read and answers
// in order, as an event-driven server can.
type benchBackend struct {
	ln         net.Listener
	latency    time.Duration
	concurrent bool
	wg         sync.WaitGroup
	mu         sync.Mutex
	conns      []net.Conn
	pipelined  atomic.Int64
}

const benchBody = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" // 64 bytes, like bench/'s small scenario

var benchResponse = []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(benchBody), benchBody))

func newBenchBackend(b testing.TB, latency time.Duration, concurrent bool) *benchBackend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	bb := &benchBackend{ln: ln, latency: latency, concurrent: concurrent}
	bb.wg.Add(1)
	go func() {
		defer bb.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			bb.mu.Lock()
			bb.conns = append(bb.conns, c)
			bb.mu.Unlock()
			bb.wg.Add(1)
			go func() {
				defer bb.wg.Done()
				defer c.Close()
				if concurrent {
					bb.serveConcurrent(c)
				} else {
					bb.serveSerial(c)
				}
			}()
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		bb.mu.Lock()
		for _, c := range bb.conns {
			c.Close()
		}
		bb.mu.Unlock()
		bb.wg.Wait()
	})
	return bb
}

// readHead reads a request head (the benchmark sends no bodies).
func readReqHead(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			return nil
		}
	}
}

func (bb *benchBackend) serveSerial(c net.Conn) {
	br := bufio.NewReader(c)
	bw := bufio.NewWriter(c)
	for {
		if err := readReqHead(br); err != nil {
			return
		}
		if br.Buffered() > 0 {
			bb.pipelined.Add(1)
		}
		if bb.latency > 0 {
			time.Sleep(bb.latency)
		}
		bw.Write(benchResponse)
		if br.Buffered() == 0 {
			if bw.Flush() != nil {
				return
			}
		}
	}
}

func (bb *benchBackend) serveConcurrent(c net.Conn) {
	br := bufio.NewReader(c)
	due := make(chan time.Time, 1024)
	go func() {
		defer close(due)
		for {
			if err := readReqHead(br); err != nil {
				return
			}
			if len(due) > 0 {
				bb.pipelined.Add(1)
			}
			due <- time.Now().Add(bb.latency)
		}
	}()
	bw := bufio.NewWriter(c)
	for d := range due {
		time.Sleep(time.Until(d))
		bw.Write(benchResponse)
		if len(due) == 0 && bw.Flush() != nil {
			break
		}
	}
	for range due {
	}
}

// runClients sends b.N GETs from clients goroutines through rt and
// reports requests/s and the latency percentiles.
func runClients(b *testing.B, rt http.RoundTripper, url string, clients int) {
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 512)
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				req, _ := http.NewRequest("GET", url, nil)
				resp, err := rt.RoundTrip(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				for {
					if _, err := resp.Body.Read(buf); err != nil {
						break
					}
				}
				resp.Body.Close()
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
}

// BenchmarkClients compares, at equal connections (workers), the pool
// with pipelining off (depth 1), pipelining 2 deep and 16 deep (64
// clients on 4 connections), and net/http's Transport, 64 clients against a backend with 1 ms of
// latency (serial, like most servers, or answering pipelined requests
// concurrently), and with no latency (the clients' own CPU cost).
func BenchmarkClients(b *testing.B) {
	const clients = 64
	for _, backend := range []struct {
		name       string
		latency    time.Duration
		concurrent bool
	}{
		{"serial-1ms", time.Millisecond, false},
		{"concurrent-1ms", time.Millisecond, true},
		{"serial-0ms", 0, false},
	} {
		for _, workers := range []int{4, 64} {
			if workers == 64 && backend.name == "concurrent-1ms" {
				continue
			}
			for _, client := range []string{"pool-depth1", "pool-depth2", "pool-depth16", "net-http"} {
				if client == "pool-depth16" && workers == 64 {
					continue // 64 clients never fill more than one per connection
				}
				b.Run(fmt.Sprintf("%s/workers=%d/%s", backend.name, workers, client), func(b *testing.B) {
					bb := newBenchBackend(b, backend.latency, backend.concurrent)
					url := "http://" + bb.ln.Addr().String() + "/"
					var rt http.RoundTripper
					switch client {
					case "net-http":
						tr := &http.Transport{MaxConnsPerHost: workers, MaxIdleConnsPerHost: workers, DisableCompression: true}
						defer tr.CloseIdleConnections()
						rt = tr
					default:
						s := DefaultSettings(0)
						s.Workers = workers
						s.PipelineDepth = map[string]int{"pool-depth1": 1, "pool-depth2": 2, "pool-depth16": 16}[client]
						p := New(Config{Defaults: s})
						defer p.Close()
						rt = p
					}
					runClients(b, rt, url, clients)
					b.ReportMetric(float64(bb.pipelined.Load())/float64(b.N), "pipelined/op")
				})
			}
		}
	}
}

// BenchmarkHeadOfLine measures how long a request waits when a 1 MiB
// response ahead of it goes to a client that reads nothing for 500 ms,
// on a pool of one connection: the request is either pipelined behind
// that response ("behind") or waiting for the connection ("queued"). It
// waits about HOLTimeout, then goes on another connection; with
// HOLTimeout "infinity" it waits for the slow client.
func BenchmarkHeadOfLine(b *testing.B) {
	const big = 1 << 20
	const slowClient = 500 * time.Millisecond
	for _, mode := range []string{"behind", "queued"} {
		for _, hol := range []time.Duration{0, 20 * time.Millisecond, 100 * time.Millisecond, Never} {
			name := fmt.Sprint(hol)
			if hol == Never {
				name = "infinity"
			}
			b.Run(mode+"/hol_timeout="+name, func(b *testing.B) {
				benchHOL(b, mode == "behind", hol, big, slowClient)
			})
		}
	}
}

func benchHOL(b *testing.B, behind bool, hol time.Duration, big int, slowClient time.Duration) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	gotBig := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if req.URL.Path != "/big" {
						c.Write(benchResponse)
						continue
					}
					gotBig <- struct{}{}
					if behind {
						// Answer only once /small is pipelined behind.
						if _, err := http.ReadRequest(br); err != nil {
							return
						}
					}
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", big)
					c.Write(make([]byte, big))
					if behind {
						c.Write(benchResponse)
					}
				}
			}()
		}
	}()
	url := "http://" + ln.Addr().String()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		s := DefaultSettings(0)
		s.Workers, s.PipelineDepth, s.Probation, s.HOLTimeout = 1, 4, 0, hol
		p := New(Config{Defaults: s})
		bigc := make(chan *http.Response, 1)
		go func() {
			req, _ := http.NewRequest("GET", url+"/big", nil)
			resp, err := p.RoundTrip(req)
			if err != nil {
				b.Error(err)
			}
			bigc <- resp
		}()
		<-gotBig
		var resp *http.Response
		if !behind {
			resp = <-bigc // its head is in: /small can only queue
		}
		t0 := time.Now()
		small := make(chan time.Duration, 1)
		go func() {
			req, _ := http.NewRequest("GET", url+"/small", nil)
			resp, err := p.RoundTrip(req)
			if err != nil {
				b.Error(err)
				small <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			small <- time.Since(t0)
		}()
		if behind {
			resp = <-bigc
		}
		time.Sleep(slowClient) // the slow client
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		total += <-small
		p.Close()
	}
	b.ReportMetric(float64(total)/float64(b.N)/1e6, "wait-ms")
}

// BenchmarkRoundTrip measures the pool's own cost for one small GET with
// the default settings (no pipelining), from GOMAXPROCS goroutines, each
// reusing its request, against a backend on raw sockets that allocates
// nothing per request: allocs/op and B/op are the pool's. "timeouts"
// sets call_timeout and request_timeout to 30 s, as the server does.
func BenchmarkRoundTrip(b *testing.B) {
	for _, timeouts := range []bool{false, true} {
		name := "no-timeouts"
		if timeouts {
			name = "timeouts"
		}
		b.Run(name, func(b *testing.B) {
			bb := newBenchBackend(b, 0, false)
			var s Settings
			if timeouts {
				s = DefaultSettings(30 * time.Second)
			} else {
				s = DefaultSettings(0)
			}
			p := New(Config{Defaults: s})
			defer p.Close()
			url := "http://" + bb.ln.Addr().String() + "/index.html?x=1"
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header = http.Header{
					"Accept":            {"*/*"},
					"User-Agent":        nil,
					"X-Forwarded-For":   {"127.0.0.1"},
					"X-Forwarded-Proto": {"http"},
				}
				buf := make([]byte, 512)
				for pb.Next() {
					resp, err := p.RoundTrip(req)
					if err != nil {
						b.Error(err)
						return
					}
					for {
						if _, err := resp.Body.Read(buf); err != nil {
							break
						}
					}
					resp.Body.Close()
				}
			})
		})
	}
}
