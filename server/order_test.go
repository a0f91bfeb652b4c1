package server

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestFieldOrder checks that header fields keep their order through the
// proxy both ways, as nginx keeps it: the backend receives the client's
// fields in the order sent, followed by the forwarding fields, and the
// client receives the backend's fields in the order the backend sent
// them (before the Date and framing fields the server writes).
func TestFieldOrder(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	heads := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
			head.WriteString(line)
		}
		heads <- head.String()
		c.Write([]byte("HTTP/1.1 200 OK\r\nZ-Last: 1\r\nContent-Type: text/plain\r\nA-First: 2\r\nSet-Cookie: b=2\r\nM-Mid: 3\r\nSet-Cookie: a=1\r\nContent-Length: 2\r\n\r\nok"))
	}()
	r := start(t, t.TempDir(), `<port>127.0.0.1:0</port><host><revproxy suburl="(.*)" dest="http://`+l.Addr().String()+`/\1" keephost="keephost"/></host>`)
	c, err := net.DialTimeout("tcp", r.addr(0), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("GET /x HTTP/1.1\r\nZebra: 1\r\nHost: h\r\nAccept: */*\r\nCookie: c=1\r\nmiddle-name: m\r\nCookie: d=2\r\nConnection: close\r\n\r\n"))
	answer, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	select {
	case got = <-heads:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend got no request")
	}
	want := "GET /x HTTP/1.1\r\nHost: h\r\nZebra: 1\r\nAccept: */*\r\nCookie: c=1\r\nMiddle-Name: m\r\nCookie: d=2\r\n" +
		"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Real-Ip: 127.0.0.1\r\n"
	if got != want {
		t.Errorf("backend received\n%q\nwant\n%q", got, want)
	}
	head, body, _ := strings.Cut(string(answer), "\r\n\r\n")
	var names []string
	for _, line := range strings.Split(head, "\r\n")[1:] {
		name, _, _ := strings.Cut(line, ":")
		names = append(names, name)
	}
	wantNames := "Z-Last Content-Type A-First Set-Cookie M-Mid Set-Cookie Content-Length Server Date Connection"
	if got := strings.Join(names, " "); got != wantNames || body != "ok" {
		t.Errorf("client received fields %s, body %q; want %s, \"ok\"", got, body, wantNames)
	}
}
