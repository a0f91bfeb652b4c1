// Package difftest is the differential test of ocsiproxy against the real
// Ocsigen Server 5.0.1.
//
// For every scenario the test writes one Ocsigen configuration, starts
// `ocsigenserver -c` and ocsiproxy on it (each on its own loopback port), puts
// a recording backend behind both, sends the same raw HTTP requests to both and
// compares what the client got and what the backend saw. Every difference must
// be one that SPEC.md section 8 declares (table knownDiffs); any other
// difference fails the test.
//
// Run it with `go test ./difftest/` (add -v for the summary line, and see the
// flags in harness_test.go). FINDINGS.md records what Ocsigen 5.0.1 actually
// does where the spec is silent.
package difftest
