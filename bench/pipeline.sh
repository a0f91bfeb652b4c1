#!/usr/bin/env bash
# bench/pipeline.sh - does pipelining requests to the backend pay?
#
# ocsiproxy in front of bench/backend, loaded by wrk (CONNS client
# connections, GET /sleep/SLEEP_MS), with the pool capped at WORKERS
# backend connections, so that requests queue for connections and the
# pool pipelines them when pipeline_depth allows: depth 1 (the default:
# no pipelining) against each depth in DEPTHS, in front of a backend that
# serves a connection's pipelined requests in turn and one that serves
# them concurrently (bench/backend -pipeline). Proxy and backend share
# CPU 0, wrk has CPU 1, as the suite's PIN=split. Prints, per run,
# requests/s, p50 and p99 latency and the proxy's CPU time per request.
#
#   bench/pipeline.sh
#   WORKERS=4 DEPTHS="1 4 16" SLEEP_MS=2 DURATION=5 bench/pipeline.sh
#
# Settings: WORKERS (8), DEPTHS ("1 8"), MODES ("turn concurrent"),
# SLEEP_MS (1), CONNS (64), DURATION (10 s), WARMUP (2 s), ROUNDS (1),
# PORT_BASE (18700: the backend, then the proxy). Loopback only; every
# process started is stopped by its process group at the end, on Ctrl-C
# and on errors.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=$ROOT/bench/.bin
WORKERS=${WORKERS:-8} DEPTHS=${DEPTHS:-"1 8"} MODES=${MODES:-"turn concurrent"}
SLEEP_MS=${SLEEP_MS:-1} CONNS=${CONNS:-64} DURATION=${DURATION:-10} WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-1} PORT_BASE=${PORT_BASE:-18700}
for c in wrk taskset; do
  command -v "$c" >/dev/null || { echo "pipeline.sh: $c is not installed (bench/run.sh installs it)" >&2; exit 1; }
done
mkdir -p "$BIN"
go build -o "$BIN/ocsiproxy" .
go build -o "$BIN/backend" ./bench/backend
work=$(mktemp -d)
pgids=()
stop_all() {
  for g in "${pgids[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
  pgids=()
}
trap 'stop_all; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

backend_port=$PORT_BASE proxy_port=$((PORT_BASE + 1))

# start CMD...: runs CMD on CPU 0 in a process group of its own; sets pid.
start() {
  setsid taskset -c 0 "$@" >"$work/out.$$.$RANDOM" 2>&1 &
  pid=$!
  pgids+=("$pid")
}

# wait_port PORT: until something accepts on it (5 s at most).
wait_port() {
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "pipeline.sh: nothing listens on port $1" >&2
  return 1
}

# cpu_ticks PID: user+system clock ticks of PID so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

tick=$(getconf CLK_TCK)
printf '%-10s %5s %5s %9s %8s %8s %11s\n' backend depth round "req/s" "p50 ms" "p99 ms" "CPU us/req"
for round in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    start "$BIN/backend" -listen "127.0.0.1:$backend_port" -pipeline "$mode"
    backend_pid=$pid
    wait_port "$backend_port"
    for depth in $DEPTHS; do
      conf=$work/ocsiproxy-$depth.conf
      mkdir -p "$work/log-$depth"
      cat >"$conf" <<EOF
<ocsigen>
  <server>
    <port>127.0.0.1:$proxy_port</port>
    <logdir>$work/log-$depth</logdir>
    <datadir>$work</datadir>
    <keepalivetimeout>300</keepalivetimeout>
    <extension findlib-package="ocsigenserver.ext.revproxy">
      <pool workers="$WORKERS" pipeline_depth="$depth"/>
    </extension>
    <host hostfilter="*">
      <revproxy suburl="(.*)" dest="http://127.0.0.1:$backend_port/\1"/>
    </host>
  </server>
</ocsigen>
EOF
      GOMAXPROCS=1 start "$BIN/ocsiproxy" -s -c "$conf"
      proxy_pid=$pid
      wait_port "$proxy_port"
      url=http://127.0.0.1:$proxy_port/sleep/$SLEEP_MS
      taskset -c 1 wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$url" >/dev/null
      t0=$(cpu_ticks "$proxy_pid")
      out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$url")
      t1=$(cpu_ticks "$proxy_pid")
      n=$(awk '/requests in/ {print $1}' <<<"$out")
      rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
      # wrk prints latencies with their unit (us, ms, s): in ms.
      ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) print v / 1000; else if (v ~ /ms$/) print v + 0; else print v * 1000 }'; }
      p50=$(ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
      p99=$(ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
      errors=$(awk '/Non-2xx|Socket errors/' <<<"$out")
      cpu=$(awk -v t=$((t1 - t0)) -v n="$n" -v hz="$tick" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
      printf '%-10s %5s %5s %9.0f %8.3f %8.3f %11s\n' "$mode" "$depth" "$round" "$rps" "$p50" "$p99" "$cpu"
      [[ -z $errors ]] || echo "  $errors"
      kill -TERM -- "-$proxy_pid" 2>/dev/null || true
      wait "$proxy_pid" 2>/dev/null || true
      pgids=("${pgids[@]/$proxy_pid/}")
    done
    kill -TERM -- "-$backend_pid" 2>/dev/null || true
    wait "$backend_pid" 2>/dev/null || true
    pgids=("${pgids[@]/$backend_pid/}")
  done
done
