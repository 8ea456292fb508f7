package analyze

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// The ServiceEntry checks: Istio's ProtocolAddressesAnalyzer (IST0134) and
// ConflictingServiceEntryProtocolAnalyzer (IST0177).

func (a *analyzer) serviceEntries() {
	autoAllocate := false
	if md := a.mesh.GetDefaultConfig().GetProxyMetadata(); md["ISTIO_META_DNS_CAPTURE"] == "true" &&
		(md["ISTIO_META_DNS_AUTO_ALLOCATE"] == "true" || md["PILOT_ENABLE_IP_AUTOALLOCATE"] == "true") {
		autoAllocate = true
	}
	for _, o := range a.kind(config.KindServiceEntry) {
		se, ok := o.Spec.(*networkingv1alpha3.ServiceEntry)
		if !ok || se.GetAddresses() != nil || autoAllocate {
			continue
		}
		for i, p := range se.GetPorts() {
			if p.GetProtocol() == "" || strings.EqualFold(p.GetProtocol(), "TCP") {
				m := a.report(o, "IST0134", Warning, fmt.Sprintf("spec.ports[%d].name", i), "ServiceEntry addresses are required for this protocol.")
				m.Detail = fmt.Sprintf("port %d is TCP (or unset): without an address, a sidecar cannot tell this service's connections apart from other services on the port", p.GetNumber())
				m.Fix = "set spec.addresses (a virtual IP), or set the port's protocol to HTTP, TLS, ..."
			}
		}
	}
	a.conflictingProtocols()
}

// conflictingProtocols is IST0177: ServiceEntries visible in one namespace define the same
// host and port with different protocols.
func (a *analyzer) conflictingProtocols() {
	type key struct {
		scope, host string
		port        uint32
	}
	type entry struct {
		protocol string
		obj      *config.Object
	}
	index := map[key][]entry{}
	for _, o := range a.kind(config.KindServiceEntry) {
		se, ok := o.Spec.(*networkingv1alpha3.ServiceEntry)
		if !ok {
			continue
		}
		for _, scope := range exportScopes(se.GetExportTo(), o.Namespace) {
			for _, h := range se.GetHosts() {
				for _, p := range se.GetPorts() {
					k := key{scope, h, p.GetNumber()}
					index[k] = append(index[k], entry{p.GetProtocol(), o})
				}
			}
		}
	}
	reported := map[*config.Object]bool{}
	keys := slices.SortedFunc(maps.Keys(index), func(x, y key) int {
		return strings.Compare(fmt.Sprintf("%s/%s:%05d", x.scope, x.host, x.port), fmt.Sprintf("%s/%s:%05d", y.scope, y.host, y.port))
	})
	for _, k := range keys {
		entries := index[k]
		if k.scope != "*" {
			entries = append(entries, index[key{"*", k.host, k.port}]...)
		}
		protocols := map[string]bool{}
		for _, e := range entries {
			protocols[strings.ToUpper(e.protocol)] = true
		}
		if len(protocols) < 2 {
			continue
		}
		var names []string
		for _, e := range entries {
			if n := e.obj.Namespace + "/" + e.obj.Name; !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		for _, e := range entries {
			if reported[e.obj] {
				continue
			}
			reported[e.obj] = true
			m := a.reportf(e.obj, "IST0177", Warning, "metadata.name", "Multiple ServiceEntries (%s) define the same host %q and port %d with conflicting protocols (%s).",
				strings.Join(names, ", "), k.host, k.port, strings.Join(slices.Sorted(maps.Keys(protocols)), ", "))
			m.Detail = "a sidecar builds one listener and one cluster per host and port: only one protocol applies"
			m.Fix = "give the port the same protocol in every ServiceEntry, or merge them"
		}
	}
}
