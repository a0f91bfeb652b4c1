#!/usr/bin/env bash
# bench/instructions.sh - instructions per proxied request, without the
# machine's noise: valgrind's callgrind counts the instructions of
# BenchmarkProxyWire (server/bench_test.go: ocsiproxy between a raw-socket
# client and backend in one process, GOMAXPROCS=1) at N and 2N iterations;
# the difference divided by N is the cost of one request (the benchmark's
# own client and backend included), set-up excluded.
#
#   bench/instructions.sh            # N=2000
#   N=4000 bench/instructions.sh
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is not installed" >&2; exit 1; }
N=${N:-2000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# cgo off and asynchronous preemption off: callgrind cannot follow either;
# RDTSCP off: valgrind does not know the instruction (SIGILL in the
# runtime's cputicks, on a CPU that has it).
CGO_ENABLED=0 go test -c -o "$tmp/server.test" ./server
count() {
  GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off valgrind --tool=callgrind --callgrind-out-file="$tmp/out.$1" \
    "$tmp/server.test" -test.run '^$' -test.bench 'ProxyWire$' -test.benchtime "$1x" -test.cpu 1 2>&1 |
    awk '/Collected/ {print $4}'
}
a=$(count "$N")
b=$(count $((2 * N)))
echo "instructions per proxied request: $(( (b - a) / N )) (callgrind, BenchmarkProxyWire, $N and $((2 * N)) iterations)"
