package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ocsiproxy/ocsiproxy/accesslog"
	"github.com/ocsiproxy/ocsiproxy/engine"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// BenchmarkProxy measures one small proxied GET through the handler and
// the backend client, over loopback keep-alive connections on both
// sides. Run with -benchmem for allocations per request (client and
// backend included: compare runs, not absolutes).
func BenchmarkProxy(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("hello, world\n"))
	}))
	defer backend.Close()
	src := `<ocsigen><server><port>8080</port>` + extensionLines + `
<host hostfilter="*"><revproxy suburl="(.*)" dest="` + backend.URL + `/\1"/></host></server></ocsigen>`
	cfg, err := xmlconf.Parse("bench.conf", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	logs, err := accesslog.OpenLogs("", accesslog.Silent, io.Discard, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(cfg, logs, engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(srv.Handler)
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := front.URL + "/index.html?x=1"
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkProxyWire measures one small proxied GET through the whole
// server (listener, framing tracker, net/http, handler, backend pool,
// access log to a file), between a client and a backend that speak
// HTTP/1.1 on raw sockets and allocate nothing per request: allocs/op
// and B/op are the proxy's own.
func BenchmarkProxyWire(b *testing.B) {
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer bl.Close()
	go rawBackend(bl)
	dir := b.TempDir()
	file := filepath.Join(dir, "bench.conf")
	src := `<ocsigen><server><port>127.0.0.1:0</port><logdir>` + dir + `</logdir>` + extensionLines + `
<host hostfilter="*"><revproxy suburl="(.*)" dest="http://` + bl.Addr().String() + `/\1"/></host></server></ocsigen>`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg, err := xmlconf.Load(file)
	if err != nil {
		b.Fatal(err)
	}
	logs, err := accesslog.OpenLogs(cfg.LogDir, accesslog.Silent, io.Discard, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	defer logs.Close()
	srv, err := New(cfg, logs, engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() {
		cancel()
		<-done
		if b.Failed() {
			data, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
			b.Logf("errors.log:\n%s", data)
		}
	}()
	addr := srv.Addrs()[0].String()
	req := []byte("GET /index.html?x=1 HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReaderSize(c, 16<<10)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			if err := readRawResponse(br); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// rawBackend answers every request of every connection accepted on l
// with a 64-byte body, without allocating per request.
func rawBackend(l net.Listener) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\n" + strings.Repeat("x", 63) + "\n")
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			br := bufio.NewReaderSize(c, 16<<10)
			for {
				// GETs only: the head ends with an empty line.
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) <= 2 {
						break
					}
				}
				if _, err := c.Write(resp); err != nil {
					return
				}
			}
		}()
	}
}

// readRawResponse reads one response with a Content-Length body.
func readRawResponse(br *bufio.Reader) error {
	n := -1
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if first {
			if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
				return fmt.Errorf("status line %q", line)
			}
			continue
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), "content-length") {
			n, err = strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return err
			}
		}
	}
	if n < 0 {
		return errors.New("response without Content-Length")
	}
	_, err := br.Discard(n)
	return err
}
