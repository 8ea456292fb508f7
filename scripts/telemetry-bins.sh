#!/usr/bin/env bash
# Builds the real telemetry backends Lucid's telemetry tests run against: an OpenTelemetry
# Collector (OTLP receiver + file exporter, test/telemetrybin/otelcol) and Prometheus
# (without service-discovery plugins: tag remove_all_sd), at the versions pinned by the
# separate module test/telemetrybin, static, into a cache outside the repository:
#
#   ${LUCID_TELEMETRY_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/lucid/telemetry/<collector>-<prometheus>}
#
# A stamp file there records the versions built; when it matches, nothing is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/../test/telemetrybin"

modver() { go list -m -f '{{.Version}}' "$1"; }
otel_version=$(modver go.opentelemetry.io/collector/otelcol)
prom_version=$(modver github.com/prometheus/prometheus)
dir=${LUCID_TELEMETRY_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/lucid/telemetry/$otel_version-$prom_version}
# The collector's main and the module's sums are part of the stamp: a change to either rebuilds.
src=$(cat otelcol/*.go go.sum | sha256sum | cut -c1-16)
stamp="otelcol go.opentelemetry.io/collector/otelcol $otel_version (source $src); prometheus github.com/prometheus/prometheus $prom_version"
bins=(otelcol prometheus)

uptodate=true
for b in "${bins[@]}"; do [[ -x $dir/$b ]] || uptodate=false; done
if [[ $uptodate == true && -f $dir/.stamp && "$(cat "$dir/.stamp")" == "$stamp" ]]; then
	echo "telemetry-bins: up to date in $dir ($stamp)"
	exit 0
fi

echo "telemetry-bins: building $stamp into $dir (a few minutes on a small machine)"
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
CGO_ENABLED=0 go build -tags remove_all_sd -trimpath -ldflags "-s -w" -o "$tmp/" ./otelcol github.com/prometheus/prometheus/cmd/prometheus
for b in "${bins[@]}"; do mv "$tmp/$b" "$dir/$b"; done
echo "$stamp" >"$dir/.stamp"
echo "telemetry-bins: built in $((SECONDS - start))s into $dir: ${bins[*]}"
