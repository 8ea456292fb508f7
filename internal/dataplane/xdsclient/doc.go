// Package xdsclient is the sidecar's xDS client: the only data-plane package that imports
// Envoy protos. It sits between the control plane and the proxy:
//
//	ads (control plane) ══ gRPC ADS, delta or SotW ══▶ xdsclient ──resource.Snapshot──▶ proxy
//
// The client keeps one Aggregated Discovery Service stream open, subscribes to listeners
// and clusters (wildcard), then to the route configurations and endpoint assignments they
// name. It speaks the delta (incremental) protocol when the server offers it (delta.go:
// only changed and removed resources travel; on reconnect it tells the server what it
// holds) and state of the world otherwise (session.go); Options.Protocol forces either. Every response is decoded and validated into the plain types of package resource;
// a response with any invalid resource is NACKed whole with a reason that names the resource
// and the field, and the previous configuration of that type keeps serving. Accepted changes
// are handed to an Applier as one complete Snapshot. When the control plane goes away the
// client reconnects with jittered exponential backoff and nothing is removed meanwhile.
//
// # What is accepted
//
// The decoders reject (NACK) every feature that would change request handling and that the
// proxy does not implement, so a control plane never believes a proxy runs what it does not.
// Fields that only feed telemetry, tracing or Envoy-internal tuning are ignored:
//   - Listener filters: envoy.filters.listener.original_dst, http_inspector, tls_inspector,
//     original_src (its mark; the sidecar applies it under TPROXY interception).
//   - Network filters: http_connection_manager or tcp_proxy ending the chain; istio.metadata_exchange
//     and istio.stats are ignored; anything else is rejected.
//   - HTTP filters: envoy.filters.http.router (required), envoy.filters.http.fault and
//     envoy.filters.http.cors are run; istio.metadata_exchange, istio.stats, istio.alpn,
//     envoy.filters.http.grpc_stats are ignored (telemetry); anything else is rejected.
//   - Route matchers grpc, tls_context, runtime_fraction, dynamic_metadata, filter_state,
//     cookies and connect_matcher are rejected. Route hash_policy is decoded (header, cookie,
//     source IP, query parameter); upgrade_configs, max_stream_duration, idle_timeout, cors
//     and decorator-only fields are ignored.
//   - Clusters: health_checks, transport sockets other than raw_buffer, custom cluster types
//     and load_balancing_policy are rejected. outlier_detection (consecutive errors; success-rate
//     ejection is ignored) and circuit_breakers retry_budget are decoded and enforced.
//
// Repeated identical responses that were NACKed are NACKed again after a growing delay, so a
// control plane that resends on NACK (go-control-plane's snapshot cache does) causes no busy loop.
package xdsclient
