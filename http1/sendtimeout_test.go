package http1

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// TestSendTimeoutConn: a write without progress fails after the timeout;
// an explicit deadline is kept until cleared; a tunnel lifts the bound.
func TestSendTimeoutConn(t *testing.T) {
	writeErr := func(c net.Conn) chan error {
		done := make(chan error, 1)
		go func() {
			_, err := c.Write(make([]byte, 1<<10))
			done <- err
		}()
		return done
	}

	// Nobody reads the other end of the pipe.
	a, b := net.Pipe()
	defer b.Close()
	sc := &SendTimeoutConn{Conn: a, timeout: 50 * time.Millisecond}
	select {
	case err := <-writeErr(sc):
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("write ended with %v, want a deadline error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("write without a reader still blocked 10 s after a 50 ms send timeout")
	}

	// An explicit deadline in the past wins over the send timeout.
	sc.SetWriteDeadline(time.Unix(1, 0))
	if _, err := sc.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("write after an explicit past deadline: %v, want a deadline error", err)
	}
	sc.SetWriteDeadline(time.Time{}) // cleared: the send timeout is back
	if err := <-writeErr(sc); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("write after the deadline was cleared: %v, want the send timeout", err)
	}
	a.Close()

	// A tunnel over TLS: Unbound is reached through the TLS conn.
	a, b = net.Pipe()
	defer b.Close()
	sc = &SendTimeoutConn{Conn: a, timeout: 50 * time.Millisecond}
	tls.Server(sc, &tls.Config{}).NetConn().(interface{ Unbound() }).Unbound()
	done := writeErr(sc)
	select {
	case err := <-done:
		t.Errorf("tunnel write ended (%v): its bound was not lifted", err)
	case <-time.After(300 * time.Millisecond):
	}
	a.Close()
	<-done
}
