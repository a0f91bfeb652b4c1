package adversarial

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// resp is one final response a client read, with the interim (1xx)
// responses before it.
type resp struct {
	Status  int
	Proto   string
	Header  http.Header
	Body    []byte
	BodyErr error // the body could not be read whole (truncated, aborted)
	Interim []int
	Method  string // of the request it answers
}

func (r *resp) String() string {
	if r == nil {
		return "no response"
	}
	s := fmt.Sprintf("%d", r.Status)
	if t := r.Header.Get("X-Echo-Token"); t != "" {
		s += " token " + t
	}
	if r.BodyErr != nil {
		s += fmt.Sprintf(" (body: %v)", r.BodyErr)
	}
	return s
}

// exchange is what a client connection got back.
type exchange struct {
	Resps  []*resp
	Extra  []*resp // responses beyond the requests sent
	Raw    []byte  // every byte received
	Closed bool    // the proxy closed the connection
	Err    error   // the error that ended reading, if not a clean close
}

func (e *exchange) first() *resp {
	if len(e.Resps) == 0 {
		return nil
	}
	return e.Resps[0]
}

// status of the first response, 0 for none.
func (e *exchange) status() int {
	if r := e.first(); r != nil {
		return r.Status
	}
	return 0
}

func (e *exchange) String() string {
	var parts []string
	for _, r := range e.Resps {
		parts = append(parts, r.String())
	}
	for _, r := range e.Extra {
		parts = append(parts, "extra "+r.String())
	}
	s := "[" + strings.Join(parts, ", ") + "]"
	if e.Closed {
		s += " closed"
	}
	if e.Err != nil {
		s += fmt.Sprintf(" err=%v", e.Err)
	}
	return s
}

// rawRecorder keeps a copy of what a connection reads.
type rawRecorder struct {
	r   io.Reader
	mu  sync.Mutex
	buf bytes.Buffer
}

func (rr *rawRecorder) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	rr.mu.Lock()
	rr.buf.Write(p[:n])
	rr.mu.Unlock()
	return n, err
}

func (rr *rawRecorder) bytes() []byte {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return append([]byte(nil), rr.buf.Bytes()...)
}

// client is one raw connection to the proxy.
type client struct {
	c   net.Conn
	rec *rawRecorder
	br  *bufio.Reader
	ex  exchange
}

func dial(addr string) (*client, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	rec := &rawRecorder{r: c}
	return &client{c: c, rec: rec, br: bufio.NewReaderSize(rec, 64<<10)}, nil
}

func (cl *client) close() { cl.c.Close() }

// send writes s whole (in the background, so that a proxy answering
// before reading everything cannot deadlock the test).
func (cl *client) send(s string) {
	go func() {
		cl.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(cl.c, s)
	}()
}

// sendSync writes s and returns the write error.
func (cl *client) sendSync(s string) error {
	cl.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := io.WriteString(cl.c, s)
	return err
}

// read reads the final responses to the requests whose methods are
// given, within wait; then, unless the connection is closed, it looks
// for more bytes for probe (responses nobody asked for).
func (cl *client) read(methods []string, wait, probe time.Duration) *exchange {
	ex := &cl.ex
	deadline := time.Now().Add(wait)
	cl.c.SetReadDeadline(deadline)
	for _, m := range methods {
		r, err := readOne(cl.br, m)
		if err != nil {
			cl.ended(err)
			break
		}
		ex.Resps = append(ex.Resps, r)
		if r.BodyErr != nil {
			cl.ended(r.BodyErr)
			break
		}
	}
	if !ex.Closed && ex.Err == nil && probe > 0 {
		cl.c.SetReadDeadline(time.Now().Add(probe))
		for {
			if _, err := cl.br.Peek(1); err != nil {
				cl.ended(err)
				break
			}
			cl.c.SetReadDeadline(time.Now().Add(2 * time.Second))
			r, err := readOne(cl.br, "GET")
			if err != nil {
				cl.ended(err)
				break
			}
			ex.Extra = append(ex.Extra, r)
			cl.c.SetReadDeadline(time.Now().Add(probe))
		}
	}
	ex.Raw = cl.rec.bytes()
	return ex
}

// ended records why reading stopped: a clean close, or another error (a
// timeout on an idle connection is neither).
func (cl *client) ended(err error) {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), isReset(err):
		cl.ex.Closed = true
		if !errors.Is(err, io.EOF) {
			cl.ex.Err = err
		}
	default:
		cl.ex.Err = err
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// readOne reads a final response (skipping 1xx) to a request of method m.
func readOne(br *bufio.Reader, m string) (*resp, error) {
	var interim []int
	for {
		hr, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			return nil, err
		}
		if hr.StatusCode >= 100 && hr.StatusCode < 200 && hr.StatusCode != http.StatusSwitchingProtocols {
			interim = append(interim, hr.StatusCode)
			if len(interim) > 5000 {
				return nil, errors.New("too many interim responses")
			}
			continue
		}
		r := &resp{Status: hr.StatusCode, Proto: hr.Proto, Header: hr.Header, Interim: interim, Method: m}
		if hr.StatusCode != http.StatusSwitchingProtocols {
			r.Body, r.BodyErr = io.ReadAll(hr.Body)
			if r.BodyErr == nil && hr.ContentLength < 0 && len(hr.TransferEncoding) == 0 && m != "HEAD" && bodyAllowed(hr.StatusCode) {
				// Delimited by the close: nothing tells a truncated body
				// from a whole one.
				r.BodyErr = errCloseDelimited
			}
		}
		hr.Body.Close()
		return r, nil
	}
}

var errCloseDelimited = errors.New("body delimited by the connection's close")

func bodyAllowed(status int) bool {
	return status >= 200 && status != 204 && status != 304
}

// exchangeOn sends raw on a fresh connection and reads the responses to
// methods (one per request head the client sent).
func exchangeOn(addr, raw string, methods []string, wait, probe time.Duration) (*exchange, error) {
	cl, err := dial(addr)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	cl.send(raw)
	return cl.read(methods, wait, probe), nil
}
