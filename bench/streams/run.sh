#!/bin/sh
# bench/streams: the dead-upstream soak (scenario 4 of docs/scenarios.md) with production timers, through Lucid,
# HAProxy and nginx. Needs root (a private network namespace and iptables).
#   bench/streams/run.sh                 # cap 5 min for a hung watch, quiet stream 10 min
#   STREAMS_ARGS="-cap 1m -quiet 2m" bench/streams/run.sh
set -eu
cd "$(dirname "$0")/../.."
go build -o bench/.bin/streams ./bench/streams
exec unshare -n sh -c 'ip link set lo up && exec bench/.bin/streams "$@"' streams ${STREAMS_ARGS:-}
