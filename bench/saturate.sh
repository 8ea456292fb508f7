#!/usr/bin/env bash
# Saturation benchmark: CPU µs per request of one proxy core at saturation and the most
# requests/s that core serves, 1 KiB answers, HTTP/1.1 keep-alive and h2c (prior knowledge,
# both sides), in interleaved rounds of one run (each round starting one target further
# down the list). Targets:
#
#   lucid            one sidecar inbound hop with its defaults (own HTTP/1.1 loop and HTTP/2
#                    codec, Istio's standard metrics on, no access log)
#   lucid-log        the same with the access log on (--access-log to a file)
#   lucid-nometrics  the same with Istio's standard metrics off (a Telemetry resource)
#   lucid-nethttp    the same binary on net/http's servers and HTTP/2 client (the env
#                    switches LUCID_HTTP1_SERVER, LUCID_HTTP2_SERVER, LUCID_HTTP2_CLIENT)
#   lucid-prev       the lucid target run by another binary, SAT_LUCID_PREV (not in the
#                    default lists): a change and the build before it, in the same rounds
#   goproxy          Go's httputil.ReverseProxy on net/http (bench/goproxy)
#   gofloor          about the least a Go proxy can do per request, through Lucid's socket
#                    layer (bench/gofloor; HTTP/1.1 only): the floor under Lucid's figure
#   gofloor-peek     the same checking the upstream connection before each request as
#                    Lucid's pool does (not in the default list)
#   nginx, haproxy   one worker each; nginx speaks HTTP/1.1 upstream in the h2c rows
#
#   bench/saturate.sh                                   # 5 rounds x 10 s per target and protocol
#   SAT_ROUNDS=1 SAT_DURATION=5 SAT_PROTOS=h2c bench/saturate.sh  # a quick look
#   SAT_RESULTS=bench/RESULTS.md bench/saturate.sh      # also writes its section there (make bench)
#   SAT_LUCID_PREV=/tmp/lucid-old SAT_TARGETS="lucid lucid-prev nginx" bench/saturate.sh  # A/B a change
#   SAT_SLICE=5 bench/saturate.sh                       # the measured load in slices of 5 s (default 2;
#                                                       # SAT_DURATION or more: one load per round)
#   SAT_ROUNDS=0 SAT_PROFILE=1 bench/saturate.sh        # Lucid's CPU profile and syscalls per request
#                                                       # (SAT_PROFILE_DIR=D keeps the CPU and heap profiles
#                                                       # and a goroutine dump, taken at saturation, in D)
#
# The proxy runs on CPU 1 (taskset); the load (HTTP/1.1: bench/saturate, 16 connections,
# closed loop; h2c: h2load, 16 connections x 10 streams) and the upstream (nginx answering
# 1 KiB from memory) on CPU 0. CPU is utime+stime from /proc over the proxy's process tree,
# so it counts what the proxy spent, whatever else runs on the machine; the load average is
# printed beside every figure; RSS at load is the largest VmRSS sampled during the load.
#
# On a 2-core machine the load's core saturates first: the load and the upstream cost more
# than an efficient proxy, so the proxy's core idles part of the time and the requests/s
# reached say as much about CPU 0 as about the proxy. Each round therefore also reports both
# cores' busy time and the requests/s per proxy core (requests / the proxy's CPU seconds,
# 10^6 / CPU µs per request). Five rounds, measured in slices (SAT_SLICE), because now and
# then this VM runs 30 – 60 % slower for a few seconds to over a minute, whichever target
# runs then (a Lucid target loses the most). In that mode CPU 0 idles, so the load and the
# upstream are asleep when the proxy writes to them, and waking a sleeping task on the
# other core costs this VM several µs per write (perf: 16 % of the proxy's samples against
# 4 – 6 % in a fast round). Each round reports the wake-up interrupts (rescheduling and
# function-call IPIs, /proc/interrupts) each core received per request, which shows it: a
# slow round of Lucid's has 0.4 – 0.7 per request to the load core, a usual one under 0.1.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
rounds=${SAT_ROUNDS:-5}
secs=${SAT_DURATION:-10}
slice=${SAT_SLICE:-2} # the measured load runs as consecutive loads of this many seconds
protos=${SAT_PROTOS:-http1 h2c}
http1_targets=${SAT_TARGETS:-lucid lucid-log lucid-nometrics lucid-nethttp goproxy gofloor nginx haproxy}
h2c_targets=${SAT_H2C_TARGETS:-lucid lucid-nethttp goproxy nginx haproxy}
conns=${SAT_CONNS:-16}
results=${SAT_RESULTS:-}
net=${SAT_NET:-127.0.241} # no test listens there (internal/testutil/subnets_table.go)
upstream=$net.1:8080
upstream_h2=$net.1:8081
haproxy_addr=$net.2:8080
nginx_addr=$net.3:8080
goproxy_addr=$net.4:8080
gofloor_addr=$net.6:8080
lucid_ip=$net.5
discovery_ip=$net.9
source "$root/bench/lib.sh"
bench_init saturate
taskset -pc 0 $$ >/dev/null # this shell, its samplers and loads on CPU 0; the proxies ask for CPU 1

