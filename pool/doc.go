// Package pool is ocsiproxy's backend client: a [wire.Sender] that keeps,
// per upstream (scheme, host and port, with its TLS settings), at most
// Workers HTTP/1.1 connections, and pipelines on them the requests that
// may be pipelined. Requests and answers are ocsiproxy's own
// ([wire.Request], [wire.Response]: header fields in order, no maps);
// [Pool.RoundTrip] takes and gives net/http's types for the code that
// works on them. It is built on bufio, net/textproto and httputil's
// chunked coding; it writes requests and reads responses itself, to frame
// them strictly and to keep the order of a pipeline (net/http's Transport
// does not pipeline, and textproto.Pipeline cannot cancel a waiting
// request).
//
// On a connection that may pipeline, one goroutine reads the responses
// and hands each to the goroutine of its request (the caller of
// RoundTrip). On a connection that does not (pipeline_depth="1", the
// default), there is no such goroutine: the caller writes its request and
// reads the response itself, with the same framing checks, and returns
// it; no hand-off, no goroutine waiting on an idle connection (see
// "Connections that do not pipeline").
//
// # Configuration
//
// The children of the revproxy <extension> element, or of the routes one
// (ocsiproxy.ext.routes: both share one set of pools), in MongooseIM's
// outgoing-pool vocabulary (see [ParseConfig]); every error is reported
// with its position:
//
//	<extension findlib-package="ocsigenserver.ext.revproxy">
//	  <pool workers="1024" strategy="best_worker" pipeline_depth="1"/>
//	  <upstream url="https://api:8443" workers="4" call_timeout="5s">
//	    <tls cacertfile="/etc/ssl/api-ca.pem" versions="tlsv1.2 tlsv1.3"/>
//	  </upstream>
//	</extension>
//
// <pool> sets the defaults of every upstream; <upstream url=> overrides
// them for one scheme://host:port (an upstream not listed gets the
// defaults). An <upstream> also takes path_prefix="/api" (or a path in
// its url, meaning the same), prepended to the path of every request sent
// to it (see [Config.PathPrefixFunc]). Attributes, with their defaults:
//
//   - workers="1024": connections at most, opened when needed (high, so
//     that long polls never queue behind the cap).
//   - strategy="best_worker": best_worker (fewest in flight; a new
//     connection while fewer than workers are open and all are busy),
//     random_worker, next_worker (round robin), available_worker (first
//     idle, else wait: never pipelines), next_available_worker (next
//     idle, else fail at once with 502: load shedding).
//   - call_timeout and request_timeout: <timeout> (30 s). call_timeout
//     bounds the whole call until the response head: waiting for a
//     connection, connecting, sending, waiting; request_timeout the wait
//     for the head once the request is sent. Time spent sending a request
//     body counts in neither, so uploads are never cut. A timeout is 504.
//     The deadlines are checked every 10 ms by one goroutine per pool
//     (running only while calls wait), not by a timer per call: a timeout
//     fires at most 10 ms late (plus scheduling delays), never early (a
//     caller reading its own response has its read cut by a read deadline
//     in the past). A call counts from the request's Start when it has
//     one (the moment the server began to serve the request, some
//     microseconds before the call: the clock is not read again), else
//     from the call.
//     A request still being written when its call is due (a backend that
//     reads nothing) has its connection given up then; the connection's
//     write deadline, which is moved about once a second rather than on
//     every request, is at most 1 s (or a quarter of the timeout) after
//     the request's deadline.
//   - connect_timeout="10s" (TCP and TLS handshake), idle_timeout="30s".
//   - pipeline_depth="1": requests in flight on one connection; 1 is no
//     pipelining (see Measurements for why it is the default), and
//     callers reading their own responses (decided per upstream, from its
//     settings, when a connection is opened).
//   - max_buffered="64kiB", hol_timeout="100ms": the head-of-line bound
//     (below).
//   - probation="1", distrust="30s": when a connection may pipeline
//     (below).
//
// Durations are milliseconds when bare ("5000", as in MongooseIM) or Go
// durations ("5s", "250ms"); "infinity" means no bound. <tls> (in <pool>
// for every https upstream, or in an https <upstream>) takes
// verify_peer="true", cacertfile (default: the system roots, so
// SSL_CERT_FILE works), certfile and keyfile (client certificate),
// password or password_file (the password of an encrypted PKCS#8 key),
// versions="tlsv1.2 tlsv1.3" (a range: a list with a gap is refused), ciphers (OpenSSL or IANA names, TLS 1.2
// suites; Go does not let TLS 1.3 suites be chosen) and
// server_name_indication ("true": the upstream's host; "false": none sent,
// the certificate still checked against the host; or a name to send and
// check). ALPN offers http/1.1 only.
//
// # Upstream groups
//
// An <upstream name="api" balance= retries= try_duration= fail_status=>
// element with <server url= weight= backup= max_fails= fail_timeout=>
// children is a group ([Group]): a request whose URL host is "api",
// without a port, goes to one of its servers, each with its own
// upstream (connections, strategy, pipelining, TLS). The balancer
// (balance.go) picks the server; passive health and retries are in
// grouprt.go: a try that reached no backend is repeated on another
// server; an idempotent one whose connection failed before a response
// head, with its body unread, too; a non-idempotent request that may
// have been received never is. ip_hash reads the request's ClientAddr
// (forward.NewRequest sets it; [Pool.RoundTrip] and the [Upgrader] take
// the one [WithClientAddr] put in the context); as nginx's ip_hash, it
// hashes the first
// three octets of an IPv4 address (the clients of one /24 share a
// server) and the whole of an IPv6 address.
//
// Protocol upgrades (WebSocket) go through [Pool.Upgrader], a net/http
// client (upgrade.go): one to a group goes to a server the balancer
// picks, on a connection of its own opened with that server's
// settings, and counts in flight on it until its tunnel is closed.
//
// A server may be in several groups: each group has its own view of it
// (its weight, backup, max_fails and fail_timeout, failures, probes and
// drain), over the one upstream of its key; groups that would give that
// upstream different settings are a configuration error, positioned at
// the second <server>.
//
// A group's <health> child turns on active health checks (health.go,
// [Health]): a goroutine per server probes it on connections of its own,
// from [Pool.StartBackground] to [Pool.StopBackground] or
// [Pool.Close]. A server with resolve= (resolve.go, [Server.Resolve]) is
// looked up again every period by a goroutine of that background work,
// and stands for a member per address, each with its own upstream. [Pool.GroupStates] is a snapshot of the servers' state
// for the admin API and metrics; [Pool.SetDrained] drains a server.
//
// # Pipelining rules
//
//   - Only safe, idempotent requests without a body are pipelined: GET,
//     HEAD, OPTIONS and TRACE (RFC 9112 section 9.3.2). A request with a
//     body, or with any other method, waits for a connection with nothing
//     in flight and has it alone until its response has been read;
//     nothing is pipelined behind it. When every connection is busy, one
//     is kept free of new requests until it is idle, so such a request
//     is not starved by a stream of GETs.
//   - A connection carries one request at a time until it has given
//     probation complete, persistent HTTP/1.1 responses (HTTP/1.1, no
//     "Connection: close"); an HTTP/1.0 backend is kept alive but never
//     pipelined on (Ocsigen 2's HTTP client had the same probation).
//   - Distrust: when a connection with two or more requests in flight is
//     closed by the backend without notice, or poisoned, pipelining to
//     that upstream stops for distrust (Ocsigen 2 stopped for a day);
//     requests still go one at a time on kept-alive connections.
//   - nopipeline="nopipeline" on a <revproxy> rule (req.Close) means a
//     connection of its own: a new one (an idle pooled connection is
//     closed to make room when workers are all open), "Connection: close"
//     sent, closed after the exchange.
//   - Responses are matched to requests strictly in the order the requests
//     were written: one goroutine reads a connection's responses and hands
//     each to the head of its queue of requests (without pipelining, the
//     queue is one request long, and its caller reads the response).
//   - A response that cannot be delimited poisons its connection: a bad
//     status line or header block, Transfer-Encoding together with
//     Content-Length, differing or malformed Content-Lengths, a transfer
//     coding other than chunked (or any in HTTP/1.0), a malformed chunk or
//     trailer, bytes from the backend when no request is outstanding (seen
//     at once with pipelining; without it, when they come with the answer
//     before, or at the look before the next request: see below), an
//     unexpected 101. The connection is closed; the request the bad
//     response belongs to gets a [*FramingError] (502); every request
//     written behind it and not answered is sent again once, on another
//     connection, when it is idempotent and its body was not read, and
//     gets 502 otherwise. The same holds when the backend closes or
//     resets the connection before a response is complete (an early
//     close), except that the request being answered may be sent again
//     too, since nothing of its response was handed over.
//   - An answer that comes before the request's body is sent (a 413, say)
//     is delivered, also when the backend then closes with body bytes
//     unread and so resets the connection: the body's failed write leaves
//     the connection to the read of that answer, which gets it (TCP
//     delivers it before the reset) or ends as an early close; the
//     connection is not used again.
//   - A response that announces the end of the connection ("Connection:
//     close", HTTP/1.0 without keep-alive) is delivered, and the requests
//     written behind it, which the backend will not process (RFC 9112
//     section 9.6), are sent again without counting as their retry.
//   - A response is handed over only once its head has arrived whole, and,
//     when it has a Content-Length of at most max_buffered, its body too:
//     a backend that breaks in the middle of such a response costs a
//     retry or a clean 502, never a truncated answer. A longer body is
//     streamed: if it breaks, the client's connection is aborted (it
//     cannot mistake the truncated body for a whole one).
//   - Trailers, as net/http gives them: the fields of a chunked body's
//     trailer section (at most 16 KiB) are in resp.Trailer once the body
//     has been read to its end, after the names the Trailer header
//     announced, there from the start with nil values. Fields that may
//     never be trailers (RFC 9110 section 6.5.1: framing, Host,
//     authentication, cookies, content format, hop-by-hop...) are
//     dropped. A chunked body read whole had no trailer section: it is
//     delivered with a length and no Trailer.
//
// # Connections that do not pipeline
//
// With pipeline_depth="1", a connection carries one request at a time and
// has no goroutine of its own: the caller of RoundTrip writes the request
// (its body, if any, is sent by a goroutine of the request's, so that an
// early answer is read at once), reads the response head and a body read
// whole, and returns; a streamed body is read by its client from the
// connection, which goes back to the idle ones (or is drained, or closed)
// when the body ends, as above. The call_timeout and request_timeout of a
// caller blocked in that read, and its client going away, are seen by the
// goroutine that checks the deadlines (within 10 ms), which cuts the read
// by a read deadline in the past: a 504 or the context's error, and the
// connection closed, as with pipelining; nothing is set per request.
//
// Nobody reads an idle connection. Before a request on a connection that
// answered before (and before any request that is not idempotent; on a
// plain TCP connection, before every request: below), the caller looks at
// its socket without blocking (a recv with MSG_PEEK and MSG_DONTWAIT): a
// connection the backend closed or reset is given up, one holding bytes
// nobody asked for is poisoned, and the request goes on another connection.
// So those bytes are never read as an answer, and a request is never sent
// where the backend had already closed. Should the backend close in the
// microseconds between that look and the request, an idempotent request
// (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) closed on before any byte of its
// answer is sent again once on another connection (the retry rule above),
// and the other idle connections of the upstream are looked at and dropped
// when closed; a request that is not idempotent gets a 502, never sent
// twice. The goroutine that closes connections idle for idle_timeout also
// looks at each idle one every second, so that a connection the backend
// closed does not linger.
//
// On a plain TCP connection, the look and the write of the head are made
// from within the wait for the answer (syscall.RawConn.Read, after the
// socket's readiness is reset): the wait starts without a read that would
// find nothing, and a close that comes after the look ends the wait at
// once. The look is made before the first request on a fresh connection
// too: a backend may shut a connection down as it accepts it, and only the
// look sees a close that came before the reset. (Made before the reset, the
// look would leave a window: a close in between loses its readiness to the
// reset, and a request written on a connection the backend shut down for
// writing, but still reads, would wait for request_timeout.) So a request
// costs the look, the write and the read of the answer: the three system
// calls of a reader goroutine (the write, the read, and the next read,
// which finds nothing), without the goroutine, the hand-off of the answer,
// or a goroutine and its stack per idle connection.
//
// # Head-of-line blocking
//
// A body read whole (Content-Length up to max_buffered, or chunked and
// already all received with its head: within the connection's 4 KiB read
// buffer) frees the connection at once, whatever the speed
// of the client it goes to. A body that is streamed (longer, of unknown
// length, or still arriving) keeps the connection: no request is
// pipelined behind it, and the requests already pipelined behind it are
// sent again on another connection after hol_timeout if the body has not
// ended (the streaming connection then stops counting against workers,
// and is closed once its body ends). So a request waits for other
// clients' responses at most for the backend to produce the ones ahead of
// it, plus hol_timeout; never for a client's reading. Each response in
// flight holds at most max_buffered bytes of memory. The bound does not
// cover a backend that is slow to answer a request ahead (HTTP/1.1 answers
// in order): that wait is bounded by request_timeout only, which is one
// more reason pipelining is off by default. Measured by
// BenchmarkHeadOfLine (a request behind a 1 MiB response whose client
// reads nothing for 500 ms; 2 cores, shared): see Measurements.
//
// # Client disconnects
//
// A request not yet sent when its caller goes away is dropped. One sent
// alone, or at the head of a connection when its time runs out, closes
// the connection (a caller reading its own response, without
// pipelining, gives up within 10 ms); one sent behind others is left to
// be read and discarded (the connection is closed if nobody is waiting on
// it any more). A streamed body closed before its end is drained when at most
// 256 kiB are left (within 2 s), and its connection is closed otherwise;
// a read blocked on a stalled body returns when the request's context
// ends. Never is a response, or part of one, given to another request.
//
// # Metrics
//
// [Pool.Stats] returns, per upstream, gauges (connections open, idle,
// being opened; requests in flight and waiting; the deepest pipeline) and
// counters (requests, pipelined requests, retries, requeues, HOL resends,
// poisoned connections, early closes, distrusts, dials and dial errors,
// timeouts, abandoned calls, drained bodies), for the server to expose.
//
// # Measurements
//
// BenchmarkClients (go test -bench Clients ./pool): 64 client goroutines,
// GETs of a 64-byte body, in one process with the backend, on a 2-core
// machine shared with other jobs (medians of 8 to 15 runs of 3 s; the
// tails are noisy). "serial": the backend handles one request at a time
// per connection, as net/http's server and most servers do; "concurrent":
// it starts each pipelined request as soon as it is read. allocs/op
// includes the 3 of the benchmark's own http.NewRequest (the pool's
// allocs/op were measured again after its allocations were cut, 15 to 7;
// the other columns are from the first runs).
//
//	backend          workers  client          req/s    p50 ms  p99 ms  allocs/op
//	serial 1 ms      4        pipelining off    3,177   19.4    25.8     7
//	serial 1 ms      4        depth 2           3,216   19.0    37.0     7
//	serial 1 ms      4        depth 16          3,320   18.4    31.7     7
//	serial 1 ms      4        net/http          3,104   19.9    34.1    37
//	concurrent 1 ms  4        pipelining off    3,246   19.2    24.0     7
//	concurrent 1 ms  4        depth 2           6,358    9.8    13.9     7
//	concurrent 1 ms  4        depth 16         32,650    1.7     4.7     7
//	concurrent 1 ms  4        net/http          3,054   20.0    25.8    37
//	serial 1 ms      64       pipelining off   28,420    2.2     4.5     7
//	serial 1 ms      64       depth 2          28,430    2.2     4.4     7
//	serial 1 ms      64       net/http         21,760    2.7     7.3    38
//	serial 0 ms      4        pipelining off   51,170    0.94    8.7     7
//	serial 0 ms      4        depth 16        109,700    0.29    5.9     7
//	serial 0 ms      4        net/http         33,330    1.39    9.0    37
//
// Pipelining pays off against a backend that works on pipelined requests
// concurrently (10 times the throughput on 4 connections), and when the
// client's CPU is the limit (twice); against the usual serial backend, at
// equal connections, it gains 4% of throughput and loses on the tail (a
// request committed to one connection's queue is no longer served in
// arrival order), and with the default 1024 workers it does not even
// start below 1024 requests in flight. Its risks stay: a slow response holds up
// the requests behind it (bounded by request_timeout only), and HTTP/1.1
// has no request identifiers, so a backend that sends a well-formed
// response nobody asked for while requests are pipelined, or announces a
// Content-Length longer than what it sends and keeps the connection, makes
// a response (or its bytes) go to the next request in line, which no
// framing check can see (without pipelining, such a response is refused
// when it arrives with the previous answer or before the next request, and
// an overstated Content-Length gives a 504).
// Through the whole proxy (bench/pipeline.sh, 2026-12-05: ocsiproxy in
// front of bench/backend, workers="8", 64 client connections, GET
// /sleep/1, proxy and backend sharing one core, 2 rounds), depth 8 against
// depth 1: with a backend that serves a connection's requests in turn,
// 5,148-5,190 against 5,425-5,587 requests/s, p50 12.1 against 11.4-11.5
// ms, p99 14.6-15.0 against 13.6-15.2 ms; with one that serves them
// concurrently, 20,830-21,145 against 5,419-5,500 requests/s, p99 6.1-6.2
// against 14.1-14.5 ms, and 29 against 51-53 us of proxy CPU per request.
// Measured again with the wire types (05f4af9, same settings, 8 s runs):
// in turn, 5,221-5,246 against 5,473-5,551 requests/s, p50 12.0-12.2
// against 11.4-11.5 ms; concurrently, 20,399-21,677 against 5,414-5,442
// requests/s, p99 6.3-7.0 against 14.7-15.2 ms.
// So pipeline_depth defaults to 1: turn it on per upstream, for backends
// known to frame correctly and to answer pipelined requests concurrently.
// Measured again once callers read their own answers (a194a98, same
// settings, 2 rounds), depth 8 against depth 1: in turn, 5,065-5,412
// against 4,981-5,321 requests/s, p99 13.7-14.6 against 14.9-15.4 ms,
// 31.4-39.6 against 36.6-45.3 us of proxy CPU per request; concurrently,
// 24,617-26,351 against 4,907-5,199 requests/s, p99 4.3-5.1 against
// 14.5-16.4 ms. With 8 workers, pipelining now wins against both
// backends. It stays off by default all the same: with the default 1,024
// workers it starts only past 1,024 requests in flight, where a depth
// above 1 puts every connection of the upstream back on a reader
// goroutine, which at 1,000 client connections costs 7-11% more CPU and a
// p99 18-37% higher than callers reading their own answers (below), and a
// goroutine per idle connection; the framing risks above remain. At 64
// client connections and the default workers, depth 8 and depth 1 cost
// the same (3 interleaved rounds: 19.5-20.3 against 18.8-20.4 us per
// request).
//
// Callers reading their own answers, against a reader goroutine per
// connection (2026-12-06, through the whole proxy, GET of a small answer,
// proxy and backend sharing one core, wrk on the other, rounds
// interleaved): at 64 client connections, 18.4-19.9 against 19.2-19.5 us
// of proxy CPU per request (4 rounds) and the same 5.1 system calls; at
// 1,000, 23.6-28.8 against 26.5-30.9 us, 25,000-29,900 against
// 23,600-27,000 requests/s and a p99 of 17.6-22.6 against 23.9-36.0 ms (3
// rounds); at one connection, the same latency (p50 111-117 against
// 110-114 us). With 350 connections left idle after a burst, 35.1 against
// 40.9 MB of RSS: no goroutine stack per idle connection. Without writing
// the head from within the wait (the look, the write, a read that finds
// nothing, the read of the answer), it cost 4% more CPU than the reader
// goroutine at 64 connections (6.1 system calls against 5.1).
//
// BenchmarkHeadOfLine: one connection; a 1 MiB response goes to a client
// that reads nothing for 500 ms; a small request is pipelined behind it, or
// waits for the connection. Its wait (median of 5 runs):
//
//	hol_timeout      behind     queued
//	0                  1.7 ms     2.5 ms
//	20ms              21.2 ms    20.9 ms
//	100ms (default)  101.4 ms   101.0 ms
//	infinity         501.3 ms   501.2 ms
//
// TestStress sends 64 clients x 1,000 requests with unique ids through
// the server to a backend that delays, closes connections and misframes
// responses, with pipelining on (depth 8 on 8 connections): every client
// gets its own response or a clean 502, and about half the requests reach
// the backend pipelined.
package pool
