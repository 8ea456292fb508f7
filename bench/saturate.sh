#!/usr/bin/env bash
# Saturation benchmark: CPU µs per request of one proxy core at saturation, HTTP/1.1
# keep-alive, 1 KiB answers; Lucid (one sidecar inbound hop, its own HTTP/1.1 serving loop),
# Lucid with LUCID_HTTP1_SERVER=nethttp (net/http's server), nginx and HAProxy, in
# interleaved rounds of one run. Not a test: it prints a Markdown table (and appends nothing).
#
#   bench/saturate.sh                                  # 3 rounds x 10 s per target
#   SAT_ROUNDS=5 SAT_DURATION=20 bench/saturate.sh
#   SAT_ROUNDS=0 SAT_PROFILE=1 bench/saturate.sh       # Lucid's CPU profile and syscalls per request
#
# The proxy runs on CPU 1 (taskset); the load (bench/saturate, 16 connections, closed loop)
# and the upstream (nginx answering 1 KiB from memory) on CPU 0. CPU is utime+stime from
# /proc over the proxy's process tree, so it counts what the proxy spent, whatever else
# runs on the machine; the load average is printed beside every figure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
rounds=${SAT_ROUNDS:-3}
secs=${SAT_DURATION:-10}
targets=${SAT_TARGETS:-lucid lucid-nethttp nginx haproxy}
conns=${SAT_CONNS:-16}
net=${SAT_NET:-127.0.241} # no test listens there (internal/testutil/subnets_table.go)
upstream=$net.1:8080
haproxy_addr=$net.2:8080
nginx_addr=$net.3:8080
lucid_ip=$net.5
discovery_ip=$net.9
source "$root/bench/lib.sh"
bench_init saturate

stop_all_but_upstream() {
	local pid
	for pid in "${pids[@]:1}"; do
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	pids=("${pids[0]}")
}

wait_http() {
	local i
	for i in $(seq 150); do
		curl -s -o /dev/null --max-time 1 "$1" && return 0
		sleep 0.1
	done
	log "no answer from $1"
	return 1
}

# tree PID: the process and its descendants.
tree() {
	local p=$1 c
	echo "$p"
	for c in $(pgrep -P "$p" 2>/dev/null); do tree "$c"; done
}

cpu_ticks() {
	local total=0 pid f
	for pid in $(tree "$1"); do
		f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
		total=$((total + $(echo "$f" | awk '{print $12 + $13}')))
	done
	echo "$total"
}

lucid=${SAT_LUCID:-$root/bin/lucid}
if [ -z "${SAT_LUCID:-}" ]; then
	log "building lucid"
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$lucid" ./cmd/lucid)
fi
load=$work/saturate
(cd "$root" && go build -o "$load" ./bench/saturate)

# --- the upstream: nginx answering 1 KiB from memory, on CPU 0 ---------------------------
mkdir -p "$work/up"
body=$(head -c 1024 /dev/zero | tr '\0' 'x')
cat >"$work/up.conf" <<EOC
daemon off;
master_process off;
pid $work/up/nginx.pid;
error_log $work/up/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/up;
  server {
    listen $upstream;
    keepalive_requests 1000000;
    location / { default_type text/plain; return 200 "$body"; }
  }
}
EOC
start upstream taskset -c 0 nginx -c "$work/up.conf" -p "$work/up"
wait_http "http://$upstream/echo"

