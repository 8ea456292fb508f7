#!/bin/sh
# bench/mtls: Lucid's mutual TLS between two sidecars vs the same pair in plaintext vs
# HAProxy as two hops with TLS (and without), same run, interleaved, loopback only:
# keep-alive requests/s and new connections/s (a full handshake each), HTTP/1.1 and h2
# between the hops, CPU per request of each pair from /proc. Needs root (a network
# namespace of its own), haproxy and nginx (apt-get install haproxy nginx-light).
# The bench runs on CPU 0, the proxies on CPU 1.
#   bench/mtls/run.sh
#   MTLS_ARGS="-rounds 1 -duration 3s" bench/mtls/run.sh
#   MTLS_ARGS="-profile /tmp/mtls-prof" bench/mtls/run.sh
#
# In its namespace, closed connections leave no TIME_WAIT sockets (tcp_max_tw_buckets 0)
# and the whole port range is ephemeral: thousands of new connections per second to one
# address otherwise fill the range within seconds, and connect()'s search for a free
# port, not TLS, becomes most of the CPU of the proxy that closes first.
set -eu
cd "$(dirname "$0")/../.."
lucid=${MTLS_LUCID:-bench/.bin/lucid}
if [ -z "${MTLS_LUCID:-}" ]; then
	CGO_ENABLED=0 go build -trimpath -o "$lucid" ./cmd/lucid
fi
go build -o bench/.bin/mtls ./bench/mtls
# shellcheck disable=SC2016 # expanded by the inner shell
exec unshare -n sh -c 'ip link set lo up &&
	echo 0 >/proc/sys/net/ipv4/tcp_max_tw_buckets &&
	echo "1024 65535" >/proc/sys/net/ipv4/ip_local_port_range &&
	exec taskset -c 0 bench/.bin/mtls -lucid "$0" "$@"' "$lucid" ${MTLS_ARGS:-}
