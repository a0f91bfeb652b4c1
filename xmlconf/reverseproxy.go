package xmlconf

import (
	"fmt"
	"net/url"
	"strings"
)

// ReverseProxyFile is the file name in the positions of the
// configuration [ReverseProxy] builds.
const ReverseProxyFile = "--reverse-proxy"

// ReverseProxy returns the configuration of the one-command mode
// "ocsiproxy --reverse-proxy URL [--port PORT]", built in memory with no
// file: every request is forwarded to URL, as by
//
//	<ocsigen><server>
//	  <port>PORT</port>
//	  <extension findlib-package="ocsigenserver.ext.revproxy"/>
//	  <host><revproxy suburl="(.*)" dest="URL/\1"/></host>
//	</server></ocsigen>
//
// and every other option has its default: no <logdir> (access lines go
// to stdout), no <allow-forward-for/> (the backend's X-Forwarded-For is
// the peer's address). URL is http:// or https://, a host, an optional
// port and path (a trailing slash is dropped), with no query, fragment,
// user or backslash. port is what <port> takes ("8080",
// "127.0.0.1:8080", "[::1]:8080"). Problems are reported as
// "--reverse-proxy:1:1: message".
func ReverseProxy(target, port string) (*Config, error) {
	pos := Pos{File: ReverseProxyFile, Line: 1, Col: 1}
	l := newLoader(ReverseProxyFile, osFS{})
	dest, err := reverseProxyDest(target)
	if err != nil {
		l.errs.Add(pos, "%v", err)
		return nil, l.errs.Err()
	}
	el := func(name, text string, attrs ...Attr) *Element {
		return &Element{Name: name, Text: text, Attrs: attrs, Pos: pos}
	}
	host := el("host", "")
	host.Children = []*Element{el("revproxy", "", Attr{"suburl", "(.*)"}, Attr{"dest", dest})}
	server := el("server", "")
	server.Children = []*Element{
		el("port", port),
		el("extension", "", Attr{"findlib-package", "ocsigenserver.ext.revproxy"}),
		host,
	}
	l.server(server, false)
	l.hostDefaults()
	if err := l.errs.Err(); err != nil {
		return nil, err
	}
	return l.cfg, nil
}

// reverseProxyDest checks the URL of --reverse-proxy and returns the
// dest template "URL/\1".
func reverseProxyDest(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("--reverse-proxy %q: %v", target, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("--reverse-proxy %q: want http://host[:port][/path] or https://...", target)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(target, "\\#?") {
		return "", fmt.Errorf("--reverse-proxy %q: want no user, query, fragment or backslash", target)
	}
	return strings.TrimSuffix(target, "/") + `/\1`, nil
}
