// Package telemetrybin pins the real telemetry backends Lucid's telemetry tests run
// against, built by scripts/telemetry-bins.sh (make telemetry-bins) into a cache outside
// the repository: an OpenTelemetry Collector with only the OTLP receiver and the file
// exporter (./otelcol), and Prometheus without its service-discovery plugins (tag
// remove_all_sd; the tests give it static targets).
package telemetrybin

import _ "github.com/prometheus/prometheus/cmd/prometheus" // pinned by go.mod; built by the script
