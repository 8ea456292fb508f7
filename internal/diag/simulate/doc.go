// Package simulate runs one request through a proxy's real configuration without sending
// it, for `lucid why`. It sits at the end of the diagnostics flow:
//
//	admin /config_dump?include_eds → inspect (xdsclient decoders) → resource.Snapshot
//	    → simulate: listener → virtual host → route (route.Select, route.Explain)
//	                → cluster (cluster.Manager.Pick) → endpoint, or the local reply
//
// It calls the data plane's own functions (route matching and explanations, the cluster
// manager's pick and its NoHealthyError, forward's x-lucid-error rendering), so the
// explanation it prints is the one the proxy would send, word for word.
package simulate