start_target() {
	local name=$1
	case "$name" in
	nginx)
		mkdir -p "$work/nginx"
		cat >"$work/nginx.conf" <<-EOC
			daemon off;
			master_process off;
			pid $work/nginx/nginx.pid;
			error_log $work/nginx/error.log warn;
			events { worker_connections 4096; }
			http {
			  access_log off;
			  client_body_temp_path $work/nginx;
			  proxy_temp_path $work/nginx;
			  upstream app { server $upstream; keepalive 64; }
			  server {
			    listen $nginx_addr;
			    keepalive_requests 1000000;
			    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
			  }
			}
		EOC
		start nginx taskset -c 1 nginx -c "$work/nginx.conf" -p "$work/nginx"
		ppid=$last_pid
		url=$nginx_addr/echo
		;;
	haproxy)
		cat >"$work/haproxy.cfg" <<-EOC
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
			  bind $haproxy_addr
			  default_backend upstream
			backend upstream
			  server app $upstream
		EOC
		start haproxy taskset -c 1 haproxy -db -f "$work/haproxy.cfg"
		ppid=$last_pid
		url=$haproxy_addr/echo
		;;
	lucid | lucid-nethttp)
		local loop=own
		[ "$name" = lucid-nethttp ] && loop=nethttp
		mkdir -p "$work/lucid"
		cat >"$work/lucid/upstream.yaml" <<-EOC
			apiVersion: networking.istio.io/v1
			kind: ServiceEntry
			metadata: {name: upstream, namespace: default}
			spec:
			  hosts: [upstream.default.svc.cluster.local]
			  location: MESH_INTERNAL
			  resolution: STATIC
			  ports: [{number: 8080, name: http, protocol: HTTP}]
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
		EOC
		start discovery taskset -c 0 "$lucid" discovery --config-dir "$work/lucid" \
			--grpc-addr "$discovery_ip:15010" --debug-addr "$discovery_ip:15014" --log-level warn
		wait_http "http://$discovery_ip:15014/ready"
		local prof=()
		[ -n "${SAT_PROFILE:-}" ] && prof=(--profiling)
		start sidecar env LUCID_HTTP1_SERVER=$loop GOMAXPROCS=1 taskset -c 1 "$lucid" sidecar --ip "$lucid_ip" \
			--workload upstream --discovery-address "$discovery_ip:15010" --log-level warning "${prof[@]}"
		ppid=$last_pid
		local i
		for i in $(seq 150); do
			curl -sf -o /dev/null --max-time 1 "http://$lucid_ip:15020/healthz/ready" && break
			sleep 0.1
		done
		url=$lucid_ip:8080/echo
		;;
	esac
	wait_http "http://$url"
}

# profile_lucid: for each Lucid target, a 10 s CPU profile at saturation (top functions),
# then syscalls per request counted by strace -c over 5 s of load (strace slows the proxy;
# the count per request is what it is for).
profile_lucid() {
	local name n
	for name in $targets; do
		[[ "$name" == lucid* ]] || continue
		start_target "$name"
		taskset -c 0 "$load" -url "$url" -c "$conns" -d 2s >/dev/null
		taskset -c 0 "$load" -url "$url" -c "$conns" -d 12s >/dev/null &
		curl -s -o "$work/$name.pprof" "http://$lucid_ip:15020/debug/pprof/profile?seconds=10"
		wait $!
		echo "### $name: top functions (pprof, 10 s at saturation, load average $(cut -d' ' -f1 /proc/loadavg))"
		echo '```'
		go tool pprof -top -nodecount 25 "$work/$name.pprof" 2>/dev/null | sed -n '4,31p'
		echo '```'
		timeout 7 strace -c -f -p "$ppid" -o "$work/$name.strace" &
		local st=$!
		sleep 0.5
		n=$(taskset -c 0 "$load" -url "$url" -c "$conns" -d 5s | awk '{print $2}')
		wait $st || true
		echo "### $name: syscalls per request (strace -c, $n requests)"
		echo '```'
		awk -v n="$n" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ {printf "%-16s %8.2f per request\n", $NF, $4 / n}' "$work/$name.strace" | sort -k2 -gr | head -12
		echo '```'
		stop_all_but_upstream
	done
}

declare -A us rps
echo "| round | target | requests/s | CPU µs per request | proxy core busy % | errors | load average (1 min) |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
	for name in $targets; do
		start_target "$name"
		taskset -c 0 "$load" -url "$url" -c "$conns" -d 2s >/dev/null # warm-up
		hz=$(getconf CLK_TCK)
		t0=$(cpu_ticks "$ppid")
		out=$(taskset -c 0 "$load" -url "$url" -c "$conns" -d "${secs}s")
		t1=$(cpu_ticks "$ppid")
		la=$(cut -d' ' -f1 /proc/loadavg)
		n=$(echo "$out" | awk '{print $2}')
		errs=$(echo "$out" | awk '{print $4}')
		r=$(awk -v n="$n" -v s="$secs" 'BEGIN {printf "%.0f", n / s}')
		u=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$n" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}')
		busy=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$secs" 'BEGIN {printf "%.0f", d / hz / s * 100}')
		echo "| $round | $name | $r | $u | $busy | $errs | $la |"
		us[$name]+="$u "
		rps[$name]+="$r "
		stop_all_but_upstream
	done
done
[ "$rounds" -gt 0 ] || { profile_lucid; exit 0; }
echo
echo "| target | median CPU µs per request | median requests/s |"
echo "|---|---|---|"
for name in $targets; do
	mu=$(echo "${us[$name]}" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	mr=$(echo "${rps[$name]}" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	echo "| $name | $mu | $mr |"
done
