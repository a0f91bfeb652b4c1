package difftest

import "strings"

// forwardingScenarios cover SPEC 7 (what the backend and the client see) and
// the basics of SPEC 4's revproxy.
func forwardingScenarios() []*scenario {
	return []*scenario{
		{
			name:      "forward-basics",
			spec:      "4 revproxy, 7, 9 (connection reuse)",
			hosts:     proxyAll,
			poolCheck: true,
			reqs: []*request{
				get("/"),
				get("/a/b/c.html"),
				get("/search?q=a+b&x=%2F", "Accept: */*").witness(rowQuery),
				build("HEAD", "/head", "HTTP/1.1"),
				build("POST", "/form", "HTTP/1.1", "Content-Type: application/x-www-form-urlencoded", "", "a=1&b=2"),
				build("POST", "/chunked", "HTTP/1.1", "Transfer-Encoding: chunked", "", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
				build("PUT", "/put", "HTTP/1.1", "Content-Type: text/plain", "", "payload"),
				build("DELETE", "/del", "HTTP/1.1"),
				build("OPTIONS", "/opt", "HTTP/1.1"),
				build("PATCH", "/patch", "HTTP/1.1", "", "p"),
				get("/hdrs", "Cookie: a=1; b=2", "Authorization: Bearer xyz", "Accept-Language: fr", "X-Dup: 1", "X-Dup: 2"),
				get("/noua", "-User-Agent").witness(rowHopByHop),
				get("/hop", "Connection: keep-alive, X-Conn-Named", "X-Conn-Named: secret", "Keep-Alive: timeout=5",
					"TE: trailers", "Proxy-Authorization: Basic eA==", "X-Other: kept").witness(rowHopByHop),
				get("/upgrade", "Connection: Upgrade", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAAP__").witness(rowHopByHop),
				get("/close", "Connection: close").witness(rowHopByHop),
				get("/ws", "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
					"Sec-WebSocket-Version: 13", "X-Want: upgrade").withNote("WebSocket handshake").witness(rowPTunnel),
				build("GET", "/http10", "HTTP/1.0"),
				build("GET", "/http10-nohost", "HTTP/1.0", "-Host"),
				build("POST", "/expect", "HTTP/1.1", "Expect: 100-continue", "", "body").witness(rowPExpect).slow().
					wants(want{status: 200, target: "/expect"}),
				build("POST", "/expect", "HTTP/1.1", "Expect: 100-continue", "X-Want: no-100", "", "body"),
				get("/xff", "X-Forwarded-For: 203.0.113.9").withNote("client XFF, no allow-forward-for"),
				get("/xfp", "X-Forwarded-Proto: https").withNote("client XFP, no allow-forward-proto"),
				get("/xfh", "X-Forwarded-Host: evil.example", "Forwarded: for=1.2.3.4", "X-Real-IP: 1.2.3.4", "True-Client-IP: 1.2.3.4").witness(rowClient).
					wants(want{status: 200, target: "/xfh", backend: map[string]string{"Forwarded": "", "True-Client-IP": "", "X-Real-IP": clientIP, "X-Forwarded-Host": "test.example"}}),
			},
		},
		{
			name:  "backend-responses",
			spec:  "7",
			hosts: proxyAll,
			reqs: []*request{
				get("/r", "X-Want: cookies"),
				get("/r", "X-Want: location"),
				get("/r", "X-Want: server"),
				get("/r", "X-Want: hop"),
				get("/r", "X-Want: chunked"),
				get("/r", "X-Want: empty"),
				get("/r", "X-Want: nocontent"),
				get("/r", "X-Want: big"),
				get("/r", "X-Want: close").witness(rowPUntilClose).slow(),
				get("/r", "X-Want: status-404"),
				get("/r", "X-Want: status-418"),
				get("/r", "X-Want: status-500"),
				get("/r", "X-Want: status-503"),
				get("/r", "X-Want: status-304"),
				build("HEAD", "/r", "HTTP/1.1", "X-Want: big"),
			},
		},
		{
			name: "backend-down",
			spec: "7 errors",
			hosts: `<host hostfilter="*">
      <site path="down"><revproxy suburl="(.*)" dest="http://{DOWN}/\1"/></site>
      <revproxy suburl="(.*)" dest="http://{B}/\1"/>
    </host>`,
			reqs: []*request{
				get("/down/x").witness(rowDown),
				get("/reset", "X-Want: reset").witness(rowDown, rowRRetry).withNote("backend closes without answering"),
			},
		},
	}
}

// limitScenarios cover SPEC 7's size limits.
func limitScenarios() []*scenario {
	big := strings.Repeat("x", 64)
	return []*scenario{
		{
			name:   "limits",
			spec:   "7 errors (413, 431)",
			server: `<maxrequestbodysize>16</maxrequestbodysize>`,
			hosts:  proxyAll,
			reqs: []*request{
				build("POST", "/small", "HTTP/1.1", "", "0123456789"),
				build("POST", "/big", "HTTP/1.1", "", big).witness(rowPBodySize).wants(want{status: 413}),
				build("POST", "/bigchunked", "HTTP/1.1", "Transfer-Encoding: chunked", "", "40\r\n"+big+"\r\n0\r\n\r\n").
					witness(rowPBodySize).wants(want{status: 413, anyBackend: true}),
				get("/longheader", "X-Long: "+strings.Repeat("y", 20000)).withNote("default netbuffersize is 8192").
					witness(rowPHeaderSize).wants(want{status: 431}),
			},
		},
		{
			name:   "backend-timeout",
			spec:   "7 errors (504)",
			server: `<timeout>1</timeout>`,
			hosts:  proxyAll,
			reqs: []*request{
				get("/fast"),
				get("/slow", "X-Want: slow").withNote("the backend answers after 3 s").slow().
					witness(rowPTimeout).wants(want{status: 504, target: "/slow"}),
			},
		},
	}
}
