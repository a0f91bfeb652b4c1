#!/usr/bin/env bash
# bench/floor.sh - what ocsiproxy's structure and its HTTP work each cost
# per request, against nginx and against the least a Go relay can do
# (bench/floor: a measuring stick, not a proxy). One scenario: GET / with
# a 64-byte answer over 64 keep-alive connections (CONNS); every target and the
# backend pinned to PROXY_CPUS, wrk to LOAD_CPUS; no access logs (nginx's
# off, ocsiproxy's to /dev/null). Targets run in turns, ROUNDS times;
# the table has each one's medians: requests/s, p99, CPU per request
# (user and system, from /proc, the target's processes only) and CPU as
# a multiple of nginx's.
#
#   bench/floor.sh                       # ROUNDS=3 DURATION=8
#   ROUNDS=5 bench/floor.sh
# Needs wrk and nginx (installed with apt-get when missing), taskset.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=$ROOT/bench/.bin
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-8} WARMUP=${WARMUP:-2} CONNS=${CONNS:-64}
PROXY_CPUS=${PROXY_CPUS:-0} LOAD_CPUS=${LOAD_CPUS:-1} PORT_BASE=${PORT_BASE:-18400} # and the next 9 ports

missing=()
for c in wrk nginx taskset; do command -v $c >/dev/null || missing+=($c); done
if ((${#missing[@]})); then
  SUDO=; [[ $(id -u) == 0 ]] || SUDO=sudo
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]/taskset/util-linux}"
  command -v systemctl >/dev/null && $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
fi
mkdir -p "$BIN"
go build -o "$BIN/ocsiproxy" .
go build -o "$BIN/backend" ./bench/backend
go build -o "$BIN/floor" ./bench/floor

run=$(mktemp -d /tmp/ocsiproxy-floor.XXXXXX)
pgids=()
cleanup() {
  for g in "${pgids[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
  rm -rf "$run"
}
trap cleanup EXIT INT TERM

# start NAME CMD...: starts CMD pinned to PROXY_CPUS in a process group
# of its own; its group id goes in pgids and in $run/NAME.pgid.
start() {
  local name=$1; shift
  setsid taskset -c "$PROXY_CPUS" "$@" >"$run/$name.log" 2>&1 &
  pgids+=($!)
  echo $! >"$run/$name.pgid"
}

backend=$PORT_BASE
start backend "$BIN/backend" -listen 127.0.0.1:$backend

mkdir -p "$run/nginx/logs" "$run/nginx/tmp"
cat >"$run/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process on;
pid $run/nginx/nginx.pid;
error_log $run/nginx/logs/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    client_body_temp_path $run/nginx/tmp/body;
    proxy_temp_path $run/nginx/tmp/proxy;
    fastcgi_temp_path $run/nginx/tmp/fastcgi;
    uwsgi_temp_path $run/nginx/tmp/uwsgi;
    scgi_temp_path $run/nginx/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    upstream backend { server 127.0.0.1:$backend; keepalive 128; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$((PORT_BASE + 1)) backlog=4096;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
        location / { proxy_pass http://backend; }
    }
}
CONF
start nginx nginx -p "$run/nginx" -c "$run/nginx/nginx.conf"

mkdir -p "$run/ocsiproxy/log" "$run/ocsiproxy/data"
ln -s /dev/null "$run/ocsiproxy/log/access.log"
cat >"$run/ocsiproxy/ocsiproxy.conf" <<CONF
<ocsigen>
  <server>
    <port>127.0.0.1:$((PORT_BASE + 2))</port>
    <logdir>$run/ocsiproxy/log</logdir>
    <datadir>$run/ocsiproxy/data</datadir>
    <keepalivetimeout>300</keepalivetimeout>
    <extension findlib-package="ocsigenserver.ext.revproxy"/>
    <host hostfilter="*">
      <revproxy suburl="(.*)" dest="http://127.0.0.1:$backend/\1"/>
    </host>
  </server>
</ocsigen>
CONF
start ocsiproxy "$BIN/ocsiproxy" -s -c "$run/ocsiproxy/ocsiproxy.conf"

# name:flags of the floor's variants, each on a port of its own.
variants=(
  "floor:"
  "floor+reader:-reader"
  "floor+handoff:-handoff"
  "floor+deadlines:-deadlines"
  "floor+alloc:-alloc 3072"
  "floor+all:-reader -handoff -deadlines -alloc 3072"
  # ocsiproxy moves its deadlines lazily (about once a second, not per
  # call): its structure is the rest.
  "floor+structure:-reader -handoff -alloc 3072"
)
targets=("nginx:$((PORT_BASE + 1))" "ocsiproxy:$((PORT_BASE + 2))")
port=$((PORT_BASE + 3))
for v in "${variants[@]}"; do
  name=${v%%:*} flags=${v#*:}
  # shellcheck disable=SC2086
  start "$name" "$BIN/floor" -listen 127.0.0.1:$port -backend 127.0.0.1:$backend $flags
  targets+=("$name:$port")
  port=$((port + 1))
done

# up PORT: waits until GET / on PORT answers 200.
up() {
  for _ in $(seq 100); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/") == 200 ]] && return 0
    sleep 0.1
  done
  echo "floor.sh: nothing answers on port $1" >&2
  return 1
}
for t in "${targets[@]}"; do up "${t#*:}"; done

# cpu NAME: user and system clock ticks of the processes in NAME's group.
cpu() {
  local g; g=$(cat "$run/$1.pgid")
  awk -v g="$g" '$5 == g {u += $14; s += $15} END {print u + 0, s + 0}' /proc/[0-9]*/stat 2>/dev/null
}
hz=$(getconf CLK_TCK)
for r in $(seq "$ROUNDS"); do
  for t in "${targets[@]}"; do
    name=${t%%:*} port=${t#*:}
    taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$port/" >/dev/null
    read -r u0 s0 < <(cpu "$name")
    out=$(taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$port/")
    read -r u1 s1 < <(cpu "$name")
    echo "$out" | awk -v name="$name" -v hz="$hz" -v u=$((u1 - u0)) -v s=$((s1 - s0)) '
      /requests in/ {n = $1}
      /Requests\/sec/ {rps = $2}
      $1 == "99%" {p = $2; ms = p + 0; if (p ~ /us$/) ms /= 1000; else if (p ~ /[^m]s$/) ms *= 1000}
      END {printf "%s %.0f %.3f %.2f %.2f\n", name, rps, ms, u * 1e6 / hz / n, s * 1e6 / hz / n}' >>"$run/results"
  done
done

echo
echo "floor.sh: GET / (64-byte answer), $CONNS connection(s), ${ROUNDS} round(s) of ${DURATION}s, medians; CPU from /proc"
awk '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) {t = a[j]; a[j] = a[j-1]; a[j-1] = t}
    return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
  }
  !($1 in seen) {seen[$1] = 1; order[++k] = $1}
  {c = ++cnt[$1]; rps[$1, c] = $2; p99[$1, c] = $3; usr[$1, c] = $4; sys[$1, c] = $5; tot[$1, c] = $4 + $5}
  END {
    printf "%16s %8s %8s %9s %8s %9s %9s\n", "target", "req/s", "p99 ms", "user us", "sys us", "CPU us", "x nginx"
    for (i = 1; i <= k; i++) {
      t = order[i]; n = cnt[t]
      split("", a); for (j = 1; j <= n; j++) a[j] = tot[t, j]; m[t] = median(a, n)
    }
    for (i = 1; i <= k; i++) {
      t = order[i]; n = cnt[t]
      split("", a); for (j = 1; j <= n; j++) a[j] = rps[t, j]; r = median(a, n)
      split("", a); for (j = 1; j <= n; j++) a[j] = p99[t, j]; p = median(a, n)
      split("", a); for (j = 1; j <= n; j++) a[j] = usr[t, j]; u = median(a, n)
      split("", a); for (j = 1; j <= n; j++) a[j] = sys[t, j]; s = median(a, n)
      printf "%16s %8.0f %8.3f %9.1f %8.1f %9.1f %9.2f\n", t, r, p, u, s, m[t], m[t] / m["nginx"]
    }
  }' "$run/results"
