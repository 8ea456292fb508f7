#!/usr/bin/env bash
# Lucid benchmark: one sidecar hop vs direct vs HAProxy vs nginx, on loopback, HTTP/1.1 and
# h2c. Not a test: it measures and writes its section of bench/RESULTS.md (the rest of the
# file is left as it is). See bench/README.md.
#
#   bench/run.sh                                   # everything: 3 rounds of 10 s per target
#   BENCH_DURATION=3s BENCH_ROUNDS=1 BENCH_TARGETS="direct haproxy nginx" bench/run.sh   # quick dry run
#   BENCH_TARGETS="direct lucid nginx gofloor" BENCH_PROTOS=http1 bench/run.sh   # with the Go floor
#
# Targets: direct, lucid, lucid-base, haproxy, nginx, and gofloor (HTTP/1.1 only: bench/gofloor,
# about the least a Go proxy does per request, through Lucid's socket layer).
#
# Every process it starts is killed on exit; every measurement is bounded in time.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
duration=${BENCH_DURATION:-10s} # per round: the fixed-rate load, and the max-rps load once
rounds=${BENCH_ROUNDS:-3}
targets=${BENCH_TARGETS:-direct lucid haproxy nginx}
protos=${BENCH_PROTOS:-http1 h2c}
results=${BENCH_RESULTS:-$here/RESULTS.md}
fortio_version=v1.68.2
qps=1000
conns=16
size=1024

# Loopback addresses, all in 127.0.50.0/24 so nothing clashes with `lucid up` examples
# (BENCH_NET=127.0.X moves them, so that two runs on one machine do not collide).
net=${BENCH_NET:-127.0.50}
upstream=$net.1:8080 # fortio server (the app)
haproxy_addr=$net.2:8080
nginx_addr=$net.3:8080
gofloor_addr=$net.6:8080
lucid_ip=$net.5 # the sidecar's workload address; inbound listener on :8080
discovery_ip=$net.9

secs=${duration%s}
source "$root/bench/lib.sh"
bench_init bench

# wait_http URL [PROTO]: until URL answers (any status), at most 15 s.
wait_http() {
	local i h2=()
	[ "${2:-}" = h2c ] && h2=(--http2-prior-knowledge)
	for i in $(seq 150); do
		if curl -s "${h2[@]}" -o /dev/null --max-time 1 "$1"; then return 0; fi
		sleep 0.1
	done
	log "no answer from $1 after 15 s"
	return 1
}

