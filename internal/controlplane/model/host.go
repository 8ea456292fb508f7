package model

import (
	"net/netip"
	"strings"
)

// DomainSuffix is the cluster domain short names resolve into.
const DomainSuffix = "cluster.local"

// ResolveHost turns a host written in an object of namespace ns into the host the
// registry uses, as Istio does: a name without a dot becomes
// "<name>.<ns>.svc.cluster.local"; anything with a dot ("reviews.default" included),
// "*" and IP addresses are taken as written.
func ResolveHost(host, ns string) string {
	if host == "" || host == "*" || strings.Contains(host, ".") {
		return host
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return host
	}
	return host + "." + ns + ".svc." + DomainSuffix
}

// HostMatches reports whether pattern (a host, possibly "*" or "*.suffix") matches host.
// host itself may be a wildcard, in which case it matches when pattern covers it.
func HostMatches(pattern, host string) bool {
	if pattern == host || pattern == "*" {
		return true
	}
	if strings.HasPrefix(pattern, "*") {
		suffix := pattern[1:]
		if strings.HasPrefix(host, "*") {
			return strings.HasSuffix(host[1:], suffix)
		}
		return strings.HasSuffix(host, suffix)
	}
	return false
}

// specificity orders host patterns: exact hosts first, then longer wildcards.
func specificity(pattern string) int {
	if !strings.HasPrefix(pattern, "*") {
		return 1 << 20
	}
	return len(pattern)
}

// exported reports whether an object of namespace ns with exportTo list is visible from
// namespace from. An empty list means "*".
func exported(exportTo []string, ns, from string) bool {
	if len(exportTo) == 0 {
		return true
	}
	for _, e := range exportTo {
		switch e {
		case "*":
			return true
		case ".":
			if from == ns {
				return true
			}
		case "~":
		default:
			if e == from {
				return true
			}
		}
	}
	return false
}
