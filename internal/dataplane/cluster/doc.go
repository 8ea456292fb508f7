// Package cluster holds the proxy's runtime view of upstream clusters: their hosts (from EDS
// or a static load assignment), per-cluster and per-host stats that survive config updates,
// load balancing, and one-line explanations of why no host could be picked.
//
// It sits at the end of the request flow, below forward:
//
//	listener → route → forward → cluster (Pick) → pool
//
// proxy calls Manager.Update with each accepted resource.Snapshot; forward calls Get and Pick.
package cluster
