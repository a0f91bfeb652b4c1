package forward

import (
	"net/http"
	"strings"

	"github.com/ocsiproxy/ocsiproxy/internal/httpsyntax"
	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// Names of the forwarding fields the proxy writes itself.
const (
	HeaderXRealIP          = "X-Real-Ip"
	HeaderXForwardedHost   = "X-Forwarded-Host"
	headerTrueClientIP     = "True-Client-Ip"
	headerCFConnectingIP   = "Cf-Connecting-Ip"
	headerXClientIP        = "X-Client-Ip"
	headerXClusterClient   = "X-Cluster-Client-Ip"
	headerClientIP         = "Client-Ip"
	headerFastlyClientIP   = "Fastly-Client-Ip"
	headerXOriginalFwdFor  = "X-Original-Forwarded-For"
	headerXForwardedPort   = "X-Forwarded-Port"
	headerXForwardedServer = "X-Forwarded-Server"
	headerXForwardedPrefix = "X-Forwarded-Prefix"
	headerXForwardedScheme = "X-Forwarded-Scheme"
	headerXForwardedSsl    = "X-Forwarded-Ssl"
	headerXURLScheme       = "X-Url-Scheme"
	headerFrontEndHTTPS    = "Front-End-Https"
)

// fieldPolicy says what becomes of a forwarding field the client sent.
type fieldPolicy uint8

const (
	// replaced: never passed on; the proxy writes its own value
	// (X-Forwarded-For, X-Forwarded-Proto, X-Real-IP).
	replaced fieldPolicy = iota
	// trustedOnly: passed on only when <allow-forward-for/> accepted the
	// peer as a proxy, else removed (True-Client-IP, Forwarded, ...).
	trustedOnly
)

// forwardingFields are the fields that backends read as the client's
// address, host or scheme (SPEC.md section 7), by canonical name. Beyond
// SPEC's list, the port, server, path prefix and scheme fields that web
// frameworks build a request's own URL from (Spring's and Symfony's
// X-Forwarded-Port and X-Forwarded-Prefix, Rack's X-Forwarded-Scheme and
// X-Forwarded-Ssl, Microsoft's Front-End-Https...) follow the same trust:
// an untrusted client must not choose the links a backend writes.
var forwardingFields = []struct {
	name   string
	policy fieldPolicy
}{
	{HeaderXForwardedFor, replaced},
	{HeaderXForwardedProto, replaced},
	{HeaderXRealIP, replaced},
	{HeaderXForwardedHost, trustedOnly}, // else replaced by the client's Host
	{HeaderForwarded, trustedOnly},      // rebuilt instead with <forwarded/>
	{headerTrueClientIP, trustedOnly},
	{headerCFConnectingIP, trustedOnly},
	{headerXClientIP, trustedOnly},
	{headerXClusterClient, trustedOnly},
	{headerClientIP, trustedOnly},
	{headerFastlyClientIP, trustedOnly},
	{headerXOriginalFwdFor, trustedOnly},
	{headerXForwardedPort, trustedOnly},
	{headerXForwardedServer, trustedOnly},
	{headerXForwardedPrefix, trustedOnly},
	{headerXForwardedScheme, trustedOnly},
	{headerXForwardedSsl, trustedOnly},
	{headerXURLScheme, trustedOnly},
	{headerFrontEndHTTPS, trustedOnly},
}

// forwardingField reports whether k names a forwarding field in any
// spelling: any letter case, and "_" for "-" (CGI-style backends, RFC
// 3875 section 4.1.18, read "X_Real_IP" as X-Real-IP). It returns the
// field's canonical name and policy.
func forwardingField(k string) (canonical string, policy fieldPolicy, ok bool) {
	for _, f := range forwardingFields {
		if len(f.name) == len(k) && foldDash(k, f.name) {
			return f.name, f.policy, true
		}
	}
	return "", 0, false
}

// foldDash reports whether s equals the canonical name t under ASCII
// case folding, with "_" matching "-".
func foldDash(s, t string) bool { return foldEqual(s, t, true) }

// passForwarding reports whether the client's field k, a forwarding
// field with canonical name c and policy p, reaches the backend. Only
// the canonical spelling from a trusted peer does, and Forwarded not
// when the proxy writes its own.
func passForwarding(k, c string, p fieldPolicy, trusted, ownForwarded bool) bool {
	return p == trustedOnly && trusted && k == c && !(ownForwarded && c == HeaderForwarded)
}

// trustedPeer reports whether <allow-forward-for/> accepted the peer as a
// proxy: it established the client from the peer's X-Forwarded-For.
func trustedPeer(st *stage.State) bool { return len(st.Forwarded) > 0 }

// clientText returns the established client address as text: the
// left-most accepted X-Forwarded-For entry, or else the peer, whose text
// (peerText's) is peer.
func clientText(st *stage.State, peer string) string {
	if len(st.Forwarded) > 0 {
		return st.Forwarded[0]
	}
	if st.Client.IsValid() && st.Client.Unmap() != st.Peer.Unmap() {
		return st.Client.Unmap().String()
	}
	return peer
}

// forwardedValue returns the RFC 7239 Forwarded field the proxy sends
// with <forwarded/>: an element "for=ADDR" per accepted X-Forwarded-For
// entry, then the element of this hop, "for=PEER;proto=SCHEME" with
// ";host=HOST" when the client sent a Host. IPv6 addresses are quoted in
// brackets ("[2001:db8::7]"), as section 6 of the RFC requires.
func forwardedValue(st *stage.State, peer string) string {
	var b strings.Builder
	for _, e := range st.Forwarded {
		b.WriteString("for=")
		writeNode(&b, e)
		b.WriteString(", ")
	}
	b.WriteString("for=")
	writeNode(&b, peer)
	b.WriteString(";proto=")
	b.WriteString(st.Scheme())
	if host := st.Host; host != "" && quotable(host) {
		b.WriteString(";host=")
		if httpsyntax.IsToken(host) {
			b.WriteString(host)
		} else {
			writeQuoted(&b, host)
		}
	}
	return b.String()
}

// writeNode writes an address as a Forwarded node: IPv4 as is, IPv6
// quoted in brackets.
func writeNode(b *strings.Builder, addr string) {
	if strings.IndexByte(addr, ':') < 0 {
		b.WriteString(addr)
		return
	}
	b.WriteString(`"[`)
	b.WriteString(addr)
	b.WriteString(`]"`)
}

// quotable reports whether s can be written as an RFC 9110
// quoted-string: no control characters but tab.
func quotable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// writeQuoted writes s as a quoted-string, escaping '"' and '\'.
func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

// ForwardingHeaders returns the forwarding fields of h (X-Forwarded-*,
// X-Real-IP, Forwarded and the other client-address fields), for
// --dry-run to show what a backend receives.
func ForwardingHeaders(h http.Header) http.Header {
	var out http.Header
	for k, vv := range h {
		if _, _, ok := forwardingField(k); ok {
			if out == nil {
				out = make(http.Header)
			}
			out[k] = vv
		}
	}
	return out
}

// ParseConfig reads the <forwarded/> child of the revproxy <extension>
// elements of cfg: with it, every backend request carries an RFC 7239
// Forwarded field (see [stage.Env.Forwarded]). Problems go into errs
// with their positions.
//
//	<extension findlib-package="ocsigenserver.ext.revproxy">
//	  <forwarded/>
//	</extension>
func ParseConfig(cfg *xmlconf.Config, errs *xmlconf.ErrorList) (forwarded bool) {
	var first *xmlconf.Element
	for _, ext := range cfg.Extensions {
		if short, _ := ext.ShortName(); ext.Element == nil || short != "revproxy" {
			continue
		}
		for _, e := range ext.Element.Children {
			if e.Name != "forwarded" {
				continue
			}
			switch {
			case first != nil:
				errs.Add(e.Pos, "<forwarded>: only one is allowed (the first is at %s)", first.Pos)
			case !e.CheckAttrs(errs, nil, nil):
			case len(e.Children) > 0 || strings.TrimSpace(e.Text) != "":
				errs.Add(e.Pos, "<forwarded>: want an empty element")
			default:
				forwarded = true
			}
			if first == nil {
				first = e
			}
		}
	}
	return forwarded
}
