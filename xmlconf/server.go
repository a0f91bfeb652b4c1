package xmlconf

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
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
	read, known := serverOptions[e.Name]
	if !known {
		l.errs.Add(e.Pos, "unknown element <%s> in <server>", e.Name)
		return
	}
	read(l, e)
}

// ServerOptions returns the names of the <server> children the loader
// reads, sorted: every option of Ocsigen 5.0.1, and <host>. Each is
// either honoured (a field of [Config] that ocsiproxy acts on) or
// reported in [Config.Notes] with the reason it has no effect.
func ServerOptions() []string {
	names := make([]string, 0, len(serverOptions))
	for n := range serverOptions {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// serverOptions maps each child of <server> to its reader.
var serverOptions = map[string]func(l *loader, e *Element){
	"port": (*loader).port,
	"ssl":  (*loader).sslElem,
	"logdir": func(l *loader, e *Element) {
		if l.str(e, &l.cfg.LogDir) {
			l.cfg.LogDirPos = e.Pos
		}
	},
	"syslog": func(l *loader, e *Element) {
		if s, ok := l.text(e); ok {
			s = strings.ToLower(s)
			if _, known := FacilityCode(s); s != "" && !known {
				l.errs.Add(e.Pos, "<syslog>: unknown facility %q", s)
				return
			}
			l.cfg.Syslog, l.cfg.SyslogFacility, l.cfg.SyslogPos = true, s, e.Pos
		}
	},
	"datadir": func(l *loader, e *Element) {
		if l.str(e, &l.cfg.DataDir) {
			l.note(e, "no effect: ocsiproxy keeps no data files")
		}
	},
	"user":  (*loader).userGroup,
	"group": (*loader).userGroup,
	"charset": func(l *loader, e *Element) {
		if l.str(e, &l.cfg.Charset) {
			l.note(e, reasonStaticOnly)
		}
	},
	"findlib": func(l *loader, e *Element) {
		if e.CheckAttrs(&l.errs, []string{"path"}, nil) && l.empty(e) {
			l.note(e, "no effect: no OCaml modules are loaded")
		}
	},
	"extension": (*loader).extension,
	"require":   (*loader).extension,
	"library":   (*loader).extension,
	"commandpipe": func(l *loader, e *Element) {
		if l.str(e, &l.cfg.CommandPipe) {
			l.cfg.CommandPipePos = e.Pos
		}
	},
	"mimefile": func(l *loader, e *Element) {
		if l.str(e, &l.cfg.MimeFile) {
			l.note(e, reasonStaticOnly)
		}
	},
	"uploaddir": func(l *loader, e *Element) {
		if l.str(e, &l.cfg.UploadDir) {
			l.note(e, reasonNoUploads)
		}
	},
	"maxconnected":  func(l *loader, e *Element) { l.integer(e, &l.cfg.MaxConnected) },
	"timeout":       func(l *loader, e *Element) { l.seconds(e, &l.cfg.Timeout) },
	"clienttimeout": func(l *loader, e *Element) { l.seconds(e, &l.cfg.Timeout) },
	"servertimeout": func(l *loader, e *Element) {
		if l.seconds(e, &l.cfg.ServerTimeout) {
			l.note(e, "no effect: <timeout> bounds backend calls")
		}
	},
	"keepalivetimeout": func(l *loader, e *Element) { l.seconds(e, &l.cfg.KeepAliveTimeout) },
	"shutdowntimeout": func(l *loader, e *Element) {
		if s, ok := l.text(e); ok && s == "notimeout" {
			l.cfg.ShutdownTimeout = -1
		} else if ok {
			l.seconds(e, &l.cfg.ShutdownTimeout)
		}
	},
	"netbuffersize": func(l *loader, e *Element) { l.size(e, &l.cfg.NetBufferSize, false) },
	"filebuffersize": func(l *loader, e *Element) {
		if l.size(e, &l.cfg.FileBufferSize, false) {
			l.note(e, reasonNoFiles)
		}
	},
	"maxrequestbodysize": func(l *loader, e *Element) { l.size(e, &l.cfg.MaxRequestBodySize, true) },
	"maxuploadfilesize": func(l *loader, e *Element) {
		if l.size(e, &l.cfg.MaxUploadFileSize, true) {
			l.note(e, reasonNoUploads)
		}
	},
	"maxretries": func(l *loader, e *Element) { l.integer(e, &l.cfg.MaxRetries) },
	"minthreads": func(l *loader, e *Element) {
		if l.integer(e, &l.cfg.MinThreads) {
			l.note(e, reasonNoThreads)
		}
	},
	"maxthreads": func(l *loader, e *Element) {
		if l.integer(e, &l.cfg.MaxThreads) {
			l.note(e, reasonNoThreads)
		}
	},
	"maxdetachedcomputationsqueued": func(l *loader, e *Element) {
		if l.integer(e, &l.cfg.MaxDetached) {
			l.cfg.MaxDetachedPos = e.Pos
			l.note(e, reasonNoThreads)
		}
	},
	"debugmode":          func(l *loader, e *Element) { l.flag(e, &l.cfg.DebugMode) },
	"usedefaulthostname": func(l *loader, e *Element) { l.flag(e, &l.cfg.UseDefaultHostname) },
	"respectpipeline": func(l *loader, e *Element) {
		if l.flag(e, &l.cfg.RespectPipeline) {
			l.note(e, "no effect: pipelined requests are always answered in order")
		}
	},
	"disablepartialrequests": func(l *loader, e *Element) {
		if l.flag(e, &l.cfg.DisablePartialRequests) {
			l.note(e, reasonStaticOnly)
		}
	},
	"host": (*loader).host,
}

// <extconf> is added at init: its reader reads <server> elements again,
// which would make the table refer to itself.
func init() { serverOptions["extconf"] = (*loader).extconfDir }

// userGroup reads <user> or <group>, each allowed once.
func (l *loader) userGroup(e *Element) {
	c := l.cfg
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
