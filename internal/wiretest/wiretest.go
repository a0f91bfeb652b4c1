// Package wiretest helps tests read HTTP/1.1 answers as bytes: the whole
// answer of a raw request, and the trailer section of a chunked body.
package wiretest

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TrailerSection returns what follows the last chunk of the chunked
// body: the trailer fields, each with its CRLF, then the empty line.
func TrailerSection(t testing.TB, body string) string {
	t.Helper()
	rest := body
	for {
		line, after, ok := strings.Cut(rest, "\r\n")
		n, err := strconv.ParseUint(line, 16, 32)
		if !ok || err != nil {
			t.Fatalf("bad chunk size line %q in %q", line, body)
		}
		if n == 0 {
			return after
		}
		if uint64(len(after)) < n+2 || after[n:n+2] != "\r\n" {
			t.Fatalf("bad chunk in %q", body)
		}
		rest = after[n+2:]
	}
}

// RawAll sends req on a new connection to addr and returns every byte of
// the answer, up to the server's close (10 s at most).
func RawAll(t testing.TB, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, c); err != nil {
		t.Fatalf("reading the answer to %q: %v (so far %q)", req, err, buf.String())
	}
	return buf.String()
}
