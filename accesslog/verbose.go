package accesslog

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ocsiproxy/ocsiproxy/forward"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/wire"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// The lines of -vv and -vvv carry the request's number, "#12", so that
// the lines of requests served at the same time can be told apart.

// decision writes, at VeryVerbose, what the configuration decided for
// request number id: the host and site, the instruction that answered and
// its outcome (the backend URL of a proxied request), or the error:
//
//	debug: #3 127.0.0.1 "GET /app/x": host "*" site /app/ rule f.conf:9: proxy GET http://b:8080/x Host: b:8080
//
// The caller checks the level first.
func (l *Logs) decision(id uint64, r *wire.Inbound, st *stage.State, err error) {
	var b strings.Builder
	b.WriteByte('#')
	b.WriteString(strconv.FormatUint(id, 10))
	b.WriteByte(' ')
	b.WriteString(peerOf(r))
	b.WriteByte(' ')
	b.WriteString(strconv.Quote(r.Method + " " + r.Target))
	if st != nil && st.HostFilter != "" {
		b.WriteByte(':')
		fmt.Fprintf(&b, " host %q", st.HostFilter)
		if err == nil && st.Answer != nil {
			if st.AnswerSite != "" {
				b.WriteString(" site ")
				b.WriteString(st.AnswerSite)
			}
			if st.AnswerPos.File != "" {
				b.WriteString(" rule ")
				b.WriteString(st.AnswerPos.Short())
			}
		}
	}
	b.WriteString(": ")
	switch a := answerOf(st); {
	case err != nil:
		fmt.Fprintf(&b, "%d (%v)", stage.StatusOf(err), err)
	case a == nil:
		fmt.Fprintf(&b, "%d, no instruction answered", st.Status)
	case st.AnswerRequest != nil && st.AnswerRequest.Backend != "":
		out := st.AnswerRequest
		fmt.Fprintf(&b, "proxy %s %s://%s%s Host: %s", out.Method, out.Scheme, out.Backend, out.Target, out.Host)
	case a.StatusCode/100 == 3 && a.Header.Get("Location") != "":
		fmt.Fprintf(&b, "redirect %d Location: %q", a.StatusCode, a.Header.Get("Location"))
	default:
		fmt.Fprintf(&b, "answer %d", a.StatusCode)
	}
	l.debugs.Printf("debug: %s", b.String())
}

func answerOf(st *stage.State) *wire.Response {
	if st == nil {
		return nil
	}
	return st.Answer
}

// tracer returns the stage.State.Trace of request number id at Debug:
// each decision, as --dry-run prints it, becomes a line
//
//	debug: #3 f.conf:7: site /app/: entered, sub-path "x"
func (l *Logs) tracer(id uint64) func(pos xmlconf.Pos, msg string) {
	return func(pos xmlconf.Pos, msg string) {
		if pos.File != "" {
			l.debugs.Printf("debug: #%d %s: %s", id, pos.Short(), msg)
		} else {
			l.debugs.Printf("debug: #%d %s", id, msg)
		}
	}
}

// Begin numbers a request and, at -vvv, traces its stages; at -vv and
// above it returns the function that writes the request's decision line.
// Below -vv it does nothing (the handler's [Observer]).
func (l *Logs) Begin(st *stage.State) func(error) {
	if l.level < VeryVerbose {
		return nil
	}
	id := l.reqs.Add(1)
	if l.level >= Debug {
		st.Trace = l.tracer(id)
	}
	return func(err error) { l.decision(id, st.In, st, err) }
}

// Done writes the access line of a request and, for an error status, its
// cause: in errors.log for a 5xx, in warnings.log for a client's mistake
// (400, 413...), nothing for a client that went away (the handler's
// [Observer]).
func (l *Logs) Done(st *stage.State, status int, n int64, d time.Duration, err error) {
	l.access(st, status, n, d)
	r := st.In
	switch {
	case err == nil || status == forward.StatusClientClosed:
	case status >= 500:
		l.Errorf("%s %s %q: %d: %v", peerOf(r), r.Method, r.Target, status, err)
	default:
		l.Warnf("%s %s %q: %d: %v", peerOf(r), r.Method, r.Target, status, err)
	}
}
