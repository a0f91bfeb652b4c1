// Package http1 is the wire of plain-HTTP ports: an HTTP/1.x server that
// serves any http.Handler. It owns the connection loop (one goroutine
// per active connection, idle connections parked on the poller with no
// buffers), the request parser, the answer writer with its framing and
// trailers, the framing tracker that refuses ambiguous requests
// (framing.go), the bounds of a connection (head, idle and send
// timeouts, head size) and the sweeper that watches for clients that
// went away (watchsweep.go). It also bounds the sends of net/http's TLS
// servers (sendtimeout.go). It knows nothing of rules: the handler
// finds the framing verdict on the ResponseWriter ((its FramingError method)).
package http1
