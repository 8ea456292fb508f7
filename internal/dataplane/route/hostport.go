package route

import (
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// matchedHost is the part of a Host/:authority value the domains are compared with: all
// of it, or without its port when the route configuration ignores ports in host matching.
func matchedHost(rc *resource.RouteConfig, host string) string {
	if rc != nil && rc.IgnorePortInHostMatching {
		return StripPort(host)
	}
	return host
}

// StripPort removes the port from a Host/:authority value as Envoy's
// ignore_port_in_host_matching does (HeaderUtility::getPortStart): everything from the
// last ':' unless that ':' is inside an IPv6 literal's brackets. The port is not checked
// to be numeric: "a.com:" and "a.com:x" both become "a.com", "[::1]" stays as it is.
func StripPort(host string) string {
	i := strings.LastIndexByte(host, ':')
	if i < 0 {
		return host
	}
	if j := strings.LastIndexByte(host, ']'); j > i {
		return host
	}
	return host[:i]
}
