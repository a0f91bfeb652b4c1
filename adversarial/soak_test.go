package adversarial

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/internal/testcert"
)

// TestSoak runs the ocsiproxy binary for ADVERSARIAL_SOAK (a duration,
// "10m" for the run) under mixed traffic: keep-alive GETs (plain,
// and over TLS with pauses around the hot wait and pipelined), POSTs
// with bodies, 4 MiB downloads, WebSocket echoes, server-sent events,
// slow readers, clients that vanish mid-response, pipelined bursts and
// backend faults (garbage, resets, truncated and unrequested answers,
// hangs), with the configuration reloaded (SIGHUP) every 30 s. Each minute
// it samples the proxy's goroutines, heap, resident memory and open file
// descriptors from its admin /metrics. It fails on any response lost or
// delivered to the wrong request, and when, once the traffic has stopped
// and the idle connections have timed out, goroutines or descriptors stay
// above where they were before the traffic.
func TestSoak(t *testing.T) {
	spec := os.Getenv("ADVERSARIAL_SOAK")
	if spec == "" {
		t.Skip("set ADVERSARIAL_SOAK=10m to run the soak test")
	}
	dur, err := time.ParseDuration(spec)
	if err != nil || dur <= 0 {
		t.Fatalf("ADVERSARIAL_SOAK=%q: want a duration such as 10m", spec)
	}
	sampleEvery, reloadEvery := time.Minute, 30*time.Second
	if dur < 10*time.Minute {
		sampleEvery, reloadEvery = dur/10, dur/20
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "ocsiproxy")
	build := exec.Command("go", "build", "-o", bin, "github.com/ocsiproxy/ocsiproxy")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	b := newBackend(t)
	b.forget = true
	port, tlsPort, admin := freePort(t), freePort(t), freePort(t)
	certFile, keyFile, err := testcert.Write(dir, dur+time.Hour, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	sc := soakConf{file: filepath.Join(dir, "soak.conf"), dir: dir, port: port, tlsPort: tlsPort, admin: admin,
		certFile: certFile, keyFile: keyFile, backend: b.addr}
	conf := sc.file
	sc.write(t, 0)
	cmd := exec.Command(bin, "-c", conf)
	logf, _ := os.Create(filepath.Join(dir, "stdout.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			p.Signal(syscall.SIGTERM)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	addr, tlsAddr := fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", tlsPort)
	adminURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", admin)
	waitListening(t, addr)
	waitListening(t, tlsAddr)
	waitListening(t, fmt.Sprintf("127.0.0.1:%d", admin))

	base := sampleMetrics(t, adminURL)
	t.Logf("soak: %s of traffic, samples every %s, reloads every %s", dur, sampleEvery, reloadEvery)
	t.Logf("soak: %-8s %10s %10s %12s %10s %9s %9s %8s %7s", "t", "requests", "ok", "goroutines", "heap MiB", "rss MiB", "open fds", "reloads", "bad")
	logSample := func(at string, s map[string]float64, st *soakStats) {
		t.Logf("soak: %-8s %10d %10d %12.0f %10.1f %9.1f %9.0f %8.0f %7d", at, st.requests.Load(), st.ok.Load(),
			s["go_goroutines"], s["go_memstats_heap_inuse_bytes"]/(1<<20), s["process_resident_memory_bytes"]/(1<<20),
			s["process_open_fds"], s[`ocsiproxy_config_reloads_total{result="ok"}`], st.misdelivered.Load()+st.lost.Load())
	}
	st := &soakStats{}
	logSample("idle", base, st)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, set := range []struct {
		workers []soakWorker
		addr    string
	}{{soakWorkers, addr}, {soakTLSWorkers, tlsAddr}} {
		for _, w := range set.workers {
			for i := 0; i < w.n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						w.run(set.addr, st)
					}
				}()
			}
		}
	}
	// Reloads and samples.
	start := time.Now()
	reload := time.NewTicker(reloadEvery)
	sample := time.NewTicker(sampleEvery)
	end := time.After(dur)
	gen := 0
	var samples []map[string]float64
