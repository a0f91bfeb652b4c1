#!/usr/bin/env bash
# bench/floor.sh - what ocsiproxy's structure and its HTTP work each cost
# per request: the suite (bench/run.sh) in the small scenario, without
# access logs, for nginx, ocsiproxy and bench/floor (a measuring stick,
# not a proxy: the least a Go program does to relay keep-alive GETs), plain
# and with each of ocsiproxy's structural costs added (see bench/floor's
# doc comment and bench/suite/floor.go). Any setting of run.sh applies:
#
#   bench/floor.sh                       # ROUNDS=3
#   SCENARIOS=lat1 ROUNDS=2 bench/floor.sh
set -euo pipefail
export TARGETS=${TARGETS:-"nginx ocsiproxy floor floor+reader floor+handoff floor+deadlines floor+alloc floor+all floor+structure"}
export SCENARIOS=${SCENARIOS:-small} LOGS=${LOGS:-off} ROUNDS=${ROUNDS:-3}
exec "$(dirname "$0")/run.sh" "$@"
