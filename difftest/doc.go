// Package difftest is the differential test of ocsiproxy against the real
// Ocsigen Server 5.0.1.
//
// For every scenario the test writes one Ocsigen configuration, starts
// `ocsigenserver -c` and ocsiproxy on it (each on its own 127.0.0.1 port, in
// its own process group, stopped by t.Cleanup), puts a recording backend
// behind both, sends the same raw HTTP requests to both (from 127.0.0.2, so
// the peer differs from the listening address) and compares what the client
// got and what the backend saw. Every difference must be one that a row of
// SPEC.md section 8 declares (table knownDiffs in known_test.go); any other
// difference fails the test. Configs Ocsigen refuses must be refused by
// ocsiproxy too (non-zero exit before listening).
//
// Running:
//
//	go test ./difftest/                  # compare; -v prints the summary line
//	go test ./difftest/ -v -run 'TestDifferential/redirect$'
//	go test ./difftest/ -difftest.ocsigen-only -difftest.dump=/tmp/ocsigen.txt
//
// ocsiproxy is built once per run (`go build` of the module root into a temp
// dir); $OCSIPROXY_BIN names a prebuilt binary instead. -difftest.ocsigen-only
// runs Ocsigen alone: the requests are sent and the declared rows are checked
// against Ocsigen, nothing is compared. -difftest.dump=FILE writes every
// exchange, both sides, with wire details (framing, Server, Date). Without
// ocsigenserver on PATH the test is skipped.
//
// Files: scenario_test.go (types and request builders), scen_*_test.go (the
// scenarios, by SPEC section), known_test.go (the declared differences),
// compare_test.go (normalisation: what is not compared and why), backend_test.go
// (the recording backend and its canned answers, chosen by the request's
// X-Want header), client_test.go and httpmsg_test.go (raw HTTP),
// proc_test.go (processes, ports, the config template), harness_test.go (the
// test). FINDINGS.md records what Ocsigen 5.0.1 was measured to do.
//
// A declared row either rewrites Ocsigen's outcome into what SPEC requires
// (then ocsiproxy must match the result exactly) or, when Ocsigen's answer is
// unusable (a 500), checks ocsiproxy against the request's want. Rows marked
// PROPOSED are places where Ocsigen differs from another SPEC section but
// section 8 does not list them yet; the summary counts them apart.
package difftest
