package http1

import (
	"errors"
	"net"
	"strings"
	"testing"
)

// recordingWriter is a vectorWriter that keeps what it is given and
// counts the calls (each one a system call on a connection).
type recordingWriter struct {
	strings.Builder
	calls   int
	failAt  int // fail once this many bytes were written (0: never)
	written int
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.calls++
	if w.failAt > 0 && w.written+len(p) > w.failAt {
		n := w.failAt - w.written
		w.Builder.Write(p[:n])
		w.written += n
		return n, errors.New("connection reset")
	}
	w.written += len(p)
	return w.Builder.Write(p)
}

func (w *recordingWriter) WriteBuffers(v *net.Buffers) (int64, error) {
	calls := w.calls
	var n int64
	for _, b := range *v {
		m, err := w.Write(b)
		n += int64(m)
		if err != nil {
			w.calls = calls + 1
			return n, err
		}
	}
	*v = nil
	w.calls = calls + 1
	return n, nil
}

func TestSendBuf(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n"
	big := strings.Repeat("b", 64<<10)
	tests := []struct {
		name      string
		write     func(b *sendBuf)
		want      string
		wantCalls int
	}{
		{"small writes wait for Flush", func(b *sendBuf) {
			b.WriteString(head)
			b.Write([]byte("body"))
			b.Flush()
		}, head + "body", 1},
		{"a large body goes out with the head in one call", func(b *sendBuf) {
			b.WriteString(head)
			b.Write([]byte(big))
			b.Flush() // nothing left
		}, head + big, 1},
		{"a large write on an empty buffer goes straight out", func(b *sendBuf) {
			b.Write([]byte(big))
		}, big, 1},
		{"a long string fills and flushes the buffer in turn", func(b *sendBuf) {
			b.WriteString("x")
			b.WriteString(strings.Repeat("s", 10000))
			b.Flush()
		}, "x" + strings.Repeat("s", 10000), 3},
		{"AvailableBuffer then Write", func(b *sendBuf) {
			p := append(b.AvailableBuffer(), "abc"...)
			b.Write(p)
			b.Flush()
		}, "abc", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w recordingWriter
			b := newSendBuf(4096)
			b.Reset(&w)
			tt.write(b)
			if w.String() != tt.want || w.calls != tt.wantCalls || b.Buffered() != 0 {
				t.Errorf("wrote %d bytes in %d calls (%d left), want %d in %d", w.Len(), w.calls, b.Buffered(), len(tt.want), tt.wantCalls)
			}
		})
	}
}

// TestSendBufErrors checks that a failed write reports how much of p
// went out, and that the error sticks, as bufio.Writer's.
func TestSendBufErrors(t *testing.T) {
	head := strings.Repeat("h", 100)
	body := strings.Repeat("b", 8000)
	for _, failAt := range []int{50, 100, 150, 8050} {
		w := recordingWriter{failAt: failAt}
		b := newSendBuf(4096)
		b.Reset(&w)
		b.WriteString(head)
		n, err := b.Write([]byte(body))
		if err == nil {
			t.Fatalf("failAt %d: no error", failAt)
		}
		if want := max(failAt-len(head), 0); n != want {
			t.Errorf("failAt %d: Write reported %d bytes of the body, want %d", failAt, n, want)
		}
		if _, err := b.Write([]byte("x")); err == nil || b.Flush() == nil {
			t.Errorf("failAt %d: the error did not stick", failAt)
		}
	}
}