# --- dependencies -------------------------------------------------------------------------
need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v taskset >/dev/null || need_apt+=(util-linux)
[[ " $targets " == *" haproxy "* ]] && ! command -v haproxy >/dev/null && need_apt+=(haproxy)
[[ " $targets " == *" nginx "* ]] && ! command -v nginx >/dev/null && need_apt+=(nginx-light)
[[ " $protos " == *" h2c "* ]] && ! command -v h2load >/dev/null && need_apt+=(nghttp2-client)
if [ ${#need_apt[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		log "missing packages: ${need_apt[*]} (apt-get install them, or run as root)"
		exit 1
	fi
	log "installing ${need_apt[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null
fi
fortio=$here/.bin/fortio
if [ ! -x "$fortio" ]; then
	log "installing fortio $fortio_version into bench/.bin"
	GOBIN=$here/.bin go install "fortio.org/fortio@$fortio_version"
fi
lucid=${BENCH_LUCID:-$root/bin/lucid}
lucid_rev="the binary $lucid (given)"
read -r -a sidecar_args <<<"${BENCH_SIDECAR_ARGS:-}"
# lucid-base: the sidecar without its memory settings (Go's GC defaults, startup pages kept),
# to compare with in the same run.
base_args=(--keep-startup-pages --gc-percent -1)
if [[ " $targets " == *" lucid"* ]] && [ -z "${BENCH_LUCID:-}" ]; then
	log "building lucid"
	lucid_rev=$(lucid_revision)
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$lucid" ./cmd/lucid)
fi

gofloor=$work/gofloor
if [[ " $targets " == *" gofloor "* ]]; then
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$gofloor" ./bench/gofloor)
fi

# --- the upstream: a fortio server answering 1 KiB bodies ---------------------------------
start upstream taskset -c 0 "$fortio" server -http-port "$upstream" -grpc-port disabled -redirect-port disabled \
	-tcp-port disabled -udp-port disabled -data-dir "$work"
wait_http "http://$upstream/echo"

# --- measurement helpers ------------------------------------------------------------------

# cpu_ticks PIDS...: utime+stime of the processes, in clock ticks.
cpu_ticks() {
	local total=0 pid f
	for pid in "$@"; do
		# fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends the name
		f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
		total=$((total + $(echo "$f" | awk '{print $12 + $13}')))
	done
	echo "$total"
}

# rss_kib PIDS...: the sum of VmRSS.
rss_kib() {
	local total=0 pid v
	for pid in "$@"; do
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}

# sample_rss FILE PIDS...: every 0.2 s, writes the largest VmRSS sum seen so far to FILE
# (run it in the background during a measurement; VmHWM also counts the start-up).
sample_rss() {
	local file=$1 m=0 v
	shift
	set +e
	while sleep 0.2; do
		v=$(rss_kib "$@")
		[ "$v" -gt "$m" ] && m=$v
		echo "$m" >"$file.tmp" && mv -f "$file.tmp" "$file" # never a half-written file
	done
}

# peak_rss_kib PIDS...: the sum of VmHWM.
peak_rss_kib() {
	local total=0 pid v
	for pid in "$@"; do
		v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}

# latency URL PROTO PIDS...: fixed-rate load on CPU 0; sets p50 p90 p99 (ms), rate, cpu (% of
# a core per 1000 rps, over PIDS), errors. -r sets fortio's histogram to 1 µs at the low end:
# at its default (1 ms) every answer under a millisecond falls in one bucket and a
# percentile is interpolated between the fastest answer and 1 ms, whatever the answers were.
latency() {
	local url=$1 proto=$2
	shift 2
	local h2=() out t0 t1 hz
	[ "$proto" = h2c ] && h2=(-h2)
	hz=$(getconf CLK_TCK)
	t0=$(cpu_ticks "$@")
	out=$(timeout $((secs + 60)) taskset -c 0 "$fortio" load "${h2[@]}" -r 0.000001 -qps "$qps" -uniform -c "$conns" \
		-t "$duration" -allow-initial-errors -quiet "$url" 2>&1) || { log "fortio failed: $out"; return 1; }
	t1=$(cpu_ticks "$@")
	p50=$(echo "$out" | awk '/^Aggregated Function Time/ {f = 1} f && /^# target 50% / {printf "%.3f", $4 * 1000; exit}')
	p90=$(echo "$out" | awk '/^Aggregated Function Time/ {f = 1} f && /^# target 90% / {printf "%.3f", $4 * 1000; exit}')
	p99=$(echo "$out" | awk '/^Aggregated Function Time/ {f = 1} f && /^# target 99% / {printf "%.3f", $4 * 1000; exit}')
	rate=$(echo "$out" | awk '/^All done/ {for (i = 1; i <= NF; i++) if ($i == "qps") printf "%.0f", $(i - 1)}')
	errors=$(echo "$out" | awk '/^Code / && $2 != 200 {n += $4} END {print n + 0}')
	if [ $# -gt 0 ] && [ -n "$rate" ] && [ "$rate" != 0 ]; then
		cpu=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$secs" -v r="$rate" 'BEGIN {printf "%.1f", d / hz / s * 100 / (r / 1000)}')
	else
		cpu="-"
	fi
}

# maxrps URL PROTO: requests/s with unlimited rate (fortio for HTTP/1.1, h2load for h2c),
# the load on CPU 0 beside the upstream, so that it never takes the proxy's core.
maxrps() {
	local url=$1 proto=$2 out
	if [ "$proto" = h2c ]; then
		out=$(timeout $((secs + 60)) taskset -c 0 h2load -c "$conns" -m 10 -D "$secs" "$url" 2>&1) || { log "h2load failed: $out"; return 1; }
		max=$(echo "$out" | awk '/^finished in/ {for (i = 1; i <= NF; i++) if ($i == "req/s,") printf "%.0f", $(i - 1)}')
	else
		out=$(timeout $((secs + 60)) taskset -c 0 "$fortio" load -qps 0 -c "$conns" -t "$duration" -quiet "$url" 2>&1) || { log "fortio failed: $out"; return 1; }
		max=$(echo "$out" | awk '/^All done/ {for (i = 1; i <= NF; i++) if ($i == "qps") printf "%.0f", $(i - 1)}')
	fi
}

# --- the peers ----------------------------------------------------------------------------

# start_target NAME PROTO: starts the proxy (pinned to CPU 1); sets url and ppids (the
# processes whose CPU and memory count).
start_target() {
	local name=$1 proto=$2
	ppids=()
	case "$name" in
	direct)
		url="http://$upstream/echo?size=$size"
		;;
	haproxy)
		local bind_proto="" srv_proto=""
		[ "$proto" = h2c ] && bind_proto="proto h2" && srv_proto="proto h2"
		cat >"$work/haproxy.cfg" <<-EOF
			global
			  nbthread 1
			  maxconn 4096
			defaults
			  mode http
			  timeout connect 5s
			  timeout client 60s
			  timeout server 60s
			  option http-keep-alive
			  http-reuse always
			frontend bench
			  bind $haproxy_addr $bind_proto
			  default_backend upstream
			backend upstream
			  server app $upstream $srv_proto
		EOF
		start haproxy taskset -c 1 haproxy -db -f "$work/haproxy.cfg"
		ppids=("$last_pid")
		url="http://$haproxy_addr/echo?size=$size"
		;;
	nginx)
		local http2=""
		[ "$proto" = h2c ] && http2="http2" # h2c with prior knowledge
		mkdir -p "$work/nginx"
		cat >"$work/nginx.conf" <<-EOF
			# one process (no master): the worker is the process measured
			daemon off;
			master_process off;
			pid $work/nginx/nginx.pid;
			error_log $work/nginx/error.log warn;
			events { worker_connections 4096; }
			http {
			  access_log off;
			  client_body_temp_path $work/nginx;
			  proxy_temp_path $work/nginx;
			  # nginx ends a client connection after keepalive_requests (1,000 by default,
			  # HTTP/2 included: GOAWAY), and h2load does not reconnect: a bound the others
			  # do not have.
			  keepalive_requests 1000000;
			  http2_max_requests 1000000;
			  upstream app { server $upstream; keepalive 64; }
			  server {
			    listen $nginx_addr $http2;
			    location / {
			      proxy_pass http://app;
			      proxy_http_version 1.1;
			      proxy_set_header Connection "";
			    }
			  }
			}
		EOF
		start nginx taskset -c 1 nginx -c "$work/nginx.conf" -p "$work/nginx"
		ppids=("$last_pid")
		url="http://$nginx_addr/echo?size=$size"
		;;
	gofloor)
		start gofloor env GOMAXPROCS=1 taskset -c 1 "$gofloor" -listen "$gofloor_addr" -upstream "$upstream"
		ppids=("$last_pid")
		url="http://$gofloor_addr/echo?size=$size"
		;;
	lucid | lucid-base)
		local args=("${sidecar_args[@]}")
		[ "$name" = lucid-base ] && args=("${base_args[@]}")
		local protocol=HTTP
		[ "$proto" = h2c ] && protocol=HTTP2
		mkdir -p "$work/lucid"
		cat >"$work/lucid/upstream.yaml" <<-EOF
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
		start discovery "$lucid" discovery --config-dir "$work/lucid" \
			--grpc-addr "$discovery_ip:15010" --debug-addr "$discovery_ip:15014" --log-level warn
		wait_http "http://$discovery_ip:15014/ready" || { tail -n 20 "$work/discovery.log" >&2; return 1; }
		start sidecar taskset -c 1 "$lucid" sidecar --ip "$lucid_ip" --workload upstream \
			--discovery-address "$discovery_ip:15010" --log-level warning "${args[@]}"
		ppids=("$last_pid")
		local i
		for i in $(seq 150); do
			curl -sf -o /dev/null --max-time 1 "http://$lucid_ip:15020/healthz/ready" && break
			sleep 0.1
		done
		# one sidecar hop: the sidecar's inbound listener, forwarding to the app
		url="http://$lucid_ip:8080/echo?size=$size"
		;;
	*)
		log "unknown target $name"
		return 1
		;;
	esac
	if ! wait_http "$url" "$proto"; then
		log "$name did not start; its log:"
		tail -n 20 "$work"/*.log >&2 || true
		return 1
	fi
}

stop_target() {
	local pid
	for pid in "${pids[@]:1}"; do stop "$pid"; done
	pids=("${pids[0]}") # keep the upstream
}

# --- run ----------------------------------------------------------------------------------
# Rounds interleave the targets (each round starts with another one, every target restarted),
# and each round has its own direct measurement: a target's added p50 in a round is its p50
# minus direct's in that round, and the table shows medians over the rounds.
declare -A r_p50 r_p90 r_p99 r_rate r_cpu r_rss r_loadrss errs maxr
rows=()
for round in $(seq "$rounds"); do
	for proto in $protos; do
		# shellcheck disable=SC2046 # the targets are words
		for name in $(rotated $((round - 1)) $targets); do
			[ "$name/$proto" = gofloor/h2c ] && continue # HTTP/1.1 only
			log "round $round $name $proto: starting"
			start_target "$name" "$proto"
			log "round $round $name $proto: $qps qps for $duration"
			sampler=""
			rm -f "$work/loadrss"
			if [ ${#ppids[@]} -gt 0 ]; then
				sample_rss "$work/loadrss" "${ppids[@]}" &
				sampler=$!
			fi
			latency "$url" "$proto" "${ppids[@]}"
			rss="-"     # peak RSS up to the end of the fixed-rate run (before the max-rps run)
			loadrss="-" # the largest RSS sampled during the fixed-rate run
			if [ -n "$sampler" ]; then
				kill "$sampler" 2>/dev/null || true
				wait "$sampler" 2>/dev/null || true
				rss=$(awk -v k="$(peak_rss_kib "${ppids[@]}")" 'BEGIN {printf "%.1f", k / 1024}')
				loadrss=$(awk -v k="$(cat "$work/loadrss" 2>/dev/null || echo 0)" 'BEGIN {printf "%.1f", k / 1024}')
			fi
			k=$proto/$name
			r_p50[$k]+="$p50 " r_p90[$k]+="$p90 " r_p99[$k]+="$p99 " r_rate[$k]+="$rate "
			[ "$cpu" = - ] || r_cpu[$k]+="$cpu "
			[ "$rss" = - ] || r_rss[$k]+="$rss "
			[ "$loadrss" = - ] || r_loadrss[$k]+="$loadrss "
			errs[$k]=$((${errs[$k]:-0} + errors))
			rows+=("| $round | $proto | $name | $p50 | $p90 | $p99 | $rate | $errors | $cpu | $rss | $loadrss |")
			log "round $round $name $proto: p50 ${p50}ms p90 ${p90}ms p99 ${p99}ms, cpu ${cpu}%/1000rps, rss ${rss}MiB"
			if [ "$round" = "$rounds" ]; then
				log "$name $proto: max rps for $duration"
				maxrps "$url" "$proto"
				maxr[$k]=$max
			fi
			stop_target
		done
	done
done

# added_p50 PROTO NAME: the median over the rounds of NAME's p50 minus direct's p50 in the
# same round ("-" without direct).
added_p50() {
	local -a a b
	read -r -a a <<<"${r_p50[$1/$2]}"
	read -r -a b <<<"${r_p50[$1/direct]:-}"
	if [ "$2" = direct ] || [ ${#b[@]} -ne ${#a[@]} ]; then
		echo -
		return
	fi
	local i out=""
	for i in "${!a[@]}"; do out+="$(awk -v x="${a[$i]}" -v y="${b[$i]}" 'BEGIN {printf "%.3f", x - y}') "; done
	echo "$out" | median | awk '{printf "%+.3f", $1}'
}

or_dash() { if [ -n "$1" ]; then echo "$1"; else echo -; fi; }

summary=()
for proto in $protos; do
	for name in $targets; do
		[ "$name/$proto" = gofloor/h2c ] && continue
		k=$proto/$name
		summary+=("| $name | $proto | $(echo "${r_p50[$k]}" | median) | $(echo "${r_p90[$k]}" | median) | $(echo "${r_p99[$k]}" | median) | $(added_p50 "$proto" "$name") | $(echo "${r_rate[$k]}" | median) | ${errs[$k]} | ${maxr[$k]:-} | $(or_dash "$(echo "${r_cpu[$k]:-}" | median)") | $(or_dash "$(echo "${r_rss[$k]:-}" | largest)") | $(or_dash "$(echo "${r_loadrss[$k]:-}" | largest)") |")
	done
done

# --- results ------------------------------------------------------------------------------
model=$(lscpu | awk -F: '/^Model name/ {gsub(/^ +/, "", $2); print $2; exit}')
{
	echo "Generated by \`bench/run.sh\` on $(date -u +%Y-%m-%dT%H:%MZ). Not a test: numbers from one run on one machine."
	echo
	echo "- Machine: $model, $(nproc) cores, Linux $(uname -r)"
	echo "- Lucid: $lucid_rev"
	echo "- Peers: $(command -v haproxy >/dev/null && haproxy -v 2>&1 | sed -n 1p || echo 'haproxy not run'); $(command -v nginx >/dev/null && nginx -v 2>&1 || echo 'nginx not run')"
	echo "- Load: fortio $fortio_version, h2load ($(command -v h2load >/dev/null && h2load --version 2>&1 | head -1 || echo 'not run'))"
	echo
	echo "## Commands"
	echo
	echo '```'
	echo "upstream:  fortio server -http-port $upstream   (1 KiB answers: /echo?size=$size)"
	echo "latency:   taskset -c 0 fortio load [-h2] -r 0.000001 -qps $qps -uniform -c $conns -t $duration URL   ($rounds rounds)"
	echo "max rps:   taskset -c 0 fortio load -qps 0 -c $conns -t $duration URL          (HTTP/1.1)"
	echo "           taskset -c 0 h2load -c $conns -m 10 -D $secs URL                    (h2c)"
	echo "proxies:   taskset -c 1 (one core); HAProxy nbthread 1; nginx one process (master_process off), upstream keepalive"
	echo "           the upstream and both loads on CPU 0 (taskset -c 0): max rps is then bounded by that core for"
	echo "           the faster proxies (bench/saturate.sh gives requests/s per proxy core)"
	echo "lucid:     one sidecar hop: the load targets the sidecar's inbound listener ($lucid_ip:8080),"
	echo "           which forwards to the upstream (the workload's app)"
	echo '```'
	echo
	echo "## Results"
	echo
	echo "Latency in ms at a fixed $qps rps, medians over $rounds interleaved rounds of $duration (every target"
	echo "restarted in each round, each round starting with another target); \"added p50\" is the median"
	echo "over the rounds of p50 minus direct's p50 in the same round. CPU is the proxy's CPU time as % of"
	echo "one core per 1,000 rps over the fixed-rate run (median); peak RSS is the kernel's VmHWM at the"
	echo "end of a fixed-rate run (start-up included), RSS at load the largest VmRSS sampled every 0.2 s"
	echo "during one; both the largest over the rounds. Max rps is measured once, in the last round."
	echo
	echo "| target | protocol | p50 | p90 | p99 | added p50 | achieved rps | non-200 | max rps (1 core) | CPU %/1000 rps | peak RSS MiB | RSS at load MiB |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
	printf '%s\n' "${summary[@]}"
	echo
	echo "Rounds:"
	echo
	echo "| round | protocol | target | p50 | p90 | p99 | achieved rps | non-200 | CPU %/1000 rps | peak RSS MiB | RSS at load MiB |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "nginx speaks HTTP/1.1 to the upstream in the h2c rows (nginx has no HTTP/2 upstreams); HAProxy and"
	echo "Lucid speak h2c end to end."
	echo
	if [ ${#sidecar_args[@]} -gt 0 ]; then
		echo "The lucid rows' sidecar ran with \`${sidecar_args[*]}\` (BENCH_SIDECAR_ARGS)."
		echo
	fi
	if [[ " $targets " == *" gofloor "* ]]; then
		echo "gofloor (bench/gofloor, HTTP/1.1 only) copies each request's and answer's bytes unchanged between a"
		echo "client connection and an upstream connection of its own through Lucid's socket layer, one goroutine per"
		echo "connection, GOMAXPROCS=1: about the least a Go proxy can do per request, the floor under Lucid's figure."
		echo
	fi
	if [[ " $targets " == *" lucid-base "* ]]; then
		echo "lucid-base is the same binary with \`${base_args[*]}\`: Go's GC defaults and the executable's"
		echo "start-up pages kept mapped (the sidecar before internal/agent/footprint), measured in the same run."
		echo
	fi
	echo "Targets for now: added p50 within 2x HAProxy's; Lucid's peak RSS under 40 MiB at 1,000 rps."
} >"$work/section.md"
bench_write_section "$results" run "$work/section.md"
log "wrote the fixed-rate section of $results"
