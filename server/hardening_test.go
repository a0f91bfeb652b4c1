package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestStalledBodyTimedOut checks that a request body that stops coming is
// cut after <timeout> with 408 and the connection closed, while a slow
// body that keeps coming is read whole.
func TestStalledBodyTimedOut(t *testing.T) {
	b := newBackend(t, nil)
	r := start(t, t.TempDir(), `<port>127.0.0.1:0</port><timeout>2</timeout><host><revproxy suburl="(.*)" dest="`+b.URL+`/\1"/></host>`)
	c, err := net.Dial("tcp", r.addr(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST /stalled HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n0123456789")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Errorf("status %d, close %v; want 408 and close", resp.StatusCode, resp.Close)
	}

	c2, err := net.Dial("tcp", r.addr(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c2, "POST /slow HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n")
	for _, piece := range []string{"a", "b", "c", "d", "e"} {
		// 2.5 s in all, over the timeout; each piece 1.5 s within it, so
		// that a loaded machine's late wake-ups cannot fail the test.
		time.Sleep(500 * time.Millisecond)
		io.WriteString(c2, piece)
	}
	resp, err = http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || b.last(t).Body != "abcde" {
		t.Errorf("slow body: status %d, backend body %q; want 200 and abcde", resp.StatusCode, b.last(t).Body)
	}
}
