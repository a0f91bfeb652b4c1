package adversarial

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Upgrades and tunnels (RFC 9110 section 7.8, RFC 6455, RFC 9113), limits
// and slow or vanishing clients (RFC 9110 sections 15.5.9, 15.5.14, RFC
// 6585), and pipelining (RFC 9112 section 9.3.2).

func init() {
	register("upgrade",
		tcase{name: "h2c upgrade", rfc: "RFC 9113 3.1: h2c is not an upgrade a proxy passes on (Upgrade is hop-by-hop, RFC 9110 7.8)", run: func(c *ctx) {
			e := c.ex(get("GET", "/x", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"), "GET")
			if e.status() == 101 {
				c.fail("the client got 101: an h2c tunnel past the proxy")
			}
			for _, r := range c.reqs() {
				if up := r.first("Upgrade"); strings.Contains(strings.ToLower(up), "h2c") {
					c.fail("backend received Upgrade: %s", up)
				}
			}
		}},
		tcase{name: "h2c upgrade without Connection", rfc: "RFC 9110 7.8: Upgrade without Connection: upgrade is not an upgrade", run: func(c *ctx) {
			e := c.ex(get("GET", "/x", "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"), "GET")
			if e.status() == 101 {
				c.fail("the client got 101: an h2c tunnel past the proxy")
			}
		}},
		tcase{name: "WebSocket tunnelled", rfc: "RFC 6455 4, RFC 9110 7.8: a proxied upgrade is a tunnel", run: func(c *ctx) {
			raw, toks := c.fill(get("GET", "/ws", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"))
			cl, err := dial(c.p.addr)
			if err != nil {
				c.fail("%v", err)
				return
			}
			defer cl.close()
			cl.sendSync(raw)
			e := cl.read([]string{"GET"}, wait, 0)
			c.checkExchange(e, toks)
			if e.status() != 101 {
				c.fail("handshake got %s, want 101", e)
				return
			}
			cl.sendSync("ping")
			buf := make([]byte, 4)
			cl.c.SetReadDeadline(time.Now().Add(wait))
			if _, err := io.ReadFull(cl.br, buf); err != nil || string(buf) != "PING" {
				c.fail("through the tunnel: %q, %v; want PING", buf, err)
			}
		}},
		tcase{name: "refused upgrade, then a forbidden request", rfc: "RFC 9110 7.8: without 101 the connection stays HTTP, and every request is checked", run: func(c *ctx) {
			e := c.ex(get("GET", "/b/no-upgrade", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")+get("GET", "/admin", ""), "GET", "GET")
			for _, r := range c.reqs() {
				if strings.HasPrefix(r.Target, "/admin") {
					c.fail("/admin reached the backend through a connection the proxy took for a tunnel (%s)", e)
				}
			}
		}},
		tcase{name: "upgrade on a forbidden path", rfc: "access rules apply before any tunnel", run: func(c *ctx) {
			e := c.ex(get("GET", "/admin/ws", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"), "GET")
			c.refused(e)
			c.backendAtMost(0)
		}},
		tcase{name: "backend switches protocols unasked", rfc: "RFC 9110 15.2.2: a 101 answers only a request with Upgrade", run: func(c *ctx) {
			e := c.ex(get("GET", "/b/switching", ""), "GET")
			if e.status() == 101 {
				c.fail("a 101 nobody asked for reached the client")
			}
		}},
	)

	register("limits",
		tcase{name: "body over the limit by Content-Length", rfc: "RFC 9110 15.5.14: 413, before the body is forwarded", run: func(c *ctx) {
			e := c.ex(get("POST", "/x", fmt.Sprintf("Content-Length: %d\r\n", 2<<20))+strings.Repeat("x", 2<<20), "POST")
			c.status(e, 413)
			for _, r := range c.reqs() {
				if r.Complete {
					c.fail("the backend received the oversized request whole: %s", describe([]*breq{r}))
				}
			}
		}},
		tcase{name: "body over the limit chunked", rfc: "RFC 9110 15.5.14: 413 (or the connection closed); never forwarded whole", run: func(c *ctx) {
			var body strings.Builder
			for i := 0; i < 64; i++ {
				body.WriteString("8000\r\n" + strings.Repeat("y", 0x8000) + "\r\n")
			}
			body.WriteString("0\r\n\r\n")
			e := c.ex(get("POST", "/x", "Transfer-Encoding: chunked\r\n")+body.String(), "POST")
			if s := e.status(); s != 0 && s != 413 && s != 400 && s != 502 {
				c.fail("got %s, want 413 or a close", e)
			}
			for _, r := range c.reqs() {
				if r.Complete {
					c.fail("the backend received the oversized request whole: %s", describe([]*breq{r}))
				}
			}
		}},
		tcase{name: "body at the limit", rfc: "RFC 9110 8.6: a body within the limit is forwarded whole", run: func(c *ctx) {
			raw, toks := c.fill(get("POST", "/x", fmt.Sprintf("Content-Length: %d\r\n", 1<<20)) + strings.Repeat("z", 1<<20))
			e, _ := exchangeOn(c.p.addr, raw, []string{"POST"}, wait, probe)
			c.checkExchange(e, toks)
			c.status(e, 200)
			if rs := c.reqsWith(toks[0]); len(rs) != 1 || len(rs[0].Body) != 1<<20 {
				c.fail("backend got %s, want the 1 MiB body whole", describe(rs))
			}
		}},
		tcase{name: "slow head (slowloris)", slow: true, rfc: "RFC 9110 15.5.9: a server may close (408) a request not sent in time; others are still served", run: func(c *ctx) {
			cl, err := dial(c.p.addr)
			if err != nil {
				c.fail("%v", err)
				return
			}
			defer cl.close()
			raw, _ := c.fill(get("GET", "/slowloris", ""))
			// One byte every 100 ms: the head would take 5 s, over the 2 s
			// the proxies allow.
			done := make(chan bool, 1)
			go func() {
				for i := 0; i < len(raw); i++ {
					if cl.sendSync(raw[i:i+1]) != nil {
						done <- true
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
				done <- false
			}()
			time.Sleep(500 * time.Millisecond)
			c.alive() // served while the slow client trickles
			cut := <-done
			e := cl.read([]string{"GET"}, 3*time.Second, 0)
			if !cut && e.status() != 408 && !e.Closed {
				c.fail("a head trickled over 5 s was not cut: %s", e)
			}
			for _, r := range c.reqs() {
				if strings.Contains(r.Target, "slowloris") {
					c.fail("the trickled request reached the backend")
				}
			}
		}},
		tcase{name: "slow body that progresses", slow: true, rfc: "RFC 9112 6: a body that keeps coming is read", run: func(c *ctx) {
			cl, err := dial(c.p.addr)
			if err != nil {
				c.fail("%v", err)
				return
			}
			defer cl.close()
			raw, toks := c.fill(get("POST", "/x", "Content-Length: 10\r\n"))
			cl.sendSync(raw)
			for i := 0; i < 10; i++ {
				time.Sleep(150 * time.Millisecond)
				cl.sendSync("b")
			}
			e := cl.read([]string{"POST"}, wait, 0)
			c.checkExchange(e, toks)
			c.status(e, 200)
			if rs := c.reqsWith(toks[0]); len(rs) != 1 || string(rs[0].Body) != "bbbbbbbbbb" {
				c.fail("backend got %s, want the body whole", describe(rs))
			}
		}},
		tcase{name: "stalled body", slow: true, rfc: "RFC 9110 15.5.9: a body that stops coming is timed out (408 or close), never forwarded as complete", run: func(c *ctx) {
			cl, err := dial(c.p.addr)
			if err != nil {
				c.fail("%v", err)
				return
			}
			defer cl.close()
			raw, toks := c.fill(get("POST", "/x", "Content-Length: 100\r\n") + "0123456789")
			cl.sendSync(raw)
			e := cl.read([]string{"POST"}, 10*time.Second, 0)
			if !e.Closed && e.first() == nil {
				c.fail("a body stalled for 10 s still holds the connection and the backend request: %s", e)
			}
			for _, r := range c.reqsWith(toks[0]) {
				if r.Complete {
					c.fail("the backend received the stalled request as complete")
				}
			}
		}},
		tcase{name: "client vanishes mid-body", rfc: "RFC 9112 8: an incomplete request is not forwarded as complete", run: func(c *ctx) {
			cl, err := dial(c.p.addr)
			if err != nil {
				c.fail("%v", err)
				return
			}
			raw, toks := c.fill(get("POST", "/x", "Content-Length: 100\r\n") + "0123456789")
			cl.sendSync(raw)
			settle()
			cl.close()
			settle()
			for _, r := range c.reqsWith(toks[0]) {
				if r.Complete {
					c.fail("the backend received the cut request as complete")
				}
			}
		}},
		tcase{name: "client vanishes mid-response", rfc: "RFC 9112 9.6: the proxy drops the exchange and serves on", run: func(c *ctx) {
			for i := 0; i < 3; i++ {
				cl, err := dial(c.p.addr)
				if err != nil {
					c.fail("%v", err)
					return
				}
				raw, _ := c.fill(get("GET", "/b/big?size=8388608", ""))
				cl.sendSync(raw)
				buf := make([]byte, 64<<10)
				cl.c.SetReadDeadline(time.Now().Add(wait))
				io.ReadFull(cl.br, buf)
				cl.close()
			}
			// The next one gets its own, whole answer.
			raw, toks := c.fill(get("GET", "/b/big?size=1048576", ""))
			e, _ := exchangeOn(c.p.addr, raw, []string{"GET"}, wait, probe)
			c.checkExchange(e, toks)
			if r := e.first(); r == nil || r.Status != 200 || len(r.Body) != 1<<20 || !checkPattern(r.Body) {
				c.fail("after clients vanished, a big GET got %s", e)
			}
		}},
		tcase{name: "client vanishes before the response", rfc: "RFC 9112 9.6", run: func(c *ctx) {
			cl, err := dial(c.p.addr)
			if err != nil {
				c.fail("%v", err)
				return
			}
			raw, _ := c.fill(get("GET", "/b/slow?ms=300", ""))
			cl.sendSync(raw)
			cl.close()
			time.Sleep(400 * time.Millisecond)
		}},
		tcase{name: "many idle connections", rfc: "RFC 9112 9.3: idle connections do not stop service", run: func(c *ctx) {
			var cls []*client
			for i := 0; i < 100; i++ {
				cl, err := dial(c.p.addr)
				if err != nil {
					break
				}
				cls = append(cls, cl)
			}
			c.alive()
			for _, cl := range cls {
				cl.close()
			}
		}},
	)

	register("pipeline",
		tcase{name: "ten pipelined GETs", rfc: "RFC 9112 9.3.2: responses in the order of the requests", run: func(c *ctx) {
			e := c.ex(strings.Repeat(get("GET", "/p", ""), 10), repeat("GET", 10)...)
			if len(e.Resps) != 10 {
				c.fail("got %d responses: %s", len(e.Resps), e)
			}
		}},
		tcase{name: "pipelined mixed methods", rfc: "RFC 9112 9.3.2; RFC 9110 9.3.2: no body after HEAD", run: func(c *ctx) {
			raw := get("GET", "/1", "") + get("POST", "/2", "Content-Length: 5\r\n") + "hello" + get("HEAD", "/3", "") + get("GET", "/4", "")
			e := c.ex(raw, "GET", "POST", "HEAD", "GET")
			if len(e.Resps) != 4 {
				c.fail("got %d responses: %s", len(e.Resps), e)
			}
		}},
		tcase{name: "pipelined with a forbidden one", rfc: "RFC 9112 9.3.2: each request gets its own answer", run: func(c *ctx) {
			e := c.ex(get("GET", "/1", "")+get("GET", "/admin", "")+get("GET", "/3", ""), "GET", "GET", "GET")
			if len(e.Resps) != 3 || e.Resps[1].Status != 403 {
				c.fail("got %s, want 200, 403, 200", e)
			}
		}},
		tcase{name: "pipelined behind a slow one", rfc: "RFC 9112 9.3.2: order is kept whatever the backend's speed", run: func(c *ctx) {
			e := c.ex(get("GET", "/b/slow?ms=300", "")+get("GET", "/2", "")+get("GET", "/3", ""), "GET", "GET", "GET")
			if len(e.Resps) != 3 {
				c.fail("got %s", e)
			}
		}},
		tcase{name: "pipelined behind a broken backend answer", rfc: "RFC 9112 9.3.2; RFC 9110 15.6.3: 502 in its place", run: func(c *ctx) {
			e := c.ex(get("GET", "/1", "")+get("GET", "/b/garbage", "")+get("GET", "/3", ""), "GET", "GET", "GET")
			if len(e.Resps) >= 2 && e.Resps[1].Status < 500 {
				c.fail("garbage from the backend answered %s", e.Resps[1])
			}
		}},
		tcase{name: "HTTP/1.0 keep-alive", rfc: "RFC 9112 9.3: HTTP/1.0 persistence with keep-alive", run: func(c *ctx) {
			raw := "GET /1 HTTP/1.0\r\nX-Token: {tok}\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\nX-Token: {tok}\r\n\r\n"
			e := c.ex(raw, "GET", "GET")
			if len(e.Resps) != 2 {
				c.fail("got %s, want two answers", e)
			}
		}},
		tcase{name: "Connection: close honoured", rfc: "RFC 9112 9.6: the server closes after answering a close", run: func(c *ctx) {
			e := c.ex(get("GET", "/1", "Connection: close\r\n")+get("GET", "/2", ""), "GET", "GET")
			if len(e.Resps) != 1 || !e.Closed {
				c.fail("got %s, want one answer and a close", e)
			}
		}},
		concurrent("concurrent clients, no crossed answers", "RFC 9112 9.3.2: every answer to its own client", "/p", "/b/slow?ms=50", "/b/drip", "/b/continue", "/b/close-second", "/b/big?size=70000"),
		concurrent(unrequestedCase, "RFC 9112 9.3.2: every answer to its own client, whatever the backend sends unasked", "/p", "/b/slow?ms=50", "/b/extra", "/b/drip", "/b/continue"),
	)
}

// unrequestedCase is the case where a backend sends a response nobody
// asked for while other clients' requests are in flight.
const unrequestedCase = "concurrent clients, backend sends unrequested answers"

// concurrent runs 16 clients, each pipelining 4 GETs over paths.
func concurrent(name, rfc string, paths ...string) tcase {
	return tcase{name: name, rfc: rfc, run: func(c *ctx) {
		var wg sync.WaitGroup
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				raw := ""
				for j := 0; j < 4; j++ {
					raw += get("GET", paths[(i+j)%len(paths)], "")
				}
				c.ex(raw, repeat("GET", 4)...)
			}(i)
		}
		wg.Wait()
	}}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
