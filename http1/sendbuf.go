package http1

import (
	"io"
	"net"
)

// sendBuf is a connection's write buffer: the methods of bufio.Writer the
// server uses, with one difference. A write larger than the space left
// while bytes are buffered (an answer's head, then its body in one piece)
// goes out with them in one system call (writev), where bufio.Writer
// would first fill the buffer from it, write that, then write the rest: a
// 64 KiB answer costs one write instead of two, and no copy. Errors are
// sticky, as bufio.Writer's.
type sendBuf struct {
	buf []byte // the bytes buffered; its capacity is the buffer's size
	w   vectorWriter
	err error
	vec net.Buffers // reused by Write
}

// vectorWriter is what a sendBuf writes to: connWriter.
type vectorWriter interface {
	io.Writer
	buffersWriter
}

// buffersWriter is implemented by connWriter, and by the server's
// connection wrapper that would otherwise hide the TCP connection's
// writev from net.Buffers.
type buffersWriter interface {
	// WriteBuffers writes the buffers of v in order, in as few system
	// calls as it can, consuming v.
	WriteBuffers(v *net.Buffers) (int64, error)
}

func newSendBuf(size int) *sendBuf { return &sendBuf{buf: make([]byte, 0, size)} }

// Reset discards what is buffered and any error, and writes to w from now.
func (b *sendBuf) Reset(w vectorWriter) { b.buf, b.w, b.err = b.buf[:0], w, nil }

// Buffered returns the number of bytes buffered.
func (b *sendBuf) Buffered() int { return len(b.buf) }

// Available returns the space left in the buffer.
func (b *sendBuf) Available() int { return cap(b.buf) - len(b.buf) }

// AvailableBuffer returns an empty slice with the space left as its
// capacity, to append to and pass to an immediately following Write.
func (b *sendBuf) AvailableBuffer() []byte { return b.buf[len(b.buf):len(b.buf)] }

// Flush writes what is buffered.
func (b *sendBuf) Flush() error {
	if b.err != nil {
		return b.err
	}
	if len(b.buf) == 0 {
		return nil
	}
	n, err := b.w.Write(b.buf)
	if n < len(b.buf) && err == nil {
		err = io.ErrShortWrite
	}
	if err != nil {
		b.buf = b.buf[:copy(b.buf, b.buf[n:])]
		b.err = err
		return err
	}
	b.buf = b.buf[:0]
	return nil
}

// Write buffers p when it fits, and otherwise writes what is buffered
// and p together.
func (b *sendBuf) Write(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) <= b.Available() {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	if len(b.buf) == 0 {
		n, err := b.w.Write(p)
		if n < len(p) && err == nil {
			err = io.ErrShortWrite
		}
		b.err = err
		return n, err
	}
	head := len(b.buf)
	b.vec = append(b.vec[:0], b.buf, p)
	v := b.vec
	n, err := b.w.WriteBuffers(&v)
	clear(b.vec) // hold no reference to p
	if err == nil && n < int64(head+len(p)) {
		err = io.ErrShortWrite
	}
	if err != nil {
		b.err = err
		if n < int64(head) {
			b.buf = b.buf[:copy(b.buf, b.buf[n:])]
			return 0, err
		}
		b.buf = b.buf[:0]
		return int(n) - head, err
	}
	b.buf = b.buf[:0]
	return len(p), nil
}

// WriteString is Write for a string: buffered as it fits, the buffer
// written each time it is full.
func (b *sendBuf) WriteString(s string) (int, error) {
	written := 0
	for len(s) > b.Available() && b.err == nil {
		n := copy(b.buf[len(b.buf):cap(b.buf)], s)
		b.buf = b.buf[:len(b.buf)+n]
		written += n
		s = s[n:]
		b.Flush()
	}
	if b.err != nil {
		return written, b.err
	}
	b.buf = append(b.buf, s...)
	return written + len(s), nil
}
