package difftest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// requestTimeout bounds one request to a server under test, from dial to the
// end of the response body.
const requestTimeout = 4 * time.Second

// tunnelWait is how long the client reads after a 101 answer.
const tunnelWait = 500 * time.Millisecond

// clientIP is the loopback address the harness connects from, so that the
// peer address (127.0.0.2) differs from the servers' listening address
// (127.0.0.1). It falls back to the default when the bind fails.
const clientIP = "127.0.0.2"

// response is what the client read back.
type response struct {
	// Err is set when no complete response came back ("closed", "timeout", ...).
	Err string
	// Interim holds the status lines of 1xx responses read before the final one.
	Interim []string
	Proto   string
	Status  int
	Reason  string
	Fields  []field
	Body    []byte
	Framing framing
	// Slow is the duration of a round trip that took over 2 s (else 0).
	Slow time.Duration
}

// dialFrom dials addr from clientIP when possible.
func dialFrom(addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		var se *net.OpError
		if errors.As(err, &se) && se.Op == "dial" && strings.Contains(err.Error(), "bind") {
			return net.DialTimeout("tcp", addr, timeout)
		}
	}
	return c, err
}

// roundTrip writes raw to addr and reads one response. isHead suppresses the
// body of the response. The connection is closed afterwards.
func roundTrip(addr string, raw []byte, isHead bool) *response {
	deadline := time.Now().Add(requestTimeout)
	c, err := dialFrom(addr, requestTimeout)
	if err != nil {
		return &response{Err: "dial: " + err.Error()}
	}
	defer c.Close()
	_ = c.SetDeadline(deadline)
	if _, err := c.Write(raw); err != nil {
		return &response{Err: "write: " + err.Error()}
	}
	br := bufio.NewReader(c)
	r := &response{}
	for {
		start, fields, err := readHead(br)
		if err != nil {
			r.Err = describeReadErr(err)
			return r
		}
		proto, rest, _ := strings.Cut(start, " ")
		code, reason, _ := strings.Cut(rest, " ")
		status, err := strconv.Atoi(code)
		if err != nil || !strings.HasPrefix(proto, "HTTP/") {
			r.Err = fmt.Sprintf("malformed status line %q", start)
			return r
		}
		if status >= 100 && status < 200 && status != 101 {
			r.Interim = append(r.Interim, start)
			continue
		}
		r.Proto, r.Status, r.Reason, r.Fields = proto, status, reason, fields
		break
	}
	if isHead || r.Status == 204 || r.Status == 304 {
		r.Framing = framingNone
		return r
	}
	if r.Status == 101 {
		// The connection now speaks the new protocol: read what arrives
		// within a moment as the "body".
		r.Framing = framingTunnel
		_ = c.SetReadDeadline(time.Now().Add(tunnelWait))
		b, _ := io.ReadAll(io.LimitReader(br, maxBodyBytes))
		r.Body = b
		return r
	}
	body, fr, _, err := readBody(br, r.Fields, true)
	r.Body, r.Framing = body, fr
	if err != nil {
		r.Err = "body: " + describeReadErr(err)
	}
	return r
}

func describeReadErr(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case err.Error() == "EOF":
		return "closed without response"
	case strings.Contains(err.Error(), "connection reset"):
		return "connection reset"
	}
	return err.Error()
}