command -v h2load >/dev/null || [[ " $protos " != *" h2c "* ]] || {
	log "h2load is missing (apt-get install nghttp2-client), or SAT_PROTOS=http1"
	exit 1
}

stop_all_but_upstream() {
	local pid
	for pid in "${pids[@]:1}"; do
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	pids=("${pids[0]}")
}

wait_http() {
	local i h2=()
	[ "${2:-}" = h2c ] && h2=(--http2-prior-knowledge)
	for i in $(seq 150); do
		curl -s "${h2[@]}" -o /dev/null --max-time 1 "$1" && return 0
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

# cpu_ticks PID: the tree's utime+stime and its utime, in clock ticks ("TOTAL USER").
cpu_ticks() {
	local total=0 user=0 pid f
	for pid in $(tree "$1"); do
		f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
		read -r t u < <(echo "$f" | awk '{print $12 + $13, $12}')
		total=$((total + t)) user=$((user + u))
	done
	echo "$total $user"
}

# core_ticks N: CPU N's busy and total jiffies from /proc/stat ("BUSY TOTAL"; busy is all
# but idle and iowait).
core_ticks() {
	awk -v c="cpu$1" '$1 == c {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t}' /proc/stat
}

# bound PROXY% LOAD%: what bounded a round's requests/s: a core busy ≥ 93 %, or neither (the
# closed loop waited: on net/http's proxies in every round, on Lucid's in its slow ones).
bound() {
	awk -v p="$1" -v l="$2" 'BEGIN {if (l >= 93) print "load core"; else if (p >= 93) print "proxy core"; else print "neither"}'
}

# core_busy "BUSY0 TOTAL0" "BUSY1 TOTAL1": the core's busy share between the two, in %.
core_busy() {
	echo "$1 $2" | awk '{if ($4 > $2) printf "%.0f", ($3 - $1) / ($4 - $2) * 100; else print "-"}'
}

# wakeups: the wake-up interrupts (rescheduling and function-call IPIs) CPU 0 and CPU 1 have
# received so far ("CPU0 CPU1").
wakeups() {
	awk '$1 == "RES:" || $1 == "CAL:" {a += $2; b += $3} END {print a + 0, b + 0}' /proc/interrupts
}

# sample_rss PID FILE: the largest VmRSS in PID's tree, MiB, appended to FILE every 0.2 s
# until killed.
sample_rss() {
	: >"$2"
	local pid best kb
	while :; do
		best=0
		for pid in $(tree "$1"); do
			kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
			[ "${kb:-0}" -gt "$best" ] && best=$kb
		done
		awk -v k="$best" 'BEGIN {printf "%.1f\n", k / 1024}' >>"$2"
		sleep 0.2
	done
}

# peak_rss PID: the largest VmHWM in the process tree, MiB (the proxy is one process,
# its env/taskset wrappers exec'd).
peak_rss() {
	local pid best=0 kb
	for pid in $(tree "$1"); do
		kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
		[ "${kb:-0}" -gt "$best" ] && best=$kb
	done
	awk -v k="$best" 'BEGIN {printf "%.1f", k / 1024}'
}

lucid=${SAT_LUCID:-$root/bin/lucid}
lucid_rev="the binary $lucid (given)"
if [ -z "${SAT_LUCID:-}" ]; then
	log "building lucid"
	lucid_rev=$(lucid_revision)
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$lucid" ./cmd/lucid)
fi
load=$work/saturate
goproxy=$work/goproxy
gofloor=$work/gofloor
(cd "$root" && go build -o "$load" ./bench/saturate && go build -o "$goproxy" ./bench/goproxy &&
	CGO_ENABLED=0 go build -trimpath -o "$gofloor" ./bench/gofloor)

# --- the upstream: nginx answering 1 KiB from memory, on CPU 0 (HTTP/1.1 and h2c) --------
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
  http2_max_requests 1000000;
  keepalive_requests 1000000;
  server {
    listen $upstream;
    listen $upstream_h2 http2;
    location / { default_type text/plain; return 200 "$body"; }
  }
}
EOC
start upstream taskset -c 0 nginx -c "$work/up.conf" -p "$work/up"
wait_http "http://$upstream/echo"
[[ " $protos " != *" h2c "* ]] || wait_http "http://$upstream_h2/echo" h2c