loop:
	for {
		select {
		case <-reload.C:
			gen++
			sc.write(t, gen)
			cmd.Process.Signal(syscall.SIGHUP)
		case <-sample.C:
			s := sampleMetrics(t, adminURL)
			samples = append(samples, s)
			logSample(time.Since(start).Round(time.Second).String(), s, st)
		case <-end:
			break loop
		}
	}
	reload.Stop()
	sample.Stop()
	close(stop)
	wg.Wait()
	logSample("stopped", sampleMetrics(t, adminURL), st)

	// Idle again: client keep-alive (5 s) and backend idle (5 s)
	// connections close; what is left must be what was there before.
	var idle map[string]float64
	for i := 0; i < 60; i++ {
		time.Sleep(time.Second)
		idle = sampleMetrics(t, adminURL)
		if idle["go_goroutines"] <= base["go_goroutines"]+4 && idle["process_open_fds"] <= base["process_open_fds"]+4 {
			break
		}
	}
	logSample("idle", idle, st)
	t.Logf("soak: %d requests (%d ok, %d expected failures from backend faults), %d misdelivered, %d lost; backend received %d; config generations %d",
		st.requests.Load(), st.ok.Load(), st.faults.Load(), st.misdelivered.Load(), st.lost.Load(), b.total, gen)
	for _, e := range st.errors() {
		t.Logf("soak: %s", e)
	}
	if n := st.misdelivered.Load(); n > 0 {
		t.Errorf("%d responses went to the wrong request", n)
	}
	if n := st.lost.Load(); n > 0 {
		t.Errorf("%d requests lost their response", n)
	}
	if idle["go_goroutines"] > base["go_goroutines"]+4 {
		t.Errorf("goroutines: %v idle after the soak, %v before: a leak", idle["go_goroutines"], base["go_goroutines"])
	}
	if idle["process_open_fds"] > base["process_open_fds"]+4 {
		t.Errorf("open fds: %v idle after the soak, %v before: a leak", idle["process_open_fds"], base["process_open_fds"])
	}
	if len(samples) >= 3 {
		first, last := samples[0]["go_memstats_heap_inuse_bytes"], samples[len(samples)-1]["go_memstats_heap_inuse_bytes"]
		t.Logf("soak: heap in use %.1f MiB at the first sample, %.1f MiB at the last", first/(1<<20), last/(1<<20))
	}
	if n := b.nviolations(); n > 0 {
		t.Errorf("the backend read %d malformed streams: %v", n, b.violationsSince(0))
	}
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

// soakConf is where the soak's configuration goes and what it names: a
// plain port, an HTTPS port with its certificate, the admin listener and
// the backend.
type soakConf struct {
	file, dir         string
	port, tlsPort     int
	admin             int
	certFile, keyFile string
	backend           string
}

// write writes generation gen of the configuration: the same routes,
// with the generation in an answer header.
func (c soakConf) write(t *testing.T, gen int) {
	t.Helper()
	src := fmt.Sprintf(`<ocsigen><server>
<port>127.0.0.1:%d</port>
<port protocol="HTTPS">127.0.0.1:%d</port>
<ssl><certificate>%s</certificate><privatekey>%s</privatekey></ssl>
<logdir>%s</logdir>
<timeout>2</timeout>
<keepalivetimeout>5</keepalivetimeout>
<maxrequestbodysize>16MiB</maxrequestbodysize>
<extension findlib-package="ocsigenserver.ext.revproxy"><pool idle_timeout="5s"/></extension>
<extension findlib-package="ocsigenserver.ext.outputfilter"/>
<extension findlib-package="ocsigenserver.ext.accesscontrol"/>
<extension findlib-package="ocsiproxy.ext.admin"><listen>127.0.0.1:%d</listen></extension>
<host>%s
<revproxy suburl="(.*)" dest="http://%s/\1"/>
<outputfilter header="X-Generation" dest="%d" replace="true"/>
</host>
</server></ocsigen>
`, c.port, c.tlsPort, c.certFile, c.keyFile, c.dir, c.admin, adminRule, c.backend, gen)
	if err := os.WriteFile(c.file+".tmp", []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(c.file+".tmp", c.file); err != nil {
		t.Fatal(err)
	}
}

// sampleMetrics reads the admin /metrics into name{labels} -> value.
func sampleMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Logf("metrics: %v", err)
		return map[string]float64{}
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

type soakStats struct {
	requests, ok, faults, misdelivered, lost atomic.Int64
	mu                                       sync.Mutex
	errs                                     []string
}

func (s *soakStats) errorf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) < 20 {
		s.errs = append(s.errs, fmt.Sprintf(format, args...))
	}
}

