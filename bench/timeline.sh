#!/usr/bin/env bash
# bench/timeline.sh - where an answer's time goes at one connection (the
# suite's lat1): each target in turn in front of bench/backend, pinned as
# PIN=split pins them (proxy and backend on CPU 0, wrk on CPU 1), loaded by
# wrk with one connection; perf records the scheduler's and the system
# calls' tracepoints of both CPUs for TRACE seconds, and bench/timeline
# prints, per segment of a request (the proxy's read of the request, its
# work, the backend, its read of the answer, its work, its write), the
# median, mean, 90th and 99th percentile, and the share of requests in
# which, during that segment, a timer interrupt came on CPU 0, the proxy
# was preempted (another task took its CPU), or it took a page fault;
# then the timer interrupts of CPU 0 a second, by the task each woke, the
# proxy's page faults a second, and how many of the slowest 1% of
# requests met each of the three. Tracing adds about a microsecond per
# system call: compare targets traced alike. Targets: ocsiproxy, nginx,
# and floor (bench/floor, a Go relay doing no HTTP work).
#
# Each target is warmed before the trace as the suite's lat1 finds it:
# WARM seconds (3) at 64 connections, then WARM at one. A Go process
# touches fresh heap pages for its first seconds (on the rig, 766 page
# faults in the first 5 s at one connection, against a few a second once
# warm), which a trace of a fresh process would count as the proxy's. The
# trace is kept in memory until it ends (perf's buffer, PERF_PAGES pages
# a CPU): perf writing it out on CPU 1 meanwhile would delay the client
# (several milliseconds, in S7).
#
#   bench/timeline.sh                      # ocsiproxy and nginx
#   TARGETS="ocsiproxy nginx floor" TRACE=2 bench/timeline.sh
#
# Needs perf, wrk and taskset (nginx for that target), and the right to
# trace the whole machine (root, or kernel.perf_event_paranoid at -1).
# Ports PORT_BASE (18500) to PORT_BASE+3, on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
for c in perf wrk taskset; do
  command -v "$c" >/dev/null || { echo "timeline.sh: $c is not installed" >&2; exit 1; }
done
TARGETS=${TARGETS:-ocsiproxy nginx}
TRACE=${TRACE:-0.3}
WARM=${WARM:-3}
PERF_PAGES=${PERF_PAGES:-16384}
PORT_BASE=${PORT_BASE:-18500}
BIN=bench/.bin
mkdir -p "$BIN"
go build -o "$BIN/ocsiproxy" .
go build -o "$BIN/backend" ./bench/backend
go build -o "$BIN/timeline" ./bench/timeline
go build -o "$BIN/floor" ./bench/floor
events=sched:sched_switch,sched:sched_wakeup,raw_syscalls:sys_enter,raw_syscalls:sys_exit
if perf list 2>/dev/null | grep 'irq_vectors:local_timer_entry' >/dev/null; then
  events=$events,irq_vectors:local_timer_entry,irq_vectors:local_timer_exit
else
  echo "timeline.sh: no irq_vectors:local_timer_entry tracepoint here; timer interrupts not counted" >&2
fi
if perf list 2>/dev/null | grep 'exceptions:page_fault_user' >/dev/null; then
  events=$events,exceptions:page_fault_user
else
  echo "timeline.sh: no exceptions:page_fault_user tracepoint here; page faults not counted" >&2
fi
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

backend=127.0.0.1:$PORT_BASE
taskset -c 0 "$BIN/backend" -listen "$backend" >"$tmp/backend.log" 2>&1 &
pids+=($!)
sleep 0.3

cat >"$tmp/ocsiproxy.conf" <<EOF
<ocsigen><server><port>127.0.0.1:$((PORT_BASE + 1))</port><logdir>$tmp</logdir>
<extension findlib-package="ocsigenserver.ext.revproxy"/>
<host hostfilter="*"><revproxy suburl="(.*)" dest="http://$backend/\1"/></host></server></ocsigen>
EOF
mkdir -p "$tmp/nginx/logs"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1; daemon off; master_process on; pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log $tmp/nginx/logs/access.log combined;
  client_body_temp_path $tmp/nginx; proxy_temp_path $tmp/nginx;
  fastcgi_temp_path $tmp/nginx; uwsgi_temp_path $tmp/nginx; scgi_temp_path $tmp/nginx;
  upstream backend { server $backend; keepalive 16; }
  server {
    listen 127.0.0.1:$((PORT_BASE + 2));
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto \$scheme;
    location / { proxy_pass http://backend; }
  }
}
EOF

for target in $TARGETS; do
  case $target in
    ocsiproxy)
      taskset -c 0 "$BIN/ocsiproxy" -c "$tmp/ocsiproxy.conf" >"$tmp/ocsiproxy.out" 2>&1 &
      p=$!; port=$((PORT_BASE + 1)); comm=ocsiproxy;;
    nginx)
      command -v nginx >/dev/null || { echo "timeline.sh: nginx is not installed; skipped" >&2; continue; }
      taskset -c 0 nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" >"$tmp/nginx.out" 2>&1 &
      p=$!; port=$((PORT_BASE + 2)); comm=nginx;;
    floor)
      taskset -c 0 "$BIN/floor" -listen "127.0.0.1:$((PORT_BASE + 3))" -backend "$backend" >"$tmp/floor.out" 2>&1 &
      p=$!; port=$((PORT_BASE + 3)); comm=floor;;
    *) echo "timeline.sh: unknown target $target (ocsiproxy, nginx, floor)" >&2; exit 2;;
  esac
  pids+=($p)
  sleep 0.7
  url=http://127.0.0.1:$port/
  if (( WARM > 0 )); then
    taskset -c 1 wrk -t1 -c64 -d"${WARM}s" "$url" >/dev/null
    taskset -c 1 wrk -t1 -c1 -d"${WARM}s" "$url" >/dev/null
  fi
  taskset -c 1 wrk -t1 -c1 -d"$(awk -v t="$TRACE" 'BEGIN{print int(t + 3)}')"s "$url" >"$tmp/wrk.out" &
  w=$!
  sleep 1.5
  taskset -c 1 perf record -q -a -m "$PERF_PAGES" -e "$events" -o "$tmp/perf.data" -- sleep "$TRACE" 2>/dev/null
  wait "$w"
  kill "$p"
  wait "$p" 2>/dev/null || true
  perf script -i "$tmp/perf.data" 2>/dev/null | "$BIN/timeline" -proxy "$comm" -name "$target"
done
