// Package route implements Envoy's HTTP routing semantics on resource.RouteConfig:
// virtual host selection by authority, route matching (path, headers, query parameters),
// weighted cluster choice, path rewrites, redirects and header operations, plus one-line
// explanations of why a request matched no route.
//
// It sits in the request flow between the listener and forward:
//
//	listener → route (Select, PickCluster, RewritePath) → forward → cluster → pool
//
// Everything here is pure: no goroutines, no I/O, and resource values are never modified.
package route
