// Command idle opens many keep-alive connections to an HTTP server, sends
// one GET on each and reads its answer, then leaves them all open and
// idle: the benchmark suite measures the server's memory with them open.
//
// With -tls it speaks HTTP/1.1 over TLS (ALPN "http/1.1", the server's
// certificate not checked).
//
// It prints "ready N" when N connections are open and answered (or
// "error ..." and exits non-zero), then holds them until its standard
// input closes or -hold passes, and closes them.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18310", "server address")
	n := flag.Int("n", 10000, "connections")
	path := flag.String("path", "/", "request path")
	parallel := flag.Int("parallel", 64, "connections being opened at a time")
	hold := flag.Duration("hold", 2*time.Minute, "longest time to hold the connections")
	timeout := flag.Duration("timeout", 60*time.Second, "time limit for opening them all")
	useTLS := flag.Bool("tls", false, "HTTP/1.1 over TLS")
	flag.Parse()
	if *useTLS {
		tlsConf = &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
	}

	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: bench\r\nUser-Agent: idle\r\n\r\n")
	conns := make([]net.Conn, *n)
	deadline := time.Now().Add(*timeout)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	next := make(chan int)
	for range *parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := open(*addr, req, deadline)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := range *n {
		next <- i
	}
	close(next)
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if firstErr != nil {
		fmt.Printf("error %v\n", firstErr)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", *n)
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(*hold):
	}
}

// tlsConf is the configuration of -tls connections (nil: plain).
var tlsConf *tls.Config

// open connects, sends req and reads one answer, which must be a 200
// with a Content-Length body, and leaves the connection open.
func open(addr string, req []byte, deadline time.Time) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, time.Until(deadline))
	if err != nil {
		return nil, err
	}
	if tlsConf != nil {
		c = tls.Client(c, tlsConf)
	}
	c.SetDeadline(deadline)
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReader(c)
	if err := readResponse(br); err != nil {
		c.Close()
		return nil, err
	}
	if br.Buffered() > 0 {
		c.Close()
		return nil, errors.New("bytes after the answer")
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func readResponse(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", bytes.TrimSpace(line))
	}
	length := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			break
		}
		k, v, _ := bytes.Cut(line, []byte(":"))
		if bytes.EqualFold(k, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return err
			}
		}
		if bytes.EqualFold(k, []byte("Connection")) && bytes.EqualFold(bytes.TrimSpace(v), []byte("close")) {
			return errors.New("server closes the connection")
		}
	}
	if length < 0 {
		return errors.New("answer without Content-Length")
	}
	_, err = br.Discard(length)
	return err
}
