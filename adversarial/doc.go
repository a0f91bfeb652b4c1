// Package adversarial is ocsiproxy's hardening suite: raw-socket tests
// with hostile clients and a deliberately misbehaving backend, run by
// go test. It has no code of its own beyond this comment; everything is in
// the _test.go files.
//
// Each case is documented with the rule (RFC 9110, 9112, 3986, 6455, 9113)
// it enforces, and every case also asserts, whatever its own checks:
//
//   - nothing smuggled reached the backend as a request of its own (a
//     request the client did not send as a head: the "/smuggled" marker,
//     or a request without one of the tokens the clients sent);
//   - the backend never had to read a malformed or desynchronised stream
//     from the proxy;
//   - every response carrying a backend token went to the request that
//     carried it, on the connection that sent it, in order;
//   - the proxy keeps serving: a fresh request afterwards gets its own
//     answer.
//
// By default the suite runs against ocsiproxy, started in process:
//
//	go test ./adversarial
//
// The comparison with nginx and HAProxy (their binaries on PATH; each is
// started on loopback with an equivalent configuration and killed by PID
// at the end) and the Markdown table of the README:
//
//	ADVERSARIAL_COMPARE=1 go test ./adversarial -run TestCompare -v -timeout 30m
//
// ADVERSARIAL_TABLE=FILE also writes the table to FILE.
//
// The soak test (10 minutes of mixed traffic, with memory, goroutine and
// file-descriptor samples each minute; ADVERSARIAL_SOAK=5m for another
// length) and the ReDoS measurement run only on demand:
//
//	ADVERSARIAL_SOAK=10m go test ./adversarial -run TestSoak -v -timeout 20m
//	ADVERSARIAL_REDOS=1 go test ./adversarial -run TestReDoS -v
package adversarial