func (s *soakStats) errors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errs...)
}

var soakSeq atomic.Int64

func soakToken() string { return fmt.Sprintf("s%d", soakSeq.Add(1)) }

// soakRequest sends raw (with the tokens toks in its heads) on a fresh
// connection and checks each answer's token: a wrong token is a
// misdelivery; a missing or failed answer to a sound request is lost.
func soakExchange(addr, raw string, toks, methods []string, st *soakStats, check func(i int, r *resp) bool) {
	st.requests.Add(int64(len(toks)))
	e, err := exchangeOn(addr, raw, methods, 20*time.Second, 0)
	if err != nil {
		st.lost.Add(int64(len(toks)))
		st.errorf("dial: %v", err)
		return
	}
	for i := range toks {
		if i >= len(e.Resps) {
			st.lost.Add(1)
			st.errorf("no answer %d to %q: %s", i, clip(raw), e)
			continue
		}
		r := e.Resps[i]
		if got := r.Header.Get("X-Echo-Token"); got != "" && got != toks[i] {
			st.misdelivered.Add(1)
			st.errorf("answer %d carries %q, want %q", i, got, toks[i])
			continue
		}
		if check != nil && !check(i, r) {
			st.lost.Add(1)
			st.errorf("bad answer %d to %q: %s", i, clip(raw), r)
			continue
		}
		st.ok.Add(1)
	}
	if bytes.Contains(e.Raw, []byte("SMUGGLED")) || bytes.Contains(e.Raw, []byte("stolen")) {
		st.misdelivered.Add(1)
		st.errorf("a trap reached the client: %q", clip(string(e.Raw)))
	}
}

func isEcho(r *resp) bool {
	return r.Status == 200 && r.BodyErr == nil && bytes.HasPrefix(r.Body, []byte("token="))
}

type soakWorker struct {
	n   int
	run func(addr string, st *soakStats)
}

