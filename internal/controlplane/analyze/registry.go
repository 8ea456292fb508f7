package analyze

import (
	"maps"
	"regexp"
	"slices"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// The service registry as Istio's analyzers see it: every ServiceEntry host and every
// Kubernetes Service, keyed by the namespace it is visible in ("*" for all) and its fully
// qualified name. Lookups follow Istio's analyzers (util.GetDestinationHost), which is not
// always how the proxy resolves hosts: "reviews.default" is an FQDN here, as it is for Istio.

// scopedHost is "<scope>/<fqdn>": the scope is "*" or a namespace.
type scopedHost string

func newScopedHost(scope, ns, host string) scopedHost {
	return scopedHost(scope + "/" + fqdn(ns, host))
}

func (s scopedHost) split() (scope, host string) {
	scope, host, _ = strings.Cut(string(s), "/")
	return scope, host
}

// fqdn is Istio's analyzers' ConvertHostToFQDN: a name without a dot and not a wildcard
// is a Kubernetes service name in namespace ns.
func fqdn(ns, host string) string {
	if !strings.HasPrefix(host, "*") && !strings.Contains(host, ".") {
		return host + "." + ns + ".svc.cluster.local"
	}
	return host
}

var kubeFQDN = regexp.MustCompile(`^(.+)\.(.+)\.svc\.cluster\.local$`)

// resourceName is Istio's analyzers' GetResourceNameFromHost: a Kubernetes FQDN names its
// service and namespace; anything else is taken as a name in namespace ns.
func resourceName(ns, host string) (string, string) {
	if m := kubeFQDN.FindStringSubmatch(host); m != nil {
		return m[2], m[1]
	}
	return ns, host
}

// registryEntry is one host's service: its ports and, for a ServiceEntry, its workload
// selector.
type registryEntry struct {
	obj      *config.Object
	ports    []registryPort
	selector map[string]string // ServiceEntry workloadSelector (nil for Services, as in Istio's analyzers)
	// service is the Kubernetes Service behind the entry (nil for a ServiceEntry).
	service *service
}

type registryPort struct {
	number   uint32
	name     string
	protocol string
}

// buildRegistry is Istio's analyzers' InitServiceEntryHostMap.
func (a *analyzer) buildRegistry() {
	a.registry = map[scopedHost]*registryEntry{}
	defer func() {
		a.wildcards = nil
		for _, sh := range slices.Sorted(maps.Keys(a.registry)) { // sorted: one answer when several wildcards match
			if _, h := sh.split(); strings.HasPrefix(h, "*") {
				a.wildcards = append(a.wildcards, sh)
			}
		}
	}()
	for _, o := range a.kind(config.KindServiceEntry) {
		se, ok := o.Spec.(*networkingv1alpha3.ServiceEntry)
		if !ok {
			continue
		}
		e := &registryEntry{obj: o, selector: se.GetWorkloadSelector().GetLabels()}
		for _, p := range se.GetPorts() {
			e.ports = append(e.ports, registryPort{number: p.GetNumber(), name: p.GetName(), protocol: p.GetProtocol()})
		}
		for _, h := range se.GetHosts() {
			if exportsToAll(se.GetExportTo()) {
				a.registry[newScopedHost("*", o.Namespace, h)] = e
				continue
			}
			for _, ns := range se.GetExportTo() {
				switch ns {
				case "*":
					a.registry[newScopedHost("*", o.Namespace, h)] = e
				case ".":
					a.registry[newScopedHost(o.Namespace, o.Namespace, h)] = e
				default:
					a.registry[newScopedHost(ns, o.Namespace, h)] = e
				}
			}
		}
	}
	for _, s := range a.services {
		e := &registryEntry{obj: s.obj, service: s}
		for _, p := range s.ports {
			e.ports = append(e.ports, registryPort{number: uint32(p.port), name: p.name, protocol: string(p.protocol)})
		}
		for _, scope := range serviceScopes(s) {
			a.registry[newScopedHost(scope, s.ns, s.name)] = e
		}
	}
}

// serviceScopes are the namespaces a Service is visible in: its
// networking.istio.io/exportTo annotation, else everywhere.
func serviceScopes(s *service) []string {
	anno := s.annotations["networking.istio.io/exportTo"]
	if anno == "" {
		return []string{"*"}
	}
	var out []string
	for ns := range strings.SplitSeq(anno, ",") {
		ns = strings.TrimSpace(ns)
		if ns == "." {
			ns = s.ns
		}
		out = append(out, ns)
	}
	return out
}

func exportsToAll(exportTo []string) bool {
	return len(exportTo) == 0 || slices.Contains(exportTo, "*")
}

// exportScopes are the namespaces an object of namespace ns exported to exportTo is
// visible in: ["*"] for all, "." as ns.
func exportScopes(exportTo []string, ns string) []string {
	if exportsToAll(exportTo) {
		return []string{"*"}
	}
	var out []string
	for _, e := range exportTo {
		if e == "." {
			e = ns
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// lookup is Istio's analyzers' GetDestinationHost: the entry for host as seen from
// namespace ns by an object exported to exportTo, wildcard entries last.
func (a *analyzer) lookup(ns string, exportTo []string, host string) *registryEntry {
	if e := a.registry[newScopedHost("*", ns, host)]; e != nil {
		return e
	}
	if len(exportTo) == 0 {
		if e := a.registry[newScopedHost(ns, ns, host)]; e != nil {
			return e
		}
	} else {
		for _, x := range exportTo {
			if x == "." {
				x = ns
			}
			if e := a.registry[newScopedHost(x, ns, host)]; e != nil {
				return e
			}
		}
	}
	for _, sh := range a.wildcards {
		scope, h := sh.split()
		if scope != "*" && scope != ns {
			continue
		}
		if strings.HasSuffix(strings.TrimPrefix(host, "*"), strings.TrimPrefix(h, "*")) {
			return a.registry[sh]
		}
	}
	return nil
}

// hostMatches is Istio's host.Name.Matches: equal names, or a wildcard covering the
// other (both ways).
func hostMatches(n, o string) bool { return config.HostsMatch(n, o) }
