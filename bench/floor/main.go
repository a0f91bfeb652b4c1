// Command floor is a measuring stick, not a proxy: the least work a Go
// program can do to relay GET requests from keep-alive clients to one
// backend, to price what ocsiproxy's structure and its HTTP work cost per
// request (bench/floor.sh runs it beside ocsiproxy and nginx).
//
// Each client connection gets a backend connection of its own. A request
// head is taken as it comes (no parsing beyond its first line and its
// end); the backend gets the same method and target with a fixed Host,
// X-Forwarded-For and X-Forwarded-Proto; the backend's answer (it must
// have a Content-Length) goes back to the client byte for byte. Nothing
// is checked, logged or timed out.
//
// Flags add, one by one, the structural costs ocsiproxy pays:
//
//	-reader     the backend's answers are read by a goroutine of their
//	            own and handed over on a channel (the pool's readLoop, on
//	            connections that pipeline)
//	-handoff    the next request is waited for on a new goroutine that
//	            hands the connection to a worker (the h1 server)
//	-deadlines  a read or write deadline is set before each socket call
//	-alloc N    N bytes of short-lived garbage per request, in 16 objects
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"time"
)

var (
	listen    = flag.String("listen", "127.0.0.1:18390", "address to listen on")
	backend   = flag.String("backend", "127.0.0.1:18300", "backend address")
	reader    = flag.Bool("reader", false, "read answers on a goroutine per backend connection")
	handoff   = flag.Bool("handoff", false, "wait for each request on a new goroutine, serve it on a worker")
	deadlines = flag.Bool("deadlines", false, "set a deadline before each socket call")
	alloc     = flag.Int("alloc", 0, "bytes of garbage per request")
)

func main() {
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		b, err := net.Dial("tcp", *backend)
		if err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			c.Close()
			continue
		}
		k := &conn{client: c, backend: b, in: make([]byte, 4096), out: make([]byte, 16<<10),
			asks: make(chan struct{}, 1), answers: make(chan answer, 1)}
		if *reader {
			go k.readLoop()
		}
		if *handoff {
			go k.wait()
		} else {
			go k.serveAll()
		}
	}
}

type conn struct {
	client, backend net.Conn
	in, out         []byte
	head            []byte // the request head sent to the backend
	asks            chan struct{}
	answers         chan answer
}

type answer struct {
	n   int
	err error
}

func (k *conn) close() {
	k.client.Close()
	k.backend.Close()
	if *reader {
		close(k.asks)
	}
}

func (k *conn) serveAll() {
	for k.serve(0) {
	}
	k.close()
}

// wait reads the first bytes of the next request, then has a worker
// serve it.
func (k *conn) wait() {
	if *deadlines {
		k.client.SetReadDeadline(time.Now().Add(5 * time.Minute))
	}
	n, err := k.client.Read(k.in)
	if err != nil {
		k.close()
		return
	}
	select {
	case w := <-idleWorkers:
		w <- job{k, n}
	default:
		w := make(chan job, 1)
		w <- job{k, n}
		go work(w)
	}
}

type job struct {
	k *conn
	n int
}

var idleWorkers = make(chan chan job, 4096)

func work(w chan job) {
	for j := range w {
		if j.k.serve(j.n) {
			go j.k.wait()
		} else {
			j.k.close()
		}
		select {
		case idleWorkers <- w:
		default:
			return
		}
	}
}

var sink [8][]byte

// serve relays one request whose first n bytes are in k.in.
func (k *conn) serve(n int) bool {
	for bytes.Index(k.in[:n], []byte("\r\n\r\n")) < 0 {
		if n == len(k.in) {
			return false
		}
		if *deadlines {
			k.client.SetReadDeadline(time.Now().Add(5 * time.Minute))
		}
		m, err := k.client.Read(k.in[n:])
		if err != nil {
			return false
		}
		n += m
	}
	line := k.in[:bytes.IndexByte(k.in[:n], '\r')]
	proto := bytes.LastIndexByte(line, ' ')
	if proto < 0 {
		return false
	}
	k.head = append(append(k.head[:0], line[:proto]...),
		" HTTP/1.1\r\nHost: backend\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n"...)
	for i := 0; i < 16 && *alloc > 0; i++ {
		sink[i%8] = make([]byte, *alloc/16)
	}
	if *deadlines {
		k.backend.SetWriteDeadline(time.Now().Add(time.Minute))
	}
	if _, err := k.backend.Write(k.head); err != nil {
		return false
	}
	var a answer
	if *reader {
		k.asks <- struct{}{}
		a = <-k.answers
	} else {
		a.n, a.err = k.readAnswer()
	}
	if a.err != nil {
		return false
	}
	if *deadlines {
		k.client.SetWriteDeadline(time.Now().Add(time.Minute))
	}
	_, err := k.client.Write(k.out[:a.n])
	return err == nil
}

func (k *conn) readLoop() {
	for range k.asks {
		n, err := k.readAnswer()
		k.answers <- answer{n, err}
	}
}

// readAnswer reads one answer with a Content-Length into k.out.
func (k *conn) readAnswer() (int, error) {
	n, size := 0, -1
	if *deadlines {
		k.backend.SetReadDeadline(time.Now().Add(time.Minute))
	}
	for size < 0 || n < size {
		if n == len(k.out) {
			k.out = append(k.out, make([]byte, len(k.out))...)
		}
		m, err := k.backend.Read(k.out[n:])
		if err != nil {
			return 0, err
		}
		n += m
		if size >= 0 {
			continue
		}
		end := bytes.Index(k.out[:n], []byte("\r\n\r\n"))
		if end < 0 {
			continue
		}
		i := bytes.Index(k.out[:end], []byte("\r\nContent-Length: "))
		if i < 0 {
			return 0, errors.New("floor: answer without Content-Length")
		}
		v := k.out[i+18 : end+2]
		cl, err := strconv.Atoi(string(v[:bytes.IndexByte(v, '\r')]))
		if err != nil {
			return 0, err
		}
		size = end + 4 + cl
	}
	return n, nil
}