# start_target NAME PROTO: starts the proxy on CPU 1; sets ppid (the process whose tree is
# measured) and url.
start_target() {
	local name=$1 proto=$2
	local up=$upstream
	[ "$proto" = h2c ] && up=$upstream_h2
	case "$name" in
	nginx)
		local http2=""
		[ "$proto" = h2c ] && http2=http2 # h2c with prior knowledge; HTTP/1.1 upstream
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
			  http2_max_requests 1000000;
			  keepalive_requests 1000000;
			  upstream app { server $upstream; keepalive 64; }
			  server {
			    listen $nginx_addr $http2;
			    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
			  }
			}
		EOC
		start nginx taskset -c 1 nginx -c "$work/nginx.conf" -p "$work/nginx"
		ppid=$last_pid
		url=$nginx_addr/echo
		;;
	haproxy)
		local h2=""
		[ "$proto" = h2c ] && h2="proto h2"
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
			  bind $haproxy_addr $h2
			  default_backend upstream
			backend upstream
			  server app $up $h2
		EOC
		start haproxy taskset -c 1 haproxy -db -f "$work/haproxy.cfg"
		ppid=$last_pid
		url=$haproxy_addr/echo
		;;
	gofloor | gofloor-peek)
		local peek=()
		[ "$name" = gofloor-peek ] && peek=(-peek)
		start gofloor env GOMAXPROCS=1 taskset -c 1 "$gofloor" -listen "$gofloor_addr" -upstream "$up" "${peek[@]}"
		ppid=$last_pid
		url=$gofloor_addr/echo
		;;
	goproxy)
		local h2=()
		[ "$proto" = h2c ] && h2=(-h2c)
		start goproxy env GOMAXPROCS=1 taskset -c 1 "$goproxy" -listen "$goproxy_addr" -upstream "$up" "${h2[@]}"
		ppid=$last_pid
		url=$goproxy_addr/echo
		;;
	lucid*)
		local protocol=HTTP port=8080 envs=(GOMAXPROCS=1) args=()
		# SAT_LUCID_ARGS: extra `lucid sidecar` flags for every lucid target (unquoted words)
		# shellcheck disable=SC2206
		local extra=(${SAT_LUCID_ARGS:-})
		[ "$proto" = h2c ] && protocol=HTTP2 port=8081
		mkdir -p "$work/lucid"
		rm -f "$work/lucid/telemetry.yaml"
		case "$name" in
		lucid-log) args+=(--access-log "$work/access.log") ;;
		lucid-nometrics)
			cat >"$work/lucid/telemetry.yaml" <<-EOC
				apiVersion: telemetry.istio.io/v1
				kind: Telemetry
				metadata: {name: no-metrics, namespace: istio-system}
				spec:
				  metrics:
				  - providers: [{name: prometheus}]
				    overrides: [{match: {metric: ALL_METRICS}, disabled: true}]
			EOC
			;;
		lucid-nethttp) envs+=(LUCID_HTTP1_SERVER=nethttp LUCID_HTTP2_SERVER=nethttp LUCID_HTTP2_CLIENT=nethttp) ;;
		esac
		cat >"$work/lucid/upstream.yaml" <<-EOC
			apiVersion: networking.istio.io/v1
			kind: ServiceEntry
			metadata: {name: upstream, namespace: default}
			spec:
			  hosts: [upstream.default.svc.cluster.local]
			  location: MESH_INTERNAL
			  resolution: STATIC
			  ports: [{number: $port, name: http-bench, protocol: $protocol}]
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
		[ -n "${SAT_PROFILE:-}" ] && args+=(--profiling)
		local sidecar=$lucid
		[ "$name" = lucid-prev ] && sidecar=$SAT_LUCID_PREV
		start sidecar env "${envs[@]}" taskset -c 1 "$sidecar" sidecar --ip "$lucid_ip" \
			--workload upstream --discovery-address "$discovery_ip:15010" --log-level warning "${args[@]}" "${extra[@]}"
		ppid=$last_pid
		local i
		for i in $(seq 150); do
			curl -sf -o /dev/null --max-time 1 "http://$lucid_ip:15020/healthz/ready" && break
			sleep 0.1
		done
		url=$lucid_ip:$port/echo
		;;
	*)
		log "unknown target $name"
		return 1
		;;
	esac
	wait_http "http://$url" "$proto"
}

