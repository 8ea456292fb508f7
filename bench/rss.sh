#!/usr/bin/env bash
# Lucid sidecar memory: idle and peak RSS of one sidecar, and where it goes. Not a test.
#
#   bench/rss.sh                        # 3 rounds per protocol, 15 s of load each
#   RSS_ROUNDS=1 RSS_DURATION=5s bench/rss.sh
#   RSS_LUCID=/tmp/lucid-variant bench/rss.sh   # measure another build of the binary
#   RSS_SIDECAR_ARGS="--keep-startup-pages --gc-percent -1" bench/rss.sh
#
# Each round starts a fresh control plane and sidecar (the same setup as bench/run.sh: the
# sidecar's inbound listener in front of a fortio server), and reports:
#   idle     VmRSS after the sidecar is ready with its configuration and 2 s without load;
#   load max the largest VmRSS sampled every 0.2 s during RSS_DURATION at 1,000 rps,
#            16 connections, 1 KiB answers (as bench/run.sh's fixed-rate run);
#   VmHWM    the kernel's peak RSS after the load: the larger of the load's and the
#            start-up's peak (what bench/run.sh reports as peak RSS);
#   after    VmRSS at the end of the load.
# With RSS_MAP=1 (default) the last round also prints bench/rssmap's table by mapping (idle
# and after the load) and the packages owning the most resident pages of the binary.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
duration=${RSS_DURATION:-15s}
rounds=${RSS_ROUNDS:-3}
protos=${RSS_PROTOS:-http1 h2c}
showmap=${RSS_MAP:-1}
lucid=${RSS_LUCID:-}
read -r -a sidecar_args <<<"${RSS_SIDECAR_ARGS:-}"
fortio=$here/.bin/fortio
fortio_version=v1.68.2

# Same addresses as bench/run.sh (127.0.50.0/24, or BENCH_NET=127.0.X); do not run both
# on one network at once.
net=${BENCH_NET:-127.0.50}
upstream=$net.1:8080
lucid_ip=$net.5
discovery_ip=$net.9

source "$root/bench/lib.sh"
bench_init rss

wait_url() {
	local i h2=()
	[ "${2:-}" = h2c ] && h2=(--http2-prior-knowledge)
	for i in $(seq 150); do
		curl -sf "${h2[@]}" -o /dev/null --max-time 1 "$1" && return 0
		sleep 0.1
	done
	log "no answer from $1 after 15 s"
	return 1
}

kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

if [ ! -x "$fortio" ]; then
	log "installing fortio $fortio_version into bench/.bin"
	GOBIN=$here/.bin go install "fortio.org/fortio@$fortio_version"
fi
if [ -z "$lucid" ]; then
	lucid=$root/bin/lucid
	log "building lucid"
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$lucid" ./cmd/lucid)
fi
rssmap=$work/rssmap
(cd "$root" && go build -o "$rssmap" ./bench/rssmap)

start upstream "$fortio" server -http-port "$upstream" -grpc-port disabled -redirect-port disabled \
	-tcp-port disabled -udp-port disabled -data-dir "$work"
wait_url "http://$upstream/echo"

echo "| protocol | round | idle VmRSS MiB | load max VmRSS MiB | VmHWM MiB | VmRSS after load MiB | RssAnon after MiB | achieved rps | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|---|---|---|"
maps=()
for proto in $protos; do
	protocol=HTTP
	h2=()
	[ "$proto" = h2c ] && protocol=HTTP2 && h2=(-h2)
	mkdir -p "$work/cfg"
	cat >"$work/cfg/upstream.yaml" <<-EOF
		apiVersion: networking.istio.io/v1
		kind: ServiceEntry
		metadata: {name: upstream, namespace: default}
		spec:
		  hosts: [upstream.default.svc.cluster.local]
		  location: MESH_INTERNAL
		  resolution: STATIC
		  ports: [{number: 8080, name: http, protocol: $protocol}]
		  workloadSelector: {labels: {app: upstream}}
		---
		apiVersion: networking.istio.io/v1
		kind: WorkloadEntry
		metadata:
		  name: upstream
		  namespace: default
		  annotations: {lucid.dev/app-address: "${upstream%:*}"}
		spec:
		  address: $lucid_ip
		  labels: {app: upstream}
	EOF
	for round in $(seq "$rounds"); do
		start discovery "$lucid" discovery --config-dir "$work/cfg" \
			--grpc-addr "$discovery_ip:15010" --debug-addr "$discovery_ip:15014" --log-level warn
		dpid=$last_pid
		wait_url "http://$discovery_ip:15014/ready"
		start sidecar taskset -c 1 "$lucid" sidecar --ip "$lucid_ip" --workload upstream \
			--discovery-address "$discovery_ip:15010" --log-level warning "${sidecar_args[@]}"
		spid=$last_pid
		wait_url "http://$lucid_ip:15020/healthz/ready"
		url="http://$lucid_ip:8080/echo?size=1024"
		wait_url "$url" "$proto"
		sleep 2
		idle=$(kib "$spid" VmRSS)
		[ "$round" = "$rounds" ] && [ "$showmap" = 1 ] && maps+=("#### $proto, idle (ready, configured, no load)" "" "$("$rssmap" -pid "$spid" -top 20)" "")
		(
			set +e
			m=0
			while sleep 0.2; do
				v=$(kib "$spid" VmRSS)
				[ -n "$v" ] || break
				if [ "$v" -gt "$m" ]; then m=$v; fi
				echo "$m" >"$work/loadmax.tmp" && mv -f "$work/loadmax.tmp" "$work/loadmax"
			done
		) &
		sampler=$!
		# -r: percentiles from 1 µs buckets (fortio's default of 1 ms puts every answer under a
		# millisecond in one bucket; see run.sh's latency)
		out=$(timeout $(("${duration%s}" + 60)) "$fortio" load "${h2[@]}" -r 0.000001 -qps 1000 -uniform -c 16 \
			-t "$duration" -allow-initial-errors -quiet "$url" 2>&1)
		kill "$sampler" 2>/dev/null || true
		wait "$sampler" 2>/dev/null || true
		loadmax=$(cat "$work/loadmax" 2>/dev/null || echo 0)
		rm -f "$work/loadmax"
		peak=$(kib "$spid" VmHWM)
		after=$(kib "$spid" VmRSS)
		anon=$(kib "$spid" RssAnon)
		rate=$(echo "$out" | awk '/^All done/ {for (i = 1; i <= NF; i++) if ($i == "qps") printf "%.0f", $(i - 1)}')
		p50=$(echo "$out" | awk '/^Aggregated Function Time/ {f = 1} f && /^# target 50% / {printf "%.3f", $4 * 1000; exit}')
		p99=$(echo "$out" | awk '/^Aggregated Function Time/ {f = 1} f && /^# target 99% / {printf "%.3f", $4 * 1000; exit}')
		[ "$round" = "$rounds" ] && [ "$showmap" = 1 ] && maps+=("#### $proto, after $duration at 1,000 rps" "" "$("$rssmap" -pid "$spid" -top 0)" "")
		echo "| $proto | $round | $(mib "$idle") | $(mib "$loadmax") | $(mib "$peak") | $(mib "$after") | $(mib "$anon") | $rate | $p50 | $p99 |"
		stop "$spid"
		stop "$dpid"
	done
done
if [ ${#maps[@]} -gt 0 ]; then
	echo
	printf '%s\n' "${maps[@]}"
fi
