package accesslog

import (
	"fmt"
	"io"
	"log"
	"log/syslog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
)

// Verbosity levels, as set by -s, -v, -vv (--veryverbose) and -vvv
// (--debug). Each level writes what the one below writes, and more:
//   - Silent: nothing on stdout or stderr; the logs are written as at
//     Normal.
//   - Normal: access lines, warnings (a client's mistake, a reload's
//     caveat) and errors.
//   - Verbose: "info:" lines about the server's life: the listening
//     addresses, the options accepted with no effect, reloads, logs
//     reopened, shutdown, <maxconnected> reached.
//   - VeryVerbose: a "debug:" line per request saying what the
//     configuration decided: the host, the site and the instruction that
//     answered, and the backend URL of a proxied request.
//   - Debug: also every decision of the request, as --dry-run prints it,
//     and the backend pool's connection events.
const (
	Silent = iota - 1
	Normal
	Verbose
	VeryVerbose
	Debug
)

// Logs are the three logs of Ocsigen: access.log (one line per request),
// errors.log and warnings.log, in <logdir>; without a logdir, access
// lines go to stdout and errors and warnings to stderr. With <syslog>
// every line goes to syslog instead (see [OpenSyslog]). The lines of -v,
// -vv and -vvv go where warnings go.
type Logs struct {
	access_ *batchWriter // nil with syslog
	errors  *log.Logger
	warns   *log.Logger
	infos   *log.Logger // the lines of -v: warns, or syslog at info
	debugs  *log.Logger // the lines of -vv and -vvv: warns, or syslog at debug
	sys     *syslogSink // nil unless <syslog>
	dir     string
	level   int
	// reqs numbers the requests in the lines of -vv and -vvv.
	reqs atomic.Uint64

	mu    sync.Mutex
	files []*os.File
}

// OpenLogs opens the logs in dir ("" for stdout and stderr) at the given
// verbosity. In silent mode nothing is written to stdout or stderr.
func OpenLogs(dir string, level int, stdout, stderr io.Writer) (*Logs, error) {
	l := &Logs{level: level, dir: dir}
	if level <= Silent {
		stdout, stderr = io.Discard, io.Discard
	}
	out := func(name string, def io.Writer) (io.Writer, error) {
		if dir == "" {
			return def, nil
		}
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("server: opening log: %w", err)
		}
		l.files = append(l.files, f)
		return f, nil
	}
	a, err := out("access.log", stdout)
	if err != nil {
		l.Close()
		return nil, err
	}
	e, err := out("errors.log", stderr)
	if err != nil {
		l.Close()
		return nil, err
	}
	w, err := out("warnings.log", stderr)
	if err != nil {
		l.Close()
		return nil, err
	}
	l.access_ = newBatchWriter(a)
	l.errors = log.New(e, "", log.LstdFlags)
	l.warns = log.New(w, "", log.LstdFlags)
	l.infos, l.debugs = l.warns, l.warns
	return l, nil
}

