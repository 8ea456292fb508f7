#!/usr/bin/env bash
# Keep-alive race soak: Lucid, HAProxy and nginx side by side in front of upstreams that
# close idle connections after 1, 2 and 5 s, with and without a Keep-Alive header. Writes
# bench/keepalive/RESULTS.md. See bench/keepalive/README.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
duration=${SOAK_DURATION:-10m}
results=${SOAK_RESULTS:-$here/RESULTS.md}

# Every address in 127.0.92.0/24.
up_ip=127.0.92.10        # the upstreams (the app), ports 9001-9006
lucid_ip=127.0.92.20     # Lucid's sidecar (workload address): inbound listeners 9001-9006
haproxy_ip=127.0.92.21   # HAProxy frontends 9001-9006
nginx_ip=127.0.92.22     # nginx servers 9001-9006
discovery_ip=127.0.92.29 # Lucid's control plane
ports="9001 9002 9003 9004 9005 9006"

work=$(mktemp -d /tmp/lucid-soak.XXXXXX)
pids=()
log() { printf 'soak: %s\n' "$*" >&2; }
cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	sleep 0.5
	for pid in "${pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start() {
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	pids+=("$!")
}
wait_tcp() { # wait_tcp HOST PORT
	local i
	for i in $(seq 150); do
		if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	log "nothing listens on $1:$2"
	return 1
}

for c in haproxy nginx curl; do command -v $c >/dev/null || { log "$c is not installed"; exit 1; }; done

log "building lucid and the soak driver"
(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$work/lucid" ./cmd/lucid &&
	go build -o "$work/soak" ./bench/keepalive)

# The driver serves the upstreams itself (so it can count what they processed); the proxies
# start first, pointing at the upstream address, and connect when the first request comes.

# --- Lucid: one sidecar whose workload's app is the upstreams (inbound hop) ---------------
mkdir -p "$work/lucid-config"
{
	cat <<-EOF
		apiVersion: networking.istio.io/v1
		kind: ServiceEntry
		metadata: {name: soak, namespace: default}
		spec:
		  hosts: [soak.default.svc.cluster.local]
		  location: MESH_INTERNAL
		  resolution: STATIC
		  workloadSelector: {labels: {app: soak}}
		  ports:
	EOF
	for p in $ports; do echo "  - {number: $p, name: http-$p, protocol: HTTP}"; done
	cat <<-EOF
		---
		apiVersion: networking.istio.io/v1
		kind: WorkloadEntry
		metadata:
		  name: soak
		  namespace: default
		  annotations: {lucid.dev/app-address: "$up_ip"}
		spec:
		  address: $lucid_ip
		  labels: {app: soak}
	EOF
} >"$work/lucid-config/soak.yaml"
start discovery "$work/lucid" discovery --config-dir "$work/lucid-config" \
	--grpc-addr "$discovery_ip:15010" --debug-addr "$discovery_ip:15014" --log-level warn
start sidecar "$work/lucid" sidecar --ip "$lucid_ip" --workload soak \
	--discovery-address "$discovery_ip:15010" --log-level warning

# --- HAProxy: its defaults for keep-alive (http-reuse safe, retries 3 on connect failure) --
{
	cat <<-EOF
		global
		  maxconn 4096
		defaults
		  mode http
		  timeout connect 5s
		  timeout client 60s
		  timeout server 60s
		  option http-keep-alive
	EOF
	for p in $ports; do
		printf 'frontend f%s\n  bind %s:%s\n  default_backend b%s\n' "$p" "$haproxy_ip" "$p" "$p"
		printf 'backend b%s\n  server app %s:%s source %s\n' "$p" "$up_ip" "$p" "$haproxy_ip"
	done
} >"$work/haproxy.cfg"
start haproxy haproxy -db -f "$work/haproxy.cfg"

