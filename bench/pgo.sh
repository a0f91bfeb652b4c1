#!/usr/bin/env bash
# bench/pgo.sh - refresh default.pgo, the CPU profile that `go build` and
# `go run` of the ocsiproxy binary use for profile-guided optimisation (Go
# reads default.pgo from the main package's directory: -pgo=auto).
#
# The profile is that of BenchmarkProxyWire (server/bench_test.go: a
# proxied GET through the HTTP/1 server, the handler, the rules and the
# backend pool, with its own client and backend on loopback), the
# request path the benchmarks measure. Refresh it after large changes to
# that path; see docs/benchmarks.md ("Profile-guided optimisation") for
# what it gives.
#
#   bench/pgo.sh               # 15 s of benchmark
#   BENCHTIME=30s bench/pgo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -pgo=off -o "$tmp/server.test" ./server
(cd server && "$tmp/server.test" -test.run '^$' -test.bench 'ProxyWire$' -test.benchtime "${BENCHTIME:-15s}" \
  -test.cpuprofile "$tmp/cpu.pgo" >/dev/null)
mv "$tmp/cpu.pgo" default.pgo
echo "bench/pgo.sh: default.pgo written ($(wc -c <default.pgo) bytes); rebuild to use it"
