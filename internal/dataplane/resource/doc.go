// Package resource holds the plain, validated Go forms of the xDS resources the proxy runs:
// listeners, route configurations, clusters and endpoints. It is the contract between the
// two halves of the data plane:
//
//	xdsclient (decodes Envoy v3 protos, validates, NACKs) → resource → proxy, route, cluster, forward
//
// Nothing here imports a proto. Every field says which Envoy v3 field it comes from, so the
// control plane's translate package (which writes those protos) and xdsclient (which reads
// them) agree on one wire format: standard Envoy, with Istio's names and metadata.
//
// Values are immutable once built: the proxy swaps whole tables atomically and in-flight
// requests keep the tables they started with.
package resource
