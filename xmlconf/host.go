package xmlconf

import (
	"os"
	"regexp"
	"strings"
)

// hostAttrs are the attributes of <host>.
var hostAttrs = []string{"hostfilter", "defaulthostname", "defaulthttpport", "defaulthttpsport", "defaultprotocol", "charset"}

// reHostname is Ocsigen's correct_hostname check ("loose efforts", RFC 921
// and 952).
var reHostname = regexp.MustCompile(`^[a-zA-Z0-9]+((\.|-)[a-zA-Z0-9]+)*$`)

// host reads a <host> element. Its children are kept uninterpreted.
func (l *loader) host(e *Element) {
	e.CheckAttrs(&l.errs, nil, hostAttrs)
	h := &Host{
		Filter:           "*",
		DefaultHTTPPort:  DefaultHTTPPort,
		DefaultHTTPSPort: DefaultHTTPSPort,
		Body:             e.Children,
		Pos:              e.Pos,
	}
	if e.Text != "" {
		l.errs.Add(e.Pos, "<host>: unexpected text %s", quoteText(e.Text))
	}
	var portSet [2]bool
	for _, a := range e.Attrs {
		switch a.Name {
		case "hostfilter":
			// The server package parses and checks the filter.
			h.Filter = a.Value
		case "defaulthostname":
			if !reHostname.MatchString(a.Value) {
				l.errs.Add(e.Pos, "<host>: defaulthostname %q is not a valid host name", a.Value)
			}
			h.DefaultHostname = a.Value
		case "defaulthttpport", "defaulthttpsport":
			n, err := parseInt(a.Value)
			if err != nil || n < 0 || n > 65535 {
				l.errs.Add(e.Pos, "<host>: %s %q is not a port number", a.Name, a.Value)
				continue
			}
			if a.Name == "defaulthttpport" {
				h.DefaultHTTPPort, portSet[0] = int(n), true
			} else {
				h.DefaultHTTPSPort, portSet[1] = int(n), true
			}
		case "defaultprotocol":
			h.DefaultProtocol = a.Value
			h.DefaultHTTPS = strings.EqualFold(a.Value, "https")
			if !h.DefaultHTTPS && !strings.EqualFold(a.Value, "http") {
				l.warn(e.Pos, "<host>: defaultprotocol %q is neither http nor https; http is assumed", a.Value)
			}
		case "charset":
			h.Charset, h.HasCharset = a.Value, true
			l.note(e, "charset= "+reasonStaticOnly)
		}
	}
	if h.DefaultHostname == "" {
		h.DefaultHostname = hostnameFromFilter(h.Filter)
	}
	l.hostPorts[h] = portSet
	l.cfg.Hosts = append(l.cfg.Hosts, h)
}

// hostnameFromFilter returns the default host name of a <host> without
// defaulthostname: as in Ocsigen 5.0.1 (get_defaulthostname), the first
// name of its hostfilter that has no wildcard and no port other than 80,
// else this machine's name. Where Ocsigen refuses the file because that
// name is not a valid host name ("my_site"), the name is skipped.
func hostnameFromFilter(filter string) string {
	for _, f := range strings.Fields(filter) {
		name, port, hasPort := strings.Cut(f, ":")
		if hasPort && port != "*" {
			if n, err := parseInt(port); err != nil || n != 80 {
				continue
			}
		}
		if !strings.Contains(name, "*") && reHostname.MatchString(name) {
			return name
		}
	}
	return machineHostname()
}

// machineHostname returns this machine's name, Ocsigen's last resort for
// a host's default name, or "localhost".
func machineHostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// hostDefaults fills the default ports of the hosts that do not set them:
// as in Ocsigen 5.0.1 (Ocsigen_config.get_default_port), the port of the
// last HTTP <port> of the main file, else 80, and the port of the last
// HTTPS <port>, else 443.
func (l *loader) hostDefaults() {
	httpPort, httpsPort := DefaultHTTPPort, DefaultHTTPSPort
	for _, p := range l.cfg.Ports {
		if p.HTTPS {
			httpsPort = p.Port
		} else {
			httpPort = p.Port
		}
	}
	for _, h := range l.cfg.Hosts {
		set := l.hostPorts[h]
		if !set[0] {
			h.DefaultHTTPPort = httpPort
		}
		if !set[1] {
			h.DefaultHTTPSPort = httpsPort
		}
	}
}
