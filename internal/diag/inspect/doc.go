// Package inspect reads a running mesh for the CLI's diagnostics (proxy-config,
// proxy-status, why). It sits beside the flow, at its two ends:
//
//	control plane debug port (:15014) ── /debug/syncz, /debug/config_dump, /debug/analyze ──┐
//	sidecar admin API (:15000) ── /config_dump, /clusters?format=json, /logging ────────────┤
//	                                                                                    inspect
//
// An Envoy ConfigDump is decoded here into the data plane's own resource types with
// xdsclient's decoders, so what the CLI shows and simulates is exactly what the proxy runs;
// the raw resources are kept too, for diffs. Workload names are resolved to admin
// addresses through the control plane's sync status (node ids are Istio's,
// sidecar~<ip>~<workload>.<namespace>~<namespace>.svc.cluster.local). The /logging
// protocol (levels, timed changes the sidecar reverts itself) is in logging.go.
package inspect
