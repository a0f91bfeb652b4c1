package accesslog

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"log/syslog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// SyslogTag is the tag of every syslog message.
const SyslogTag = "ocsiproxy"

// defaultFacility is the facility of a <syslog/> without text.
const defaultFacility = "daemon"

// SyslogQueueLen bounds the lines waiting to be sent to syslog; a line
// that finds the queue full is dropped (and counted).
const SyslogQueueLen = 4096

// syslogCloseWait bounds how long Close waits for the queued lines to be
// sent to a syslog that does not read them.
const syslogCloseWait = 2 * time.Second

// OpenSyslog returns logs that send every line to syslog instead of the
// files of <logdir>, as Ocsigen does with <syslog>: tagged "ocsiproxy",
// with the facility of cfg's <syslog> (daemon when it names none), access
// lines at priority info, warnings at warning, errors at err, the lines of
// -v at info and those of -vv and -vvv at debug. Warnings and errors are
// also written to stderr (as Ocsigen writes them to its console) unless
// level is Silent.
//
// network and addr name the syslog socket as for [syslog.Dial]; both empty
// mean the system's (/dev/log, /var/run/syslog or /var/run/log). A syslog
// that cannot be reached is an error with the position of <syslog>.
//
// Lines are sent by a goroutine of their own, so that a syslog that is
// slow, full or gone never holds a request up: a line that finds 4096
// others waiting is dropped, and a warning sent later says how many were.
// A failure to send is reported on stderr, once until sending works again.
func OpenSyslog(cfg *xmlconf.Config, network, addr string, level int, stderr io.Writer) (*Logs, error) {
	name := cfg.SyslogFacility
	if name == "" {
		name = defaultFacility
	}
	code, ok := xmlconf.FacilityCode(name)
	if !ok {
		return nil, fmt.Errorf("%s: <syslog>: unknown facility %q", cfg.SyslogPos, name)
	}
	w, err := syslog.Dial(network, addr, syslog.Priority(code<<3)|syslog.LOG_INFO, SyslogTag)
	if err != nil {
		where := addr
		if where == "" {
			where = "/dev/log, /var/run/syslog or /var/run/log"
		}
		return nil, fmt.Errorf("%s: <syslog>: cannot reach syslog at %s: %w", cfg.SyslogPos, where, err)
	}
	if level <= Silent {
		stderr = io.Discard
	}
	s := &syslogSink{w: w, stderr: stderr, queue: make(chan syslogLine, SyslogQueueLen),
		quit: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	l := &Logs{level: level, sys: s}
	l.errors = log.New(io.MultiWriter(syslogWriter{s, syslog.LOG_ERR}, stderr), "", 0)
	l.warns = log.New(io.MultiWriter(syslogWriter{s, syslog.LOG_WARNING}, stderr), "", 0)
	l.infos = log.New(syslogWriter{s, syslog.LOG_INFO}, "", 0)
	l.debugs = log.New(syslogWriter{s, syslog.LOG_DEBUG}, "", 0)
	return l, nil
}

// syslogLine is a line waiting to be sent, with its severity.
type syslogLine struct {
	sev  syslog.Priority
	text string
}

// syslogSink sends lines to syslog from a goroutine of its own.
type syslogSink struct {
	w       *syslog.Writer
	stderr  io.Writer
	queue   chan syslogLine // never closed: a late send is dropped, not a panic
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
	dropped atomic.Uint64
}

// send queues p, one line (a final newline is dropped), at severity sev.
// It never waits: when the queue is full the line is dropped.
func (s *syslogSink) send(sev syslog.Priority, p []byte) {
	select {
	case s.queue <- syslogLine{sev, string(bytes.TrimSuffix(p, []byte("\n")))}:
	default:
		s.dropped.Add(1)
	}
}

// loop sends the queued lines to syslog until the sink is closed.
func (s *syslogSink) loop() {
	defer close(s.done)
	failing := false
	for {
		select {
		case m := <-s.queue:
			s.write(m, &failing)
		case <-s.quit:
			for {
				select {
				case m := <-s.queue:
					s.write(m, &failing)
				default:
					return
				}
			}
		}
	}
}

// write sends m, after a warning about the lines dropped since the last
// one sent, if any.
func (s *syslogSink) write(m syslogLine, failing *bool) {
	if n := s.dropped.Swap(0); n > 0 {
		s.writeOne(syslogLine{syslog.LOG_WARNING, fmt.Sprintf("warning: syslog: %d lines dropped: too many waiting to be sent", n)}, failing)
	}
	s.writeOne(m, failing)
}

// writeOne sends one line at its severity, reporting the first failure
// of a run of them on stderr.
func (s *syslogSink) writeOne(m syslogLine, failing *bool) {
	var err error
	switch m.sev {
	case syslog.LOG_ERR:
		err = s.w.Err(m.text)
	case syslog.LOG_WARNING:
		err = s.w.Warning(m.text)
	case syslog.LOG_DEBUG:
		err = s.w.Debug(m.text)
	default:
		err = s.w.Info(m.text)
	}
	if err != nil {
		if !*failing {
			fmt.Fprintf(s.stderr, "ocsiproxy: syslog: %v (lines are lost until syslog answers again)\n", err)
		}
		*failing = true
		return
	}
	*failing = false
}

// close sends the lines waiting, for up to syslogCloseWait, and closes
// the connection.
func (s *syslogSink) close() {
	s.once.Do(func() {
		close(s.quit)
		select {
		case <-s.done:
			s.w.Close()
		case <-time.After(syslogCloseWait):
			// Stuck in a send to a syslog that reads nothing: the
			// goroutine keeps the connection; nothing else waits for it.
		}
	})
}

// syslogWriter is the output of a log.Logger sending to syslog.
type syslogWriter struct {
	s   *syslogSink
	sev syslog.Priority
}

func (w syslogWriter) Write(p []byte) (int, error) {
	w.s.send(w.sev, p)
	return len(p), nil
}
