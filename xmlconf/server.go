package xmlconf

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// Reasons given for options accepted with no effect.
const (
	reasonStaticOnly  = "affects only the files <static> (staticmod) serves"
	reasonNoFiles     = "no effect: files are sent by Go's http.ServeContent"
	reasonNoThreads   = "no effect: Go schedules goroutines; there is no thread pool"
	reasonNoUploads   = "no effect: request bodies are streamed to the backend, not parsed"
	reasonExtconfOnly = "ignored in an <extconf> file: Ocsigen reads it from the main file only"
)

// extconfIgnored lists the <server> options that Ocsigen 5.0.1 reads only
// in the main file (its first pass) and skips in <extconf> files.
var extconfIgnored = map[string]bool{
	"port": true, "logdir": true, "syslog": true, "ssl": true,
	"user": true, "group": true, "minthreads": true, "maxthreads": true,
}

// server reads the children of a <server> element, in document order.
// inExtconf is set for the <server> of an <extconf> file.
func (l *loader) server(server *Element, inExtconf bool) {
	if server.Text != "" {
		l.errs.Add(server.Pos, "<server>: unexpected text %s", quoteText(server.Text))
	}
	for _, e := range server.Children {
		if inExtconf && extconfIgnored[e.Name] {
			// Ocsigen skips <port> whatever its attributes, and the
			// others only without attributes.
			if e.Name == "port" || e.CheckAttrs(&l.errs, nil, nil) {
				l.note(e, reasonExtconfOnly)
			}
			continue
		}
		l.option(e)
	}
}

// option reads one child of <server>.
func (l *loader) option(e *Element) {
	c := l.cfg
	switch e.Name {
	case "port":
		l.port(e)
	case "ssl":
		l.sslElem(e)
	case "logdir":
		if l.str(e, &c.LogDir) {
			c.LogDirPos = e.Pos
		}
	case "syslog":
		if s, ok := l.text(e); ok {
			s = strings.ToLower(s)
			if _, known := FacilityCode(s); s != "" && !known {
				l.errs.Add(e.Pos, "<syslog>: unknown facility %q", s)
				return
			}
			c.Syslog, c.SyslogFacility, c.SyslogPos = true, s, e.Pos
		}
	case "datadir":
		if l.str(e, &c.DataDir) {
			l.note(e, "no effect: ocsiproxy keeps no data files")
		}
	case "user", "group":
		seen, dst, pos := &l.user, &c.User, &c.UserPos
		if e.Name == "group" {
			seen, dst, pos = &l.group, &c.Group, &c.GroupPos
		}
		if *seen {
			l.errs.Add(e.Pos, "<%s>: only one <%s> is allowed", e.Name, e.Name)
			return
		}
		*seen = true
		if l.str(e, dst) {
			*pos = e.Pos
		}
	case "charset":
		if l.str(e, &c.Charset) {
			l.note(e, reasonStaticOnly)
		}
	case "findlib":
		if e.CheckAttrs(&l.errs, []string{"path"}, nil) && l.empty(e) {
			l.note(e, "no effect: no OCaml modules are loaded")
		}
	case "extension", "require", "library":
		l.extension(e)
	case "extconf":
		l.extconfDir(e)
	case "commandpipe":
		if l.str(e, &c.CommandPipe) {
			c.CommandPipePos = e.Pos
		}
	case "mimefile":
		if l.str(e, &c.MimeFile) {
			l.note(e, reasonStaticOnly)
		}
	case "uploaddir":
		if l.str(e, &c.UploadDir) {
			l.note(e, reasonNoUploads)
		}
	case "maxconnected":
		l.integer(e, &c.MaxConnected)
	case "timeout", "clienttimeout":
		l.seconds(e, &c.Timeout)
	case "servertimeout":
		if l.seconds(e, &c.ServerTimeout) {
			l.note(e, "no effect: <timeout> bounds backend calls")
		}
	case "keepalivetimeout":
		l.seconds(e, &c.KeepAliveTimeout)
	case "shutdowntimeout":
		if s, ok := l.text(e); ok && s == "notimeout" {
			c.ShutdownTimeout = -1
		} else if ok {
			l.seconds(e, &c.ShutdownTimeout)
		}
	case "netbuffersize":
		l.size(e, &c.NetBufferSize, false)
	case "filebuffersize":
		if l.size(e, &c.FileBufferSize, false) {
			l.note(e, reasonNoFiles)
		}
	case "maxrequestbodysize":
		l.size(e, &c.MaxRequestBodySize, true)
	case "maxuploadfilesize":
		if l.size(e, &c.MaxUploadFileSize, true) {
			l.note(e, reasonNoUploads)
		}
	case "maxretries":
		l.integer(e, &c.MaxRetries)
	case "minthreads":
		if l.integer(e, &c.MinThreads) {
			l.note(e, reasonNoThreads)
		}
	case "maxthreads":
		if l.integer(e, &c.MaxThreads) {
			l.note(e, reasonNoThreads)
		}
	case "maxdetachedcomputationsqueued":
		if l.integer(e, &c.MaxDetached) {
			l.note(e, reasonNoThreads)
		}
	case "debugmode":
		l.flag(e, &c.DebugMode)
	case "usedefaulthostname":
		l.flag(e, &c.UseDefaultHostname)
	case "respectpipeline":
		if l.flag(e, &c.RespectPipeline) {
			l.note(e, "no effect: pipelined requests are always answered in order")
		}
	case "disablepartialrequests":
		if l.flag(e, &c.DisablePartialRequests) {
			l.note(e, reasonStaticOnly)
		}
	case "host":
		l.host(e)
	default:
		l.errs.Add(e.Pos, "unknown element <%s> in <server>", e.Name)
	}
}

