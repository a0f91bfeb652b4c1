// Package http1 is the HTTP/1.x wire of plain and HTTPS ports: an HTTP/1.x
// server that serves any http.Handler, over TCP or TLS (tls.go: the
// handshake of HTTPS ports, which hands HTTP/2 connections to net/http). It owns the connection loop (one goroutine
// per active connection, idle connections parked on the poller with no
// buffers), the request parser, the answer writer with its framing and
// trailers, the framing tracker that refuses ambiguous requests
// (framing.go), the bounds of a connection (head, idle and send
// timeouts, head size) and the sweeper that watches for clients that
// went away (watchsweep.go). It also bounds the sends beneath TLS
// (sendtimeout.go), for HTTP/2 connections served by net/http too. It knows nothing of rules: the handler
// finds the framing verdict on the ResponseWriter ((its FramingError method)).
package http1
