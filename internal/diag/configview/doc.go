// Package configview renders a sidecar's configuration as `lucid proxy-config` prints it:
// istioctl's tables (listeners, routes, clusters, endpoints) with istioctl's columns, sort
// orders and filters, or the raw resources as JSON/YAML. It sits at the end of the
// diagnostics flow:
//
//	inspect (admin /config_dump, /clusters) → resource.Snapshot + health → configview → terminal
//
// It reads only the data plane's own resource types, so what it shows is what the proxy
// decoded, and it explains empty clusters with the proxy's own words (simulate, which runs
// the cluster manager).
package configview
