// Command h1proto is an experiment, not part of ocsiproxy: ocsiproxy's
// request handler (server.Handler: the compiled configuration, the
// backend pool, the logs) behind a minimal HTTP/1.1 front written for it,
// in place of net/http's server, to measure what net/http's server costs
// per request and per idle connection (bench/run.sh TARGETS=h1proto).
//
// It serves the first plain-HTTP <port> only, with net/http's request
// parser (http.ReadRequest) but none of the rest of net/http's server: no
// goroutine and context per request (a client that goes away is noticed
// when its connection is next read or written), no timeouts, no framing
// tracker, no TLS, no HTTP/2, no graceful shutdown. An idle connection
// holds no buffer and a goroutine with a small stack: its buffers go back
// to pools between requests, and the goroutine that served a request
// hands the connection to a fresh one to wait for the next.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/ocsiproxy/ocsiproxy/server"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

func main() {
	file := flag.String("c", "", "ocsiproxy configuration")
	flag.Bool("s", false, "silent (accepted for compatibility)")
	pprof := flag.String("pprof", "", "address of a net/http/pprof listener (profiling)")
	flag.Parse()
	if *pprof != "" {
		go http.ListenAndServe(*pprof, nil)
	}
	cfg, err := xmlconf.Load(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	logs, err := server.OpenLogs(cfg.LogDir, server.Silent, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv, err := server.New(cfg, logs, server.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var addr string
	for _, p := range cfg.Ports {
		if !p.HTTPS {
			addr = p.Addr
			break
		}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		l.Close()
		logs.Close()
		os.Exit(0)
	}()
	for {
		nc, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		c, err := newConn(nc, srv.Handler)
		if err != nil {
			nc.Close()
			continue
		}
		go c.wait()
	}
}

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

// conn is one client connection.
type conn struct {
	nc      net.Conn
	rc      syscall.RawConn
	src     source
	ctx     context.Context
	cancel  context.CancelFunc
	remote  string
	handler http.Handler
	br      *bufio.Reader // nil while idle
	bw      *bufio.Writer // nil while idle
	hdr     http.Header   // the response header map, cleared per request
}

// source is what the bufio.Reader reads: the socket through a raw read
// while the connection waits in RawConn.Read, else the net.Conn.
type source struct {
	raw  bool
	fd   int
	conn net.Conn
}

func (s *source) Read(p []byte) (int, error) {
	if !s.raw {
		return s.conn.Read(p)
	}
	n, err := syscall.Read(s.fd, p)
	switch {
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func newConn(nc net.Conn, h http.Handler) (*conn, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, errors.New("not a syscall.Conn")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), http.LocalAddrContextKey, nc.LocalAddr()))
	return &conn{nc: nc, rc: rc, src: source{conn: nc}, ctx: ctx, cancel: cancel, remote: nc.RemoteAddr().String(), handler: h}, nil
}

func (c *conn) close() {
	c.cancel()
	c.nc.Close()
	c.release()
}

// release gives the buffers back to their pools.
func (c *conn) release() {
	if c.br != nil {
		c.br.Reset(nil)
		readers.Put(c.br)
		c.br = nil
	}
	if c.bw != nil {
		c.bw.Reset(nil)
		writers.Put(c.bw)
		c.bw = nil
	}
}

// wait waits, holding no buffer, until the next request's bytes arrive,
// then serves.
func (c *conn) wait() {
	var perr error
	c.src.raw = true
	err := c.rc.Read(func(fd uintptr) bool {
		c.src.fd = int(fd)
		if c.br == nil {
			c.br = readers.Get().(*bufio.Reader)
			c.br.Reset(&c.src)
		}
		_, perr = c.br.Peek(1)
		if errors.Is(perr, syscall.EAGAIN) {
			c.br.Reset(nil)
			readers.Put(c.br)
			c.br = nil
			return false // nothing yet: wait for the socket
		}
		return true
	})
	c.src.raw = false
	if err != nil || perr != nil {
		c.close()
		return
	}
	c.serve()
}

// serve serves requests while their bytes are already here, then hands
// the connection to a new goroutine to wait (this one's stack, grown by
// the handler, is freed).
func (c *conn) serve() {
	c.bw = writers.Get().(*bufio.Writer)
	c.bw.Reset(c.nc)
	for {
		req, err := http.ReadRequest(c.br)
		if err != nil {
			if err != io.EOF {
				c.bw.WriteString("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
				c.bw.Flush()
			}
			c.close()
			return
		}
		req.RemoteAddr = c.remote
		req = req.WithContext(c.ctx)
		w := &response{c: c, req: req, cl: -1}
		if c.hdr == nil {
			c.hdr = make(http.Header, 8)
		}
		w.hdr = c.hdr
		c.handler.ServeHTTP(w, req)
		if w.hijacked {
			return
		}
		keep := w.finish()
		clear(c.hdr)
		if !keep {
			c.bw.Flush()
			c.close()
			return
		}
		if c.br.Buffered() > 0 {
			continue // pipelined: answer it before writing this one out
		}
		if err := c.bw.Flush(); err != nil {
			c.close()
			return
		}
		c.release()
		go c.wait()
		return
	}
}

// response is the http.ResponseWriter of one request.
type response struct {
	c           *conn
	req         *http.Request
	hdr         http.Header
	wroteHeader bool
	hijacked    bool
	chunked     bool
	noBody      bool
	close       bool
	cl          int64
	written     int64
}

func (w *response) Header() http.Header { return w.hdr }

var dateCache struct {
	sync.Mutex
	sec  int64
	text string
}

func httpDate() string {
	now := time.Now()
	dateCache.Lock()
	defer dateCache.Unlock()
	if s := now.Unix(); s != dateCache.sec {
		dateCache.sec, dateCache.text = s, now.UTC().Format(http.TimeFormat)
	}
	return dateCache.text
}

func (w *response) WriteHeader(code int) {
	if w.wroteHeader || w.hijacked {
		return
	}
	if code >= 100 && code < 200 {
		return // interim answers are not passed on by this prototype
	}
	w.wroteHeader = true
	bw := w.c.bw
	w.noBody = w.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	if v := w.hdr["Content-Length"]; len(v) == 1 {
		if n, err := strconv.ParseInt(v[0], 10, 64); err == nil {
			w.cl = n
		}
	}
	w.close = w.req.Close || w.hdr.Get("Connection") == "close"
	if w.cl < 0 && !w.noBody {
		if w.req.ProtoAtLeast(1, 1) {
			w.chunked = true
		} else {
			w.close = true
		}
	}
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(code))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(code))
	bw.WriteString("\r\n")
	for k, vv := range w.hdr {
		if k == "Connection" || k == "Transfer-Encoding" {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if _, ok := w.hdr["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.WriteString(httpDate())
		bw.WriteString("\r\n")
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if w.close {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody || len(p) == 0 {
		return len(p), nil
	}
	bw := w.c.bw
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	w.written += int64(n)
	if w.chunked {
		bw.WriteString("\r\n")
	}
	return n, err
}

func (w *response) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.c.bw.Flush()
}

func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	return w.c.nc, bufio.NewReadWriter(w.c.br, w.c.bw), nil
}

// finish ends the answer and reports whether the connection can carry
// another request.
func (w *response) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.chunked {
		w.c.bw.WriteString("0\r\n\r\n")
	}
	if w.close || w.cl >= 0 && w.written != w.cl && !w.noBody {
		return false
	}
	// A body the handler did not read to its end is read now (a small
	// one), or the connection is closed.
	if w.req.Body != nil && w.req.Body != http.NoBody {
		if n, _ := io.CopyN(io.Discard, w.req.Body, 256<<10); n == 256<<10 {
			return false
		}
		w.req.Body.Close()
	}
	return true
}