# --- nginx: upstream keepalive as its docs set it up ---------------------------------------
mkdir -p "$work/nginx"
{
	cat <<-EOF
		daemon off;
		master_process off;
		pid $work/nginx/nginx.pid;
		error_log $work/nginx/error.log warn;
		events { worker_connections 4096; }
		http {
		  access_log off;
		  client_body_temp_path $work/nginx;
		  proxy_temp_path $work/nginx;
	EOF
	for p in $ports; do
		cat <<-EOF
			  upstream app$p { server $up_ip:$p; keepalive 32; }
			  server {
			    listen $nginx_ip:$p;
			    location / { proxy_pass http://app$p; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_bind $nginx_ip; }
			  }
		EOF
	done
	echo "}"
} >"$work/nginx.conf"
start nginx nginx -c "$work/nginx.conf" -p "$work/nginx"

for p in $ports; do
	wait_tcp "$haproxy_ip" "$p"
	wait_tcp "$nginx_ip" "$p"
done
for i in $(seq 150); do
	curl -sf -o /dev/null --max-time 1 "http://$lucid_ip:15020/healthz/ready" && break
	sleep 0.1
done
for p in $ports; do wait_tcp "$lucid_ip" "$p"; done

log "soaking for $duration (Lucid, HAProxy, nginx at once)"
"$work/soak" -upstream-ip "$up_ip" -duration "$duration" \
	-proxies "lucid=$lucid_ip,haproxy=$haproxy_ip,nginx=$nginx_ip" >"$work/table.md" 2>"$work/errors.log" || {
	log "soak failed"
	tail -n 20 "$work/errors.log" >&2
	exit 1
}
stat() { curl -s "http://$lucid_ip:15000/stats" | grep "\.$1: " | awk -F': ' '{s+=$2} END {print s+0}'; }
saves=$(stat upstream_rq_reused_conn_retry)
retired=$(stat upstream_cx_idle_retired)
avoided=$(stat upstream_cx_idle_avoided)
extra=$(stat upstream_cx_idle_extra)
learned=$(curl -s "http://$lucid_ip:15000/clusters" | grep -E '^inbound\|900[1-6]\|\|::[^:]+:[0-9]+::idle_(timeout|reuse_limit)::' | sort)

{
	echo "# Keep-alive race soak"
	echo
	echo "Generated by \`bench/keepalive/run.sh\` on $(date -u +%Y-%m-%dT%H:%MZ). Not a test: one run on one machine."
	echo
	echo "- Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, Linux $(uname -r)"
	echo "- Lucid: $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown) (+ working tree)"
	echo "- $(haproxy -v | head -1)"
	echo "- $(nginx -v 2>&1)"
	echo "- Duration: $duration, all three proxies at once; one client per proxy and upstream"
	echo "- Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared)"
	echo
	echo "Upstreams (one process, $up_ip:9001-9006) close a connection idle for 1, 2 or 5 s, with or"
	echo "without advertising it in \`Keep-Alive: timeout=N\`, like Node.js (5 s, with header) or"
	echo "gunicorn (2 s); the close comes 5 ms after the idle timer fires (a busy event loop), and a request"
	echo "arriving in between is reset unread: the race's window."
	echo "Clients send GET, PUT, POST with an \`Idempotency-Key\` and plain POST in turn,"
	echo "each after a pause of 0.9 to 1.1 times the upstream's idle timeout (one in ten after under"
	echo "50 ms). The upstreams count request IDs: \"processed twice\" is a request the application saw"
	echo "twice. No proxy has retries configured beyond its defaults (Lucid: Istio's inbound default,"
	echo "\`reset-before-request\`; HAProxy: \`retries 3\` on connection failures, \`http-reuse safe\`;"
	echo "nginx: \`proxy_next_upstream error timeout\`, \`keepalive 32\`). \"upstream connections\" is how"
	echo "many connections the upstream accepted from each proxy (each connects from its own address)."
	echo
	cat "$work/table.md"
	echo
	echo "Lucid, summed over the inbound clusters: reused-connection saves (\`upstream_rq_reused_conn_retry\`)"
	echo "$saves; idle connections retired before the upstream's idle timeout (\`upstream_cx_idle_retired\`)"
	echo "$retired; idle connections a plain POST did not take (\`upstream_cx_idle_avoided\`) $avoided;"
	echo "connections opened because of those two (\`upstream_cx_idle_extra\`) $extra."
	echo
	echo "What Lucid learned (\`/clusters\` at the end):"
	echo
	echo '```'
	echo "$learned"
	echo '```'
	echo
	echo "Client-visible errors, first 20 lines of the driver's log:"
	echo
	echo '```'
	head -n 20 "$work/errors.log"
	echo '```'
} >"$results"
log "wrote $results"
