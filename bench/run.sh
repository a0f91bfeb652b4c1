#!/usr/bin/env bash
# bench/run.sh - ocsiproxy's benchmark suite (see docs/benchmarks.md).
#
# Installs what is missing (wrk, nginx, haproxy) with apt-get, builds
# ocsiproxy, the backend, the idle-connection tool and the driver into
# bench/.bin, then runs the driver, which starts every server on
# 127.0.0.1 in a process group of its own, loads them in turn and stops
# them by process group when it ends (also on Ctrl-C or SIGTERM).
#
# Settings are environment variables (or the driver's flags, after --):
#   TARGETS="ocsiproxy nginx haproxy"
#   SCENARIOS="small 1k 64k lat1 idle rules groups"
#   DURATION=10 WARMUP=2 ROUNDS=1 CONNS=64 IDLE_CONNS=10000 RULES=10000
#   PIN=split (PROXY_CPUS=0 LOAD_CPUS=1) | none   LOGS=on|off   PORT_BASE=18300   OUT=dir
#   TLS=on|off (on: every target serves HTTPS with a certificate made for
#   the run, and wrk and the idle tool speak it; no floor targets then)
#
# The groups scenario compares ocsiproxy with one upstream and with a
# round-robin <upstream name=...> group of three backends (two more
# bench/backend processes, on PORT_BASE+10 and +11); nginx too when it is
# a target. The suite uses PORT_BASE to PORT_BASE+13, and one more port
# per floor target (see docs/benchmarks.md).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=$ROOT/bench/.bin

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v taskset >/dev/null || missing+=(util-linux)
for t in ${TARGETS:-nginx haproxy}; do
  case $t in
    nginx|haproxy) command -v "$t" >/dev/null || missing+=("$t") ;;
  esac
done
if ((${#missing[@]})); then
  echo "run.sh: installing ${missing[*]} with apt-get" >&2
  SUDO=
  [[ $(id -u) == 0 ]] || SUDO=sudo
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  # The packages' own services are not needed (and hold port 80).
  for s in nginx haproxy; do
    if [[ " ${missing[*]} " == *" $s "* ]] && command -v systemctl >/dev/null; then
      $SUDO systemctl disable --now "$s" >/dev/null 2>&1 || true
    fi
  done
fi

mkdir -p "$BIN"
go build -o "$BIN/ocsiproxy" .
for p in backend idle floor suite; do
  go build -o "$BIN/$p" "./bench/$p"
done

exec "$BIN/suite" -bin "$BIN" "$@"