// syslogFacilities are the facility names Ocsigen's <syslog> accepts,
// with the codes its logger (Lwt_log.facility_code) sends.
var syslogFacilities = map[string]int{
	"kernel": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
	"lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"ntp": 12, "security": 13, "console": 14,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// FacilityCode returns the syslog facility code (RFC 5424 section 6.2.1)
// of a facility name that <syslog> accepts, written in lower case, as
// Ocsigen sends it: "daemon" is 3, "local0" 16. ok is false for any other
// name.
func FacilityCode(name string) (code int, ok bool) {
	code, ok = syslogFacilities[name]
	return code, ok
}

// empty reports, into l.errs, text or child elements in e, which must have
// neither.
func (l *loader) empty(e *Element) bool {
	ok := true
	if e.Text != "" {
		l.errs.Add(e.Pos, "<%s>: unexpected text %s", e.Name, quoteText(e.Text))
		ok = false
	}
	for _, c := range e.Children {
		l.errs.Add(c.Pos, "<%s>: unexpected element <%s>", e.Name, c.Name)
		ok = false
	}
	return ok
}

// text returns the text of an option that takes no child element and no
// attribute but those allowed.
func (l *loader) text(e *Element, allowed ...string) (string, bool) {
	ok := e.CheckAttrs(&l.errs, nil, allowed)
	for _, c := range e.Children {
		l.errs.Add(c.Pos, "<%s>: unexpected element <%s>; want text", e.Name, c.Name)
		ok = false
	}
	return e.Text, ok
}

// str stores the text of e in dst.
func (l *loader) str(e *Element, dst *string) bool {
	s, ok := l.text(e)
	if ok {
		*dst = s
	}
	return ok
}

// flag sets *dst for an empty element such as <debugmode/>.
func (l *loader) flag(e *Element, dst *bool) bool {
	ok := e.CheckAttrs(&l.errs, nil, nil)
	if ok = l.empty(e) && ok; ok {
		*dst = true
	}
	return ok
}

// integer stores a non-negative integer (OCaml syntax) in dst.
func (l *loader) integer(e *Element, dst *int) bool {
	s, ok := l.text(e)
	if !ok {
		return false
	}
	n, err := parseInt(s)
	switch {
	case err != nil:
		l.errs.Add(e.Pos, "<%s>: %q is not an integer", e.Name, s)
		return false
	case n < 0:
		l.errs.Add(e.Pos, "<%s>: %q is negative", e.Name, s)
		return false
	case n > 1<<31-1:
		l.errs.Add(e.Pos, "<%s>: %q is too large", e.Name, s)
		return false
	}
	*dst = int(n)
	return true
}

// seconds stores a duration given in seconds in dst.
func (l *loader) seconds(e *Element, dst *time.Duration) bool {
	s, ok := l.text(e)
	if !ok {
		return false
	}
	d, err := parseSeconds(s)
	if err != nil {
		l.errs.Add(e.Pos, "<%s>: %q: %v", e.Name, s, err)
		return false
	}
	*dst = d
	return true
}

// size stores a size in dst; infinity says whether "infinity" is allowed.
func (l *loader) size(e *Element, dst *Size, infinity bool) bool {
	s, ok := l.text(e)
	if !ok {
		return false
	}
	n, err := ParseSize(s)
	if err != nil {
		l.errs.Add(e.Pos, "<%s>: %q: %v", e.Name, s, err)
		return false
	}
	if n == Infinite && !infinity {
		l.errs.Add(e.Pos, "<%s>: %q: a size in bytes is needed", e.Name, s)
		return false
	}
	*dst = n
	return true
}

// port reads a <port> element.
func (l *loader) port(e *Element) {
	s, ok := l.text(e, "protocol")
	if !ok {
		return
	}
	p := Port{Pos: e.Pos}
	if proto, ok := e.Attr("protocol"); ok {
		switch strings.ToUpper(proto) {
		case "HTTP":
		case "HTTPS":
			p.HTTPS = true
		default:
			l.errs.Add(e.Pos, "<port>: protocol %q; want HTTP or HTTPS", proto)
			return
		}
	}
	addr, port, err := ParsePort(s)
	if err != nil {
		l.errs.Add(e.Pos, "<port>: %v", err)
		return
	}
	p.Addr, p.Port = addr, port
	l.cfg.Ports = append(l.cfg.Ports, p)
}

// Forms of <port>, from Ocsigen 5.0.1's parse_port.
var (
	reAllIPv6    = regexp.MustCompile(`^\[::\]:([0-9]+)$`)
	reAllIPv4    = regexp.MustCompile(`^\*:([0-9]+)$`)
	reSingleIPv6 = regexp.MustCompile(`^\[([0-9A-Fa-f.:]+)\]:([0-9]+)$`)
	reSingleIPv4 = regexp.MustCompile(`^([0-9.]+):([0-9]+)$`)
)

// ParsePort reads the text of a <port> element, in the forms Ocsigen
// 5.0.1 accepts: "80" and "*:80" (every address), "[::]:80" (every IPv6
// address), "127.0.0.1:80", "[2001:db8::1]:80". It returns the address
// for net.Listen (":80" for every address) and the port number, which
// must be between 0 and 65535. Host names are not accepted, as in
// Ocsigen.
func ParsePort(s string) (addr string, port int, err error) {
	s = strings.TrimSpace(s)
	var host, num string
	if m := reAllIPv6.FindStringSubmatch(s); m != nil {
		host, num = "[::]", m[1]
	} else if m := reAllIPv4.FindStringSubmatch(s); m != nil {
		num = m[1]
	} else if m := reSingleIPv6.FindStringSubmatch(s); m != nil {
		a, err := netip.ParseAddr(m[1])
		if err != nil || !a.Is6() {
			return "", 0, fmt.Errorf("bad IPv6 address %q", m[1])
		}
		host, num = "["+a.String()+"]", m[2]
	} else if m := reSingleIPv4.FindStringSubmatch(s); m != nil {
		a, err := netip.ParseAddr(m[1])
		if err != nil || !a.Is4() {
			return "", 0, fmt.Errorf("bad IPv4 address %q", m[1])
		}
		host, num = a.String(), m[2]
	} else {
		num = s
	}
	n, err := parseInt(num)
	if err != nil {
		return "", 0, fmt.Errorf("bad port %q; want PORT, ADDRESS:PORT, *:PORT or [IPV6]:PORT", s)
	}
	if n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("port %s out of range", num)
	}
	return fmt.Sprintf("%s:%d", host, n), int(n), nil
}

