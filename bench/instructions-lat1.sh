#!/usr/bin/env bash
# bench/instructions-lat1.sh - user-space instructions per proxied request
# at one connection, for ocsiproxy and nginx counted the same way: the
# proxy alone runs under valgrind's callgrind (bench/backend and wrk run
# outside it, each pinned: proxy and backend on CPU 0, wrk on CPU 1), wrk
# loads it with one connection, the counters are zeroed after a warm-up
# and dumped after DURATION seconds. The Go runtime's instructions count
# for ocsiproxy, libc's for nginx. A figure that does not move with the
# machine's load, for the lat1 scenario, where user time is the gap.
#
#   bench/instructions-lat1.sh                 # ocsiproxy and nginx
#   TARGETS=ocsiproxy DURATION=10 bench/instructions-lat1.sh
#   KEEP=/tmp/lat1 bench/instructions-lat1.sh  # keep the dumps there, for
#                                              # callgrind_annotate
#
# Needs valgrind, wrk and (for nginx) nginx; uses ports PORT_BASE to
# PORT_BASE+2 (18700).
set -euo pipefail
cd "$(dirname "$0")/.."
for c in valgrind callgrind_control wrk taskset; do
  command -v "$c" >/dev/null || { echo "instructions-lat1.sh: $c is not installed" >&2; exit 1; }
done
TARGETS=${TARGETS:-ocsiproxy nginx}
DURATION=${DURATION:-5}
PORT_BASE=${PORT_BASE:-18700}
backend_port=$PORT_BASE
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/ocsiproxy" .
go build -o "$tmp/backend" ./bench/backend
taskset -c 0 "$tmp/backend" -listen "127.0.0.1:$backend_port" >/dev/null 2>&1 &
pids+=($!)

wait_port() { # port
  for _ in $(seq 120); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.5
  done
  echo "instructions-lat1.sh: nothing listens on port $1" >&2
  return 1
}

for t in $TARGETS; do
  out=$tmp/callgrind.$t
  case $t in
  ocsiproxy)
    port=$((PORT_BASE + 1))
    mkdir -p "$tmp/ocsi"
    cat >"$tmp/ocsi/ocsiproxy.conf" <<EOF
<ocsigen><server><port>127.0.0.1:$port</port><logdir>$tmp/ocsi</logdir><datadir>$tmp/ocsi</datadir>
<extension findlib-package="ocsigenserver.ext.revproxy"/>
<host hostfilter="*"><revproxy suburl="(.*)" dest="http://127.0.0.1:$backend_port/\1"/></host></server></ocsigen>
EOF
    # One P, no asynchronous preemption (callgrind follows neither), and
    # schedtrace set so that the program does not start itself again
    # (internal/schedtune) out of valgrind's sight; RDTSCP off: valgrind does
    # not know it (SIGILL in the runtime's cputicks).
    GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1,schedtrace=2147483647,cpu.rdtscp=off taskset -c 0 \
      valgrind --tool=callgrind --callgrind-out-file="$out" "$tmp/ocsiproxy" -c "$tmp/ocsi/ocsiproxy.conf" \
      >"$tmp/$t.log" 2>&1 &
    ;;
  nginx)
    command -v nginx >/dev/null || { echo "instructions-lat1.sh: nginx is not installed" >&2; exit 1; }
    port=$((PORT_BASE + 2))
    mkdir -p "$tmp/ng/logs" "$tmp/ng/tmp"
    cat >"$tmp/ng/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
pid $tmp/ng/nginx.pid;
error_log $tmp/ng/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log $tmp/ng/logs/access.log combined;
    client_body_temp_path $tmp/ng/tmp/body; proxy_temp_path $tmp/ng/tmp/proxy;
    fastcgi_temp_path $tmp/ng/tmp/f; uwsgi_temp_path $tmp/ng/tmp/u; scgi_temp_path $tmp/ng/tmp/s;
    keepalive_requests 1000000; keepalive_timeout 300s;
    upstream backend { server 127.0.0.1:$backend_port; keepalive 16; }
    server {
        listen 127.0.0.1:$port;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        location / { proxy_pass http://backend; }
    }
}
EOF
    taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out" nginx -c "$tmp/ng/nginx.conf" -p "$tmp/ng" \
      >"$tmp/$t.log" 2>&1 &
    ;;
  *) echo "instructions-lat1.sh: unknown target $t" >&2; exit 1 ;;
  esac
  pid=$!
  pids+=("$pid")
  wait_port "$port"
  taskset -c 1 wrk -t1 -c1 -d2s "http://127.0.0.1:$port/" >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1
  n=$(taskset -c 1 wrk -t1 -c1 -d"${DURATION}s" "http://127.0.0.1:$port/" | awk '/requests in/ {print $1}')
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  dump=$(ls -t "$out".* 2>/dev/null | head -1)
  [ -n "$dump" ] || { echo "instructions-lat1.sh: no dump from $t (see $tmp/$t.log)" >&2; exit 1; }
  total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"
    cp "$dump" "$KEEP/callgrind.$t"
    echo "$n" >"$KEEP/requests.$t"
  fi
  echo "$t: $((total / n)) instructions per request ($n requests in ${DURATION}s under callgrind, one connection)"
done
