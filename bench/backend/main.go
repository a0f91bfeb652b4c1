// Command backend is the origin server of the benchmark suite: an
// HTTP/1.1 server on raw sockets, cheap enough per request that the
// proxies in front of it, not it, decide the numbers.
//
// Any path answers 200 with a 64-byte body; /size/N answers N bytes (N at
// most 16 MiB); /sleep/MS answers 64 bytes MS milliseconds (at most 10 s)
// after the request was read. HEAD gets the head only. Request bodies
// (Content-Length or chunked) are read and dropped. Pipelined requests
// are answered in order, their responses written together. GET /_stats
// answers the counters as JSON: connections accepted, open, and requests
// served.
//
// With -pipeline=turn (the default) a connection's requests are served
// in turn: the next one is read once the previous answer is written, so
// pipelined /sleep requests wait for each other. With
// -pipeline=concurrent a goroutine reads them as they come, so that each
// /sleep answer is due MS after its own request (answers still go out in
// order), as from a backend with a worker per request: bench/pipeline.sh
// measures the pool's pipelining against both.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

const maxSize = 16 << 20

// maxSleep bounds the delay of /sleep/MS.
const maxSleep = 10 * time.Second

var (
	// concurrent: requests are read as they come (-pipeline).
	concurrent bool
	body       = bytes.Repeat([]byte("0123456789abcdef"), maxSize/16)
	conns      atomic.Int64
	open       atomic.Int64
	requests   atomic.Int64
)

func main() {
	addr := flag.String("listen", "127.0.0.1:18500", "address to listen on")
	mode := flag.String("pipeline", "turn", "how pipelined requests are served: turn or concurrent")
	flag.Parse()
	switch *mode {
	case "turn":
	case "concurrent":
		concurrent = true
	default:
		log.Fatalf("backend: -pipeline %q: want turn or concurrent", *mode)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		fmt.Fprintf(os.Stderr, "backend: %s\n", stats())
		os.Exit(0)
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			log.Fatal(err)
		}
		conns.Add(1)
		open.Add(1)
		go serve(c)
	}
}

func stats() string {
	return fmt.Sprintf(`{"conns_total":%d,"conns_open":%d,"requests":%d}`, conns.Load(), open.Load(), requests.Load())
}

// serve answers the requests of one connection until it closes or a
// request cannot be parsed.
func serve(c net.Conn) {
	defer open.Add(-1)
	defer c.Close()
	br := bufio.NewReaderSize(c, 8<<10)
	bw := bufio.NewWriterSize(c, 8<<10)
	var head []byte
	read := func() (*request, error) {
		req, err := readHead(br)
		if err == nil {
			req.read = time.Now()
			err = req.skipBody(br)
		}
		return req, err
	}
	var queue chan readResult
	if concurrent {
		queue = make(chan readResult, 64)
		done := make(chan struct{})
		defer close(done)
		readNext := read
		go func() {
			for {
				req, err := readNext()
				select {
				case queue <- readResult{req, err}:
				case <-done:
					return
				}
				if err != nil || req.close {
					return
				}
			}
		}()
		read = func() (*request, error) {
			r := <-queue
			return r.req, r.err
		}
	}
	pending := func() bool {
		if concurrent {
			return len(queue) > 0
		}
		return br.Buffered() > 0
	}
	for {
		req, err := read()
		if err != nil {
			if errors.Is(err, errBad) {
				bw.WriteString("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
				bw.Flush()
			}
			return
		}
		requests.Add(1)
		n := 64
		var extra []byte
		path, _, _ := strings.Cut(req.target, "?")
		switch {
		case strings.HasPrefix(path, "/sleep/"):
			ms, err := strconv.Atoi(path[len("/sleep/"):])
			if err != nil || ms < 0 || time.Duration(ms)*time.Millisecond > maxSleep {
				bw.WriteString("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
				goto next
			}
			if d := time.Until(req.read.Add(time.Duration(ms) * time.Millisecond)); d > 0 {
				bw.Flush() // the answers due before this one go now
				time.Sleep(d)
			}
		case path == "/_stats":
			extra = []byte(stats())
		case strings.HasPrefix(path, "/size/"):
			v, err := strconv.Atoi(path[len("/size/"):])
			if err != nil || v < 0 || v > maxSize {
				bw.WriteString("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
				goto next
			}
			n = v
		}
		if extra != nil {
			n = len(extra)
		}
		head = append(head[:0], "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "...)
		head = strconv.AppendInt(head, int64(n), 10)
		if req.close {
			head = append(head, "\r\nConnection: close"...)
		}
		head = append(head, "\r\n\r\n"...)
		bw.Write(head)
		if !req.head {
			if extra != nil {
				bw.Write(extra)
			} else {
				bw.Write(body[:n])
			}
		}
	next:
		if req.close {
			bw.Flush()
			return
		}
		// Answers to pipelined requests go out together.
		if !pending() {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}

// readResult is a request read by a concurrent connection's reader.
type readResult struct {
	req *request
	err error
}

type request struct {
	// read is when the request was read whole (head and body).
	read    time.Time
	target  string
	head    bool  // HEAD: no body in the answer
	close   bool  // the connection ends after the answer
	length  int64 // Content-Length, -1 when absent
	chunked bool
}

var errBad = errors.New("bad request")

// readHead reads a request line and header block.
func readHead(br *bufio.Reader) (*request, error) {
	line, err := br.ReadSlice('\n')
	for err == nil && len(bytes.TrimSpace(line)) == 0 {
		line, err = br.ReadSlice('\n') // empty lines before a request
	}
	if err != nil {
		if len(line) == 0 {
			return nil, io.EOF
		}
		return nil, errBad
	}
	f := bytes.Fields(line)
	if len(f) != 3 {
		return nil, errBad
	}
	req := &request{target: string(f[1]), head: string(f[0]) == "HEAD", length: -1}
	proto := string(f[2])
	keepAlive := false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, errBad
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, errBad
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < 0 {
				return nil, errBad
			}
			req.length = n
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			req.chunked = true
		case bytes.EqualFold(k, []byte("Connection")):
			switch {
			case bytes.EqualFold(v, []byte("close")):
				req.close = true
			case bytes.EqualFold(v, []byte("keep-alive")):
				keepAlive = true
			}
		}
	}
	if proto == "HTTP/1.0" && !keepAlive {
		req.close = true
	}
	return req, nil
}

// skipBody reads the request's body and drops it.
func (r *request) skipBody(br *bufio.Reader) error {
	if !r.chunked {
		if r.length > 0 {
			_, err := br.Discard(int(r.length))
			return err
		}
		return nil
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size := bytes.TrimSpace(line)
		if i := bytes.IndexByte(size, ';'); i >= 0 {
			size = size[:i]
		}
		n, err := strconv.ParseInt(string(size), 16, 64)
		if err != nil || n < 0 {
			return errBad
		}
		if n == 0 {
			break
		}
		if _, err := br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
	for { // trailer section
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			return nil
		}
	}
}