// sslElem reads the <ssl> element.
func (l *loader) sslElem(e *Element) {
	if !e.CheckAttrs(&l.errs, nil, nil) {
		return
	}
	if l.ssl {
		l.errs.Add(e.Pos, "<ssl>: only one <ssl> is allowed")
		return
	}
	l.ssl = true
	ssl := &SSL{Pos: e.Pos}
	if e.Text != "" {
		l.errs.Add(e.Pos, "<ssl>: unexpected text %s", quoteText(e.Text))
	}
	seen := map[string]bool{}
	for _, c := range e.Children {
		var dst *string
		switch c.Name {
		case "certificate":
			dst = &ssl.Certificate
		case "privatekey":
			dst = &ssl.PrivateKey
		case "ciphers":
			dst = &ssl.Ciphers
		case "dhfile":
			dst = &ssl.DHFile
		case "curve":
			dst = &ssl.Curve
		default:
			l.errs.Add(c.Pos, "unknown element <%s> in <ssl>", c.Name)
			continue
		}
		if seen[c.Name] {
			l.errs.Add(c.Pos, "<ssl>: only one <%s> is allowed", c.Name)
			continue
		}
		seen[c.Name] = true
		if l.str(c, dst) && sslNoEffect[c.Name] != "" {
			l.note(c, sslNoEffect[c.Name])
		}
	}
	l.cfg.SSL = ssl
}

// sslNoEffect gives the reason for the <ssl> settings ocsiproxy does not
// apply; certificate and privatekey are used for the HTTPS ports.
var sslNoEffect = map[string]string{
	"ciphers": "no effect: Go's TLS chooses the cipher suites",
	"curve":   "no effect: Go's TLS chooses the elliptic curves",
	"dhfile":  "no effect: Go's TLS does not use finite-field Diffie-Hellman",
}

// extension reads an <extension>, <require> or <library> element. Of
// its attributes, exactly one names the extension (findlib-package=,
// module= or name=); any other is an option of that extension, left in
// Element.Attrs for the extension to check (the engine reports those it
// does not take).
func (l *loader) extension(e *Element) {
	var named []Attr
	for _, a := range e.Attrs {
		switch a.Name {
		case "findlib-package", "module", "name":
			named = append(named, a)
		}
	}
	switch len(named) {
	case 0:
		l.errs.Add(e.Pos, "<%s>: missing attribute \"findlib-package\" or \"module\"", e.Name)
		return
	case 1:
	default:
		l.errs.Add(e.Pos, "<%s>: only one of \"findlib-package\", \"module\" and \"name\" is allowed", e.Name)
		return
	}
	a := named[0]
	l.cfg.Extensions = append(l.cfg.Extensions, Extension{Name: a.Value, Attr: a.Name, Element: e, Pos: e.Pos})
}
