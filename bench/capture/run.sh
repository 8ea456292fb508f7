#!/bin/sh
# bench/capture: one sidecar hop taken by a captured connection vs the same hop as an explicit
# proxy vs direct, same run, HTTP/1.1 and TCP (lucid up --capture). Needs root: everything runs
# in a private network and mount namespace. Run it on a quiet machine; the table says the load.
#   bench/capture/run.sh
#   CAPTURE_ARGS="-duration 3s -rounds 1" bench/capture/run.sh
set -eu
cd "$(dirname "$0")/../.."
go build -o bench/.bin/lucid ./cmd/lucid
go build -o bench/.bin/capture ./bench/capture
exec unshare -n -m --propagation private sh -c 'ip link set lo up && exec bench/.bin/capture -lucid bench/.bin/lucid "$@"' capture ${CAPTURE_ARGS:-}
