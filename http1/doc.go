// Package http1 is the HTTP/1.x wire of plain and HTTPS ports: a server of
// an [InboundHandler] (requests parsed into wire.Inbound, no http.Request
// made) or of any http.Handler, over TCP or TLS (tls.go: the handshake, HTTP/2 handed to
// net/http), with its connection loop, parser, answer writer and trailers,
// the framing tracker that refuses ambiguous requests (framing.go), the
// bounds of a connection (head, idle and send timeouts, head size; the send
// bound beneath TLS: sendtimeout.go), the client-gone sweeper
// (watchsweep.go) and the hot wait for a busy client's next request
// (hotwait.go). It knows nothing of rules: a handler finds the framing
// verdict on the ResponseWriter (its FramingError method).
package http1