# run_load PROTO SECONDS: a closed-loop load on CPU 0 against $url; prints "OK ERRORS".
# load_wrap, when set, is a command the load runs under (count_syscalls' perf stat).
load_wrap=()
# run_slices PROTO: the round's measured load, SAT_DURATION seconds as consecutive loads of
# SAT_SLICE seconds: "requests errors" over all of them, then each slice's CPU µs per
# request, comma-separated. This VM now and then runs everything 30 – 60 % slower for a few
# seconds to over a minute, whichever proxy is running (the slow mode; see the summary):
# the slices show where in a round it began or ended, and the medians over slices let a
# round that ran partly in it count only as far as it did.
run_slices() {
	local proto=$1 left=$secs d n=0 e=0 sn se a0 a1 list=""
	while [ "$left" -gt 0 ]; do
		d=$slice
		[ "$d" -le "$left" ] || d=$left
		left=$((left - d))
		read -r a0 _ < <(cpu_ticks "$ppid")
		read -r sn se < <(run_load "$proto" "$d")
		read -r a1 _ < <(cpu_ticks "$ppid")
		n=$((n + sn)) e=$((e + se))
		list+=$(awk -v d=$((a1 - a0)) -v hz="$hz" -v n="$sn" 'BEGIN {if (n > 0) printf "%.1f,", d / hz * 1e6 / n; else printf "-,"}')
	done
	echo "$n $e ${list%,}"
}

run_load() {
	local proto=$1 d=$2 out
	if [ "$proto" = h2c ]; then
		out=$(timeout $((d + 30)) "${load_wrap[@]}" taskset -c 0 h2load -c "$conns" -m 10 -D "$d" "http://$url" 2>&1) || { log "h2load failed: $out"; echo "0 1"; return; }
		echo "$out" | awk '/^requests:/ {for (i = 1; i <= NF; i++) { if ($i == "succeeded,") ok = $(i - 1); if ($i == "failed,") f = $(i - 1) } } END {print ok + 0, f + 0}'
	else
		"${load_wrap[@]}" taskset -c 0 "$load" -url "$url" -c "$conns" -d "${d}s" | awk '{print $2, $4}'
	fi
}

# The system calls count_syscalls tells apart (the others count in the total).
syscalls=(recvfrom sendto sendmsg read write writev readv epoll_pwait epoll_wait getsockopt setsockopt futex nanosleep sched_yield tgkill)