var soakWorkers = []soakWorker{
	// Keep-alive GETs, four on one connection.
	{4, func(addr string, st *soakStats) {
		var raw string
		var toks []string
		for i := 0; i < 4; i++ {
			tk := soakToken()
			toks = append(toks, tk)
			raw += "GET /soak/get?i=" + strconv.Itoa(i) + " HTTP/1.1\r\nHost: h\r\nX-Token: " + tk + "\r\n\r\n"
		}
		soakExchange(addr, raw, toks, repeat("GET", 4), st, func(_ int, r *resp) bool { return isEcho(r) })
	}},
	// POSTs with a 64 kB body.
	{2, func(addr string, st *soakStats) {
		tk := soakToken()
		raw := "POST /soak/post HTTP/1.1\r\nHost: h\r\nX-Token: " + tk + "\r\nContent-Length: 65536\r\n\r\n" + strings.Repeat("p", 65536)
		soakExchange(addr, raw, []string{tk}, []string{"POST"}, st, func(_ int, r *resp) bool {
			return isEcho(r) && bytes.HasSuffix(r.Body, []byte("body=65536"))
		})
	}},
	// 4 MiB downloads.
	{2, func(addr string, st *soakStats) {
		tk := soakToken()
		raw := "GET /b/big?size=4194304 HTTP/1.1\r\nHost: h\r\nX-Token: " + tk + "\r\n\r\n"
		soakExchange(addr, raw, []string{tk}, []string{"GET"}, st, func(_ int, r *resp) bool {
			return r.Status == 200 && len(r.Body) == 4<<20 && checkPattern(r.Body)
		})
	}},
	// Server-sent events.
	{1, func(addr string, st *soakStats) {
		tk := soakToken()
		raw := "GET /b/sse HTTP/1.1\r\nHost: h\r\nX-Token: " + tk + "\r\n\r\n"
		soakExchange(addr, raw, []string{tk}, []string{"GET"}, st, func(_ int, r *resp) bool {
			return r.Status == 200 && string(r.Body) == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
		})
	}},
	// WebSocket: a handshake, then 20 echoes through the tunnel.
	{2, func(addr string, st *soakStats) {
		tk := soakToken()
		st.requests.Add(1)
		cl, err := dial(addr)
		if err != nil {
			st.lost.Add(1)
			return
		}
		defer cl.close()
		key := base64.StdEncoding.EncodeToString([]byte(tk + "0123456789abcdef")[:16])
		cl.sendSync("GET /soak/ws HTTP/1.1\r\nHost: h\r\nX-Token: " + tk + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\n\r\n")
		e := cl.read([]string{"GET"}, 10*time.Second, 0)
		sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		if r := e.first(); r == nil || r.Status != 101 || r.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
			st.lost.Add(1)
			st.errorf("WebSocket handshake: %s", e)
			return
		}
		buf := make([]byte, 16)
		for i := 0; i < 20; i++ {
			msg := fmt.Sprintf("msg%013d", i)
			cl.sendSync(msg)
			cl.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(cl.br, buf); err != nil || string(buf) != strings.ToUpper(msg) {
				st.lost.Add(1)
				st.errorf("WebSocket echo %d: %q, %v", i, buf, err)
				return
			}
		}
		st.ok.Add(1)
	}},
	// A slow reader: 2 MiB at 16 kB every 20 ms.
	{1, func(addr string, st *soakStats) {
		tk := soakToken()
		st.requests.Add(1)
		cl, err := dial(addr)
		if err != nil {
			st.lost.Add(1)
			return
		}
		defer cl.close()
		cl.sendSync("GET /b/big?size=2097152 HTTP/1.1\r\nHost: h\r\nX-Token: " + tk + "\r\n\r\n")
		cl.c.SetReadDeadline(time.Now().Add(30 * time.Second))
		hr, err := http.ReadResponse(cl.br, nil)
		if err != nil {
			st.lost.Add(1)
			st.errorf("slow reader: %v", err)
			return
		}
		defer hr.Body.Close()
		if got := hr.Header.Get("X-Echo-Token"); got != tk {
			st.misdelivered.Add(1)
			return
		}
		var body []byte
		buf := make([]byte, 16<<10)
		for {
			n, err := hr.Body.Read(buf)
			body = append(body, buf[:n]...)
			if err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(body) != 2<<20 || !checkPattern(body) {
			st.lost.Add(1)
			st.errorf("slow reader got %d bytes", len(body))
			return
		}
		st.ok.Add(1)
	}},
	// Clients that vanish mid-response.
	{1, func(addr string, st *soakStats) {
		cl, err := dial(addr)
		if err != nil {
			return
		}
		cl.sendSync("GET /b/big?size=8388608 HTTP/1.1\r\nHost: h\r\nX-Token: " + soakToken() + "\r\n\r\n")
		cl.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.ReadFull(cl.br, make([]byte, 64<<10))
		cl.close()
	}},
	// Backend faults: the answers may fail (502, 504, cut), but never
	// carry another request's token.
	{2, func(addr string, st *soakStats) {
		modes := []string{"garbage", "close", "reset", "truncate-length", "truncate-chunked", "extra", "cl-te", "two-lengths", "204-body", "status-letters", "close-second", "switching"}
		m := modes[int(soakSeq.Load())%len(modes)]
		tk := soakToken()
		raw := "GET /b/" + m + " HTTP/1.1\r\nHost: h\r\nX-Token: " + tk + "\r\n\r\n"
		st.requests.Add(1)
		e, err := exchangeOn(addr, raw, []string{"GET"}, 20*time.Second, 0)
		if err != nil {
			return
		}
		if r := e.first(); r != nil {
			if got := r.Header.Get("X-Echo-Token"); got != "" && got != tk {
				st.misdelivered.Add(1)
				st.errorf("fault %s: answer carries %q, want %q", m, got, tk)
				return
			}
		}
		if bytes.Contains(e.Raw, []byte("SMUGGLED")) || bytes.Contains(e.Raw, []byte("stolen")) {
			st.misdelivered.Add(1)
			st.errorf("fault %s: a trap reached the client", m)
			return
		}
		st.faults.Add(1)
	}},
	// A backend that does not answer in time: 504.
	{1, func(addr string, st *soakStats) {
		tk := soakToken()
		raw := "GET /b/hang HTTP/1.1\r\nHost: h\r\nX-Token: " + tk + "\r\n\r\n"
		st.requests.Add(1)
		e, err := exchangeOn(addr, raw, []string{"GET"}, 20*time.Second, 0)
		if err != nil || e.status() != 504 {
			st.lost.Add(1)
			st.errorf("hang: %v %s", err, e)
			return
		}
		st.faults.Add(1)
	}},
}

// soakTLSWorkers run on the HTTPS port.
var soakTLSWorkers = []soakWorker{
	// Keep-alive GETs over TLS: after no pause, a pause within the hot
	// wait and one past it, then two pipelined in one write.
	{2, func(addr string, st *soakStats) {
		pauses := []time.Duration{0, 0, 30 * time.Millisecond, 150 * time.Millisecond}
		const pipelined = 2
		st.requests.Add(int64(len(pauses) + pipelined))
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
			&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			st.lost.Add(int64(len(pauses) + pipelined))
			st.errorf("TLS dial: %v", err)
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(c)
		// exchange writes n requests at once and checks their answers;
		// false when the connection cannot go on.
		exchange := func(n int) bool {
			var raw string
			var toks []string
			for range n {
				tk := soakToken()
				toks = append(toks, tk)
				raw += "GET /soak/tls HTTP/1.1\r\nHost: h\r\nX-Token: " + tk + "\r\n\r\n"
			}
			if _, err := io.WriteString(c, raw); err != nil {
				st.lost.Add(int64(n))
				st.errorf("TLS write: %v", err)
				return false
			}
			for i, tk := range toks {
				hr, err := http.ReadResponse(br, nil)
				if err != nil {
					st.lost.Add(int64(n - i))
					st.errorf("TLS answer to %s: %v", tk, err)
					return false
				}
				body, err := io.ReadAll(hr.Body)
				hr.Body.Close()
				switch got := hr.Header.Get("X-Echo-Token"); {
				case got != tk:
					st.misdelivered.Add(1)
					st.errorf("TLS answer carries %q, want %q", got, tk)
				case err != nil || hr.StatusCode != 200 || !bytes.HasPrefix(body, []byte("token=")):
					st.lost.Add(1)
					st.errorf("TLS answer to %s: %d %q %v", tk, hr.StatusCode, clip(string(body)), err)
				default:
					st.ok.Add(1)
				}
			}
			return true
		}
		for _, p := range pauses {
			time.Sleep(p)
			if !exchange(1) {
				st.lost.Add(pipelined)
				return
			}
		}
		exchange(pipelined)
	}},
}