// Close writes out the access lines still buffered and closes the log
// files (or the syslog connection).
func (l *Logs) Close() error {
	if l.access_ != nil {
		l.access_.close()
	}
	if l.sys != nil {
		l.sys.close()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var first error
	for _, f := range l.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	l.files = nil
	return first
}

// Reopen reopens the log files of the log directory, for logrotate (the
// "reopen_logs" command). Lines written meanwhile go to the old or the new
// file, never nowhere. Without a log directory (or with syslog) it does
// nothing.
func (l *Logs) Reopen() error {
	if l.dir == "" {
		return nil
	}
	var opened []*os.File
	for _, name := range []string{"access.log", "errors.log", "warnings.log"} {
		f, err := os.OpenFile(filepath.Join(l.dir, name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			for _, o := range opened {
				o.Close()
			}
			return fmt.Errorf("server: reopening logs: %w", err)
		}
		opened = append(opened, f)
	}
	l.access_.setOutput(opened[0])
	l.errors.SetOutput(opened[1])
	l.warns.SetOutput(opened[2])
	l.mu.Lock()
	old := l.files
	l.files = opened
	l.mu.Unlock()
	for _, f := range old {
		f.Close()
	}
	return nil
}

// stdLogger returns a logger writing to the error log, for net/http's own
// messages (TLS handshake errors and the like).
func (l *Logs) StdLogger() *log.Logger {
	return log.New(logWriter{l}, "", 0)
}

type logWriter struct{ l *Logs }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Warnf("%s", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// Enabled reports whether the lines of the given verbosity (Verbose,
// VeryVerbose, Debug) are written. A caller building a costly line checks
// it first, so that nothing is formatted or allocated when they are not.
func (l *Logs) Enabled(level int) bool { return l.level >= level }

// Errorf writes a line to the error log.
func (l *Logs) Errorf(format string, args ...any) {
	l.errors.Printf("error: "+format, args...)
}

// Warnf writes a line to the warnings log.
func (l *Logs) Warnf(format string, args ...any) {
	l.warns.Printf("warning: "+format, args...)
}

// Infof writes an "info:" line to the warnings log when running verbose
// (-v) or more.
func (l *Logs) Infof(format string, args ...any) {
	if l.level >= Verbose {
		l.infos.Printf("info: "+format, args...)
	}
}

// Debugf writes a "debug:" line to the warnings log when running at
// level or more (VeryVerbose or Debug).
func (l *Logs) Debugf(level int, format string, args ...any) {
	if l.level >= level {
		l.debugs.Printf("debug: "+format, args...)
	}
}

// access writes the request's line in the Combined Log Format followed by
// the answering rule's position and the duration in milliseconds:
//
//	peer - - [21/Nov/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 12 "referer" "agent" rule=f.conf:12 ms=1.234
//
// The request line, referer and agent are quoted as Go quotes strings, so
// that no client can forge a line.
func (l *Logs) access(st *stage.State, status int, n int64, d time.Duration) {
	r := st.In
	bp := lineBufs.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, peerOf(r)...)
	b = append(b, " - - ["...)
	var end time.Time
	if !st.Start.IsZero() {
		end = st.Start.Add(d) // the clock is not read again
	} else {
		end = time.Now()
	}
	b = appendLogTime(b, end)
	b = append(b, "] "...)
	b = appendQuoted(b, r.Method, " ", r.Target, " ", r.Proto)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, n, 10)
	b = append(b, ' ')
	fields := st.Fields()
	referer, agent := fields.Get("Referer"), fields.Get("User-Agent")
	b = appendQuoted(b, orDash(referer))
	b = append(b, ' ')
	b = appendQuoted(b, orDash(agent))
	b = append(b, " rule="...)
	if st.AnswerPos.File != "" {
		b = append(b, st.AnswerPos.File...)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(st.AnswerPos.Line), 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, " ms="...)
	b = appendMillis(b, d)
	b = append(b, '\n')
	if l.sys != nil {
		l.sys.send(syslog.LOG_INFO, b)
	} else {
		l.access_.Write(b)
	}
	*bp = b
	lineBufs.Put(bp)
}

// appendQuoted appends the concatenation of parts quoted as
// strconv.AppendQuote quotes it, without building the concatenation when
// no byte needs an escape (printable ASCII other than '"' and '\\'), the
// common case.
func appendQuoted(b []byte, parts ...string) []byte {
	for _, p := range parts {
		for _, c := range []byte(p) {
			if !unquoted[c] {
				return strconv.AppendQuote(b, strings.Join(parts, ""))
			}
		}
	}
	b = append(b, '"')
	for _, p := range parts {
		b = append(b, p...)
	}
	return append(b, '"')
}

// unquoted marks the bytes strconv.AppendQuote writes as they are:
// printable ASCII but '"' and '\\'.
var unquoted = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// logClock caches the formatted time of the current second.
var logClock struct {
	sync.Mutex
	sec  int64
	text string
}

func appendLogTime(b []byte, now time.Time) []byte {
	logClock.Lock()
	if s := now.Unix(); s != logClock.sec {
		logClock.sec, logClock.text = s, now.Format("02/Jan/2006:15:04:05 -0700")
	}
	b = append(b, logClock.text...)
	logClock.Unlock()
	return b
}

// appendMillis appends d in milliseconds with three decimals ("1.234"),
// as strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', 3, 64)
// would, with integer arithmetic rather than float formatting. A negative
// d is written as 0.000.
func appendMillis(b []byte, d time.Duration) []byte {
	us := max(d.Microseconds(), 0)
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return strings.ToValidUTF8(s, "?")
}

// batchWriter is the access log's writer. It has two ways of writing a
// line, and chooses by what the last batch held.
//
// Batched: lines are appended to a buffer that a goroutine of its own
// writes out. Under load one write (one system call) carries the lines of
// many requests, and no request waits for the disk. Woken by a line, that
// goroutine first yields to the goroutines ready to run (the other
// requests of the scheduler's turn), so that their lines join the write:
// without the yield it ran next and wrote about one line per request
// (0.78 writes per request in the small benchmark, about none with it,
// and 9% less CPU per request).
//
// Direct: when the goroutine's last directAfter writes carried a single
// line each (one request at a time), waking it gathers nothing and costs
// two trips through the scheduler per request. A line is then written by
// the goroutine that made it, as it comes, as nginx writes its log,
// provided nothing is buffered and no write is in progress. Every
// probeEvery-th line goes the batched way again, so that a load that has
// grown is seen within that many lines: that batch holds the lines of the
// turn, and writing goes back to batches. Under load a batch of one line
// comes now and then (the goroutine found nobody ready), and each switch
// to direct writing costs up to probeEvery writes where one would do:
// hence several in a row (with one: 0.07 more writes per request in the
// small benchmark, and 3% more system calls).
//
// Either way a line goes out within microseconds when the server is idle,
// and lines leave in the order they were written. Past 1 MiB waiting (a
// stalled disk), writers wait for the buffer to be written.
type batchWriter struct {
	mu      sync.Mutex // guards buf, lines, out, closed, singles, directs, batches
	buf     []byte
	lines   int // writes in buf
	out     io.Writer
	closed  bool
	singles int           // the goroutine's last writes in a row that carried one line
	directs int           // lines written directly since its last write
	batches int           // writes the goroutine made
	kick    chan struct{} // a write is pending
	done    chan struct{} // the goroutine has ended

	wmu   sync.Mutex // held while writing to out
	spare []byte     // the buffer not in use, under wmu
}

// directAfter is how many writes of the goroutine in a row must carry a
// single line before lines are written directly; probeEvery is how many
// lines in a row are then written directly before one goes the batched
// way, to see whether the load has grown.
const (
	directAfter = 4
	probeEvery  = 16
)

func newBatchWriter(out io.Writer) *batchWriter {
	b := &batchWriter{out: out, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go b.loop()
	return b
}

// Write writes p, one or more whole lines: directly, or appended to the
// buffer.
func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		// After Close: straight out, as an unbuffered log would.
		out := b.out
		b.mu.Unlock()
		b.wmu.Lock()
		defer b.wmu.Unlock()
		return out.Write(p)
	}
	if b.singles >= directAfter && len(b.buf) == 0 && b.directs < probeEvery && b.wmu.TryLock() {
		// Nothing is waiting or being written, and lines come one at a
		// time: write it here. Lines written after the unlock below are
		// buffered, or wait for wmu, so they follow this one.
		b.directs++
		out := b.out
		b.mu.Unlock()
		out.Write(p)
		b.wmu.Unlock()
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	b.lines++
	full := len(b.buf) > 1<<20
	if !full {
		// Under mu, so that close cannot close kick meanwhile.
		select {
		case b.kick <- struct{}{}:
		default: // already pending
		}
	}
	b.mu.Unlock()
	if full {
		b.flush()
	}
	return len(p), nil
}

func (b *batchWriter) loop() {
	defer close(b.done)
	for range b.kick {
		runtime.Gosched() // let the lines of ready goroutines join
		lines := b.flush()
		if lines > 0 {
			b.mu.Lock()
			if lines == 1 {
				b.singles++
			} else {
				b.singles = 0
			}
			b.directs = 0
			b.batches++
			b.mu.Unlock()
		}
	}
}

// flush writes out what is buffered and returns how many writes it held.
func (b *batchWriter) flush() int {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	buf, out, lines := b.buf, b.out, b.lines
	b.buf, b.lines = b.spare[:0], 0
	b.mu.Unlock()
	if len(buf) > 0 {
		out.Write(buf)
	}
	if cap(buf) > 64<<10 {
		buf = nil // do not keep a burst's buffer for ever
	}
	b.spare = buf
	return lines
}

// setOutput writes out what is buffered to the old output, then switches
// to out. No write to the old output is in progress when it returns.
func (b *batchWriter) setOutput(out io.Writer) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	buf, old := b.buf, b.out
	b.buf, b.lines = b.spare[:0], 0
	b.spare = nil
	b.out = out
	b.mu.Unlock()
	if len(buf) > 0 {
		old.Write(buf)
	}
}

// close writes out what is buffered and ends the goroutine; later lines
// are written directly.
func (b *batchWriter) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	close(b.kick)
	<-b.done
	b.flush()
}

// peerOf returns the address part of r.RemoteAddr.
func peerOf(r *wire.Inbound) string {
	a := r.RemoteAddr
	if i := strings.LastIndexByte(a, ':'); i > 0 {
		a = a[:i]
	}
	a = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
	return strings.TrimPrefix(a, "::ffff:")
}
