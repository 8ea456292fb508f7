// Package contract holds what the control plane, the data plane and the CLI must agree on
// without importing each other: the control plane's /debug/syncz JSON, the probe-event
// call an agent makes over its xDS connection, xDS short type names, Envoy's health
// flag strings and the events of a proxy's tap (the admin API's /tap, relayed by the
// control plane for `lucid tap`).
//
//	control plane (ads, podevent) ──┐
//	data plane (xdsclient, admin) ──┼──► contract (standard library only)
//	CLI diagnostics (inspect, ...) ─┘
//
// It is a leaf: it imports only the standard library, so any role may import it.
package contract