# count_syscalls PROTO: the proxy's ($ppid) system calls per request over 5 s of load, by
# call, with the reads that found nothing (EAGAIN). perf stat on the syscall tracepoints
# counts them exactly for the load's whole run and barely slows the proxy. Where perf
# cannot (no tracepoints, not root), strace -c: it slows the proxy several times, so the
# peer's next bytes are often there already when the proxy reads right after a write, and
# it undercounts the reads that find nothing and the poller's waits.
count_syscalls() {
	local proto=$1 n ev=() c how table
	for c in "${syscalls[@]}"; do ev+=(-e "syscalls:sys_enter_$c"); done
	ev+=(-e raw_syscalls:sys_enter -e syscalls:sys_exit_recvfrom --filter 'ret == -11' -e syscalls:sys_exit_read --filter 'ret == -11')
	if perf stat -x, "${ev[@]}" -o /dev/null -- true 2>/dev/null; then
		load_wrap=(perf stat -x, "${ev[@]}" -p "$ppid" -o "$work/lucid-$proto.perfstat" --)
		n=$(run_load "$proto" 5 | awk '{print $1}')
		load_wrap=()
		how="perf stat on the syscall tracepoints, $n requests"
		table=$(awk -F, -v n="$n" '
			$3 == "raw_syscalls:sys_enter" {printf "%-16s %8.2f per request\n", "total", $1 / n}
			$3 ~ /^syscalls:sys_exit_/ {split($3, a, "sys_exit_"); none[a[2]] = $1}
			$3 ~ /^syscalls:sys_enter_/ && $1 > 0 {split($3, a, "sys_enter_"); calls[a[2]] = $1}
			END {for (c in calls) {
				line = sprintf("%-16s %8.2f per request", c, calls[c] / n)
				if (none[c] > 0) line = line sprintf(" (%.2f found nothing)", none[c] / n)
				print line
			}}' "$work/lucid-$proto.perfstat" | sort -k2 -gr)
	else
		timeout 7 strace -c -f -p "$ppid" -o "$work/lucid-$proto.strace" &
		local st=$!
		sleep 0.5
		n=$(run_load "$proto" 5 | awk '{print $1}')
		wait $st || true
		how="strace -c, $n requests; strace undercounts the reads that find nothing"
		table=$(awk -v n="$n" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ {printf "%-16s %8.2f per request\n", $NF, $4 / n}' "$work/lucid-$proto.strace" | sort -k2 -gr | head -12)
	fi
	echo "#### lucid, $proto: syscalls per request ($how)"
	echo
	echo '```'
	echo "$table"
	echo '```'
	echo
}

targets_of() { if [ "$1" = h2c ]; then echo "$h2c_targets"; else echo "$http1_targets"; fi; }

# profile_lucid: for the lucid target, a 10 s CPU profile at saturation (top functions),
# then its syscalls per request (count_syscalls).
profile_lucid() {
	local proto
	for proto in $protos; do
		start_target lucid "$proto"
		run_load "$proto" 2 >/dev/null
		run_load "$proto" 12 >/dev/null &
		curl -s -o "$work/lucid-$proto.pprof" "http://$lucid_ip:15020/debug/pprof/profile?seconds=10"
		# The heap while the load still runs (its last two seconds).
		curl -s -o "$work/lucid-$proto.heap.pprof" "http://$lucid_ip:15020/debug/pprof/heap"
		curl -s -o "$work/lucid-$proto.goroutine.txt" "http://$lucid_ip:15020/debug/pprof/goroutine?debug=1"
		wait $!
		[ -z "${SAT_PROFILE_DIR:-}" ] || cp "$work/lucid-$proto.pprof" "$work/lucid-$proto.heap.pprof" "$work/lucid-$proto.goroutine.txt" "$SAT_PROFILE_DIR/"
		echo "#### lucid, $proto: top functions (pprof, 10 s at saturation, load average $(cut -d' ' -f1 /proc/loadavg))"
		echo
		echo '```'
		go tool pprof -top -nodecount 25 "$work/lucid-$proto.pprof" 2>/dev/null | sed -n '4,31p'
		echo '```'
		echo
		count_syscalls "$proto"
		stop_all_but_upstream
	done
}

report() {
	local model hz=$(getconf CLK_TCK)
	model=$(lscpu | awk -F: '/^Model name/ {gsub(/^ +/, "", $2); print $2; exit}')
	echo "## Saturation: CPU per request and requests/s on one core"
	echo
	echo "Generated by \`bench/saturate.sh\` (\`make bench\`) on $(date -u +%Y-%m-%dT%H:%MZ): $rounds interleaved rounds of ${secs} s"
	echo "per target and protocol. Not a test: numbers from one run on one machine."
	echo
	echo "- Machine: $model, $(getconf _NPROCESSORS_ONLN) cores, Linux $(uname -r); load average before the run: $load_before"
	echo "- Lucid: $lucid_rev; peers: $(haproxy -v 2>&1 | sed -n 1p | awk '{print $1, $2, $3}'), $(nginx -v 2>&1 | sed 's/.*: //'), Go $(go env GOVERSION) (goproxy)"
	echo "- The proxy alone on CPU 1 (\`taskset\`; GOMAXPROCS=1 for Lucid and goproxy, one worker for nginx and HAProxy); the"
	echo "  load and the upstream (nginx answering 1 KiB from memory) on CPU 0. HTTP/1.1: \`bench/saturate\`, $conns keep-alive"
	echo "  connections in a closed loop; h2c: \`h2load -c $conns -m 10\`. CPU is utime+stime of the proxy's process tree"
	echo "  from /proc. RSS at load is the largest VmRSS sampled every 0.2 s during the measured load; VmHWM, read at the"
	echo "  end of the round, also counts the start-up (every linked package's initialisation, before main). nginx speaks"
	echo "  HTTP/1.1 to the upstream in the h2c rows."
	echo "- User mode: utime alone, the proxy's own code. The kernel's part is mostly the same for every proxy (the same"
	echo "  system calls per request); the difference between them is mostly here. The kernel charges each tick to one"
	echo "  mode, and where entering a system call is slow (a paravirtual VM) part of that counts as user mode too."
	echo "- Requests/s per proxy core: the requests over the proxy's CPU seconds (10^6 / CPU µs per request). The requests/s"
	echo "  reached depend on CPU 0 as well: when the load core is busy close to 100 % while the proxy's core idles, the"
	echo "  load and the upstream bounded them, not the proxy. The vs columns compare medians: CPU per request, and"
	echo "  requests/s per proxy core. \"Bounded by\" in the rounds: the load core (busy ≥ 93 %), the proxy's, or neither"
	echo "  (both idle part of the time, the closed loop waiting: net/http's proxies in every round, Lucid's in the HTTP/1.1"
	echo "  rounds that run 30 – 50 % slower now and then: with CPU 0 idle, each write wakes a sleeping peer on the"
	echo "  other core, which costs this VM several µs; see bench/README.md). Wake-ups per request: the rescheduling and"
	echo "  function-call interrupts (/proc/interrupts) each core received during the round, over its requests."
	echo "- Slices: each round's measured load runs as consecutive loads of ${slice} s, and each slice's CPU per request is"
	echo "  kept. This VM's slow mode comes and goes by itself: traced second by second (2026-12-08), it began and ended"
	echo "  in the middle of rounds, for nginx as for Lucid, and lasted from a few seconds to over a minute, so it lands on"
	echo "  whichever targets run then. A proxy that costs more per request loses more in it (in that trace Lucid 40 – 49"
	echo "  µs per request against its usual 28 – 31, nginx 30 – 33 against 24 – 25). The medians over slices, below the"
	echo "  summary, count a round that ran partly in it only as far as it did."
	echo "- lucid: one sidecar inbound hop, defaults (Istio's standard metrics on, access log off); lucid-log: access log on"
	echo "  (a file); lucid-nometrics: the standard metrics off by a Telemetry resource; lucid-nethttp: net/http's servers and"
	echo "  HTTP/2 client (LUCID_HTTP1_SERVER / LUCID_HTTP2_SERVER / LUCID_HTTP2_CLIENT=nethttp); goproxy: Go's"
	echo "  httputil.ReverseProxy; gofloor (HTTP/1.1): bytes copied between a client and an upstream connection through"
	echo "  Lucid's socket layer, one goroutine per connection, nothing parsed but the heads' ends and Content-Length: about"
	echo "  the least a Go proxy can cost here, so Lucid's figure minus gofloor's is what its features and layers cost."
	echo
	echo "| protocol | target | median CPU µs per request | of which user mode | median requests/s per proxy core | median requests/s reached | median proxy core busy % | median load core busy % | RSS at load MiB (max) | VmHWM MiB (max) | CPU vs nginx | requests/s per core vs nginx | CPU vs HAProxy | requests/s per core vs HAProxy |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	local proto name mu muu mr mc mb ml mm nu nc hu hc
	for proto in $protos; do
		nu=$(echo "${us[$proto/nginx]:-}" | median); nc=$(echo "${core[$proto/nginx]:-}" | median)
		hu=$(echo "${us[$proto/haproxy]:-}" | median); hc=$(echo "${core[$proto/haproxy]:-}" | median)
		for name in $(targets_of "$proto"); do
			mu=$(echo "${us[$proto/$name]}" | median)
			muu=$(echo "${uus[$proto/$name]}" | median)
			mr=$(echo "${rps[$proto/$name]}" | median)
			mc=$(echo "${core[$proto/$name]}" | median)
			mb=$(echo "${busy[$proto/$name]}" | median)
			ml=$(echo "${lbusy[$proto/$name]}" | median)
			mm=$(echo "${rss[$proto/$name]}" | largest)
			mh=$(echo "${hwm[$proto/$name]}" | largest)
			echo "| $proto | $name | $mu | $muu | $mc | $mr | $mb | $ml | $mm | $mh | $(ratio "$mu" "$nu") | $(ratio "$mc" "$nc") | $(ratio "$mu" "$hu") | $(ratio "$mc" "$hc") |"
		done
	done
	echo
	by_slice
	paired
	echo "Rounds:"
	echo
	echo "| round | protocol | target | requests/s | CPU µs per request | user mode µs | CPU µs per request by ${slice}-s slice | proxy core busy % | load core busy % | bounded by | wake-ups per request to the load core | to the proxy core | RSS at load MiB | VmHWM MiB | errors | load average (1 min) |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
	echo
	if [ -n "${SAT_PROFILE:-}" ]; then
		echo "### Lucid at saturation: where the CPU goes"
		echo
		profile_lucid
	fi
}

# by_slice is the summary's CPU figures again as medians over every slice of every round
# (SAT_SLICE): a round that ran partly in the VM's slow mode counts only as far as it did,
# and a median over five times as many samples moves less with the mode's timing. Slow
# slices: those over 1.25 times the target's own median.
by_slice() {
	local proto name mu nu hu mc nc hc k n
	[ "$slice" -lt "$secs" ] || return 0
	echo "The same, as medians over the ${slice}-s slices of every round (each round's measured ${secs} s ran as consecutive loads of ${slice} s):"
	echo
	echo "| protocol | target | median CPU µs per request over slices | requests/s per proxy core | slices | slow slices (over 1.25× the median) | CPU vs nginx | requests/s per core vs nginx | CPU vs HAProxy | requests/s per core vs HAProxy |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	for proto in $protos; do
		nu=$(echo "${slices[$proto/nginx]:-}" | median)
		hu=$(echo "${slices[$proto/haproxy]:-}" | median)
		nc=$(awk -v u="$nu" 'BEGIN {if (u + 0 > 0) printf "%.0f", 1e6 / u}')
		hc=$(awk -v u="$hu" 'BEGIN {if (u + 0 > 0) printf "%.0f", 1e6 / u}')
		for name in $(targets_of "$proto"); do
			mu=$(echo "${slices[$proto/$name]}" | median)
			mc=$(awk -v u="$mu" 'BEGIN {if (u + 0 > 0) printf "%.0f", 1e6 / u; else print "-"}')
			read -r n k < <(tr ' ' '\n' <<<"${slices[$proto/$name]}" | awk -v m="$mu" '$1 + 0 > 0 {n++; if ($1 > 1.25 * m) k++} END {print n + 0, k + 0}')
			echo "| $proto | $name | $mu | $mc | $n | $k | $(ratio "$mu" "$nu") | $(ratio "$mc" "$nc") | $(ratio "$mu" "$hu") | $(ratio "$mc" "$hc") |"
		done
	done
	echo
}

# paired compares lucid with lucid-prev round by round, when both ran: a change smaller than
# the spread of the rounds' medians can still show in the differences of rounds run next to
# each other. Rounds where either ran in the slow mode (bounded by neither core) are left out
# of the summary.
paired() {
	local proto
	for proto in $protos; do
		[ -n "${us[$proto/lucid]:-}" ] && [ -n "${us[$proto/lucid-prev]:-}" ] || continue
		echo "lucid against lucid-prev, round by round ($proto; a negative difference: lucid cost less):"
		echo
		echo "| round | lucid CPU µs (user) | lucid-prev CPU µs (user) | difference CPU µs (user) | in the summary |"
		echo "|---|---|---|---|---|"
		paste -d' ' <(tr ' ' '\n' <<<"${us[$proto/lucid]}") <(tr ' ' '\n' <<<"${uus[$proto/lucid]}") \
			<(tr ' ' '\n' <<<"${slow[$proto/lucid]}") <(tr ' ' '\n' <<<"${us[$proto/lucid-prev]}") \
			<(tr ' ' '\n' <<<"${uus[$proto/lucid-prev]}") <(tr ' ' '\n' <<<"${slow[$proto/lucid-prev]}") |
			awk 'NF == 6 {
				kept = ($3 == 0 && $6 == 0 && $1 + 0 > 0 && $4 + 0 > 0) # a round with no requests has "-"
				printf "| %d | %s (%s) | %s (%s) | %+.1f (%+.1f) | %s |\n", NR, $1, $2, $4, $5, $1 - $4, $2 - $5, kept ? "yes" : "no: the slow mode"
				if (kept) { d[++n] = $1 - $4; du[n] = $2 - $5; if ($1 < $4) lower++ }
			}
			function med(a, n,   i, j, t) {
				for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
				return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
			}
			END {
				print ""
				if (n == 0) { print "No round had both at their usual speed."; exit }
				printf "Median difference over the %d rounds where both ran at their usual speed: %+.1f µs per request (user mode %+.1f); lucid cost less in %d of them.\n", n, med(d, n), med(du, n), lower + 0
			}'
		echo
	done
}

ratio() { if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f×", a / b; else print "-"}'; else echo -; fi; }

declare -A us uus rps core busy lbusy rss hwm slow slices
rows=()
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
hz=$(getconf CLK_TCK)
for round in $(seq "$rounds"); do
	for proto in $protos; do
		# shellcheck disable=SC2046 # the targets are words
		for name in $(rotated $((round - 1)) $(targets_of "$proto")); do
			start_target "$name" "$proto"
			run_load "$proto" 2 >/dev/null # warm-up
			sample_rss "$ppid" "$work/rss" &
			sampler=$!
			read -r t0 q0 < <(cpu_ticks "$ppid")
			c0=$(core_ticks 0)
			read -r w0 v0 < <(wakeups)
			read -r n errs sl < <(run_slices "$proto")
			read -r t1 q1 < <(cpu_ticks "$ppid")
			c1=$(core_ticks 0)
			read -r w1 v1 < <(wakeups)
			kill "$sampler" 2>/dev/null || true
			wait "$sampler" 2>/dev/null || true
			la=$(cut -d' ' -f1 /proc/loadavg)
			m=$(peak_rss "$ppid")
			l=$(sort -g "$work/rss" | tail -1)
			r=$(awk -v n="$n" -v s="$secs" 'BEGIN {printf "%.0f", n / s}')
			u=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$n" 'BEGIN {if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "-"}')
			b=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$secs" 'BEGIN {printf "%.0f", d / hz / s * 100}')
			lb=$(core_busy "$c0" "$c1")
			wl=$(awk -v d=$((w1 - w0)) -v n="$n" 'BEGIN {if (n > 0) printf "%.2f", d / n; else print "-"}')
			wp=$(awk -v d=$((v1 - v0)) -v n="$n" 'BEGIN {if (n > 0) printf "%.2f", d / n; else print "-"}')
			uu=$(awk -v d=$((q1 - q0)) -v hz="$hz" -v n="$n" 'BEGIN {if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "-"}')
			pc=$(awk -v u="$u" 'BEGIN {if (u + 0 > 0) printf "%.0f", 1e6 / u; else print "-"}')
			rows+=("| $round | $proto | $name | $r | $u | $uu | ${sl//,/ } | $b | $lb | $(bound "$b" "$lb") | $wl | $wp | $l | $m | $errs | $la |")
			log "round $round $proto $name: $r requests/s, $u µs per request ($uu in user mode), core $b % busy (load core $lb %), wake-up interrupts per request $wl to the load core and $wp to the proxy's, RSS at load $l MiB, VmHWM $m MiB, $errs errors"
			us[$proto/$name]+="$u "
			slices[$proto/$name]+="$(tr ',' ' ' <<<"$sl" | sed 's/-//g') "
			uus[$proto/$name]+="$uu "
			rps[$proto/$name]+="$r "
			core[$proto/$name]+="$pc "
			busy[$proto/$name]+="$b "
			lbusy[$proto/$name]+="$lb "
			rss[$proto/$name]+="$l "
			hwm[$proto/$name]+="$m "
			slow[$proto/$name]+="$(bound "$b" "$lb" | awk '{print ($1 == "neither") ? 1 : 0}') "
			stop_all_but_upstream
		done
	done
done
if [ "$rounds" -eq 0 ]; then
	profile_lucid
	exit 0
fi
report >"$work/section.md"
if [ -n "$results" ]; then
	bench_write_section "$results" saturate "$work/section.md"
	log "wrote the saturation section of $results"
fi
cat "$work/section.md"
