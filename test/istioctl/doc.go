// Package istioctl checks that istioctl reads Lucid: istioctl's own config-dump parsing and
// table writers (istio.io/istio/istioctl/pkg/writer/envoy/...), run as a library on a real
// Lucid sidecar's and gateway's admin API (/config_dump, /clusters?format=json), print the
// same tables as `lucid proxy-config`: listeners, routes, clusters and endpoints, columns
// and rows identical; and every section istioctl reads (bootstrap, secrets, all) parses.
//
// It is a separate module so that the main module does not depend on istio.io/istio; it
// pins the same istio.io/istio as test/istioanalyze, so both build from one module cache.
// Run it with `cd test/istioctl && go test ./...` (make test-istioctl, part of make test).
package istioctl
