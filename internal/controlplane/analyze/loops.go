package analyze

import (
	"fmt"
	"net/netip"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// inboundLoops is LUC0009: a workload whose inbound endpoint (its app address and a port
// its sidecar serves) is its own sidecar's inbound listener, or another workload's: the
// sidecar would forward each request back to a proxy, not to an application, in a loop
// (the proxy refuses it with 502 UF "forwarding loop"; in Envoy it is a connection storm).
// In local mode the sidecar listens on the workload's address; a WorkloadEntry whose
// address is 127.0.0.1 and that has no lucid.dev/app-address annotation is the usual case.
func (a *analyzer) inboundLoops() {
	if a.m == nil {
		return
	}
	sidecars := map[netip.Addr]*model.Workload{}
	for _, w := range a.m.Workloads() {
		if w.Address.IsValid() {
			sidecars[w.Address] = w
		}
	}
	for _, w := range a.m.Workloads() {
		if w.Config.Annotations[model.ProxyAnnotation] == model.ProxyRouter {
			continue // a gateway has no app behind it
		}
		proxy, ok := sidecars[w.AppAddress]
		if !ok {
			continue
		}
		for _, p := range a.m.InboundPorts(w) {
			if !serves(a.m, proxy, p.Port) && proxy != w {
				continue
			}
			endpoint := netip.AddrPortFrom(w.AppAddress, uint16(p.Port)).String()
			whose := "its own sidecar's"
			if proxy != w {
				whose = "WorkloadEntry " + proxy.Name + "." + proxy.Namespace + "'s sidecar's"
			}
			m := a.report(w.Config, "LUC0009", Error, "metadata.annotations["+model.AppAddressAnnotation+"]",
				fmt.Sprintf("WorkloadEntry %s's inbound endpoint %s is %s inbound listener: requests for port %d (service %s) "+
					"would be forwarded to a proxy, not to the application, in a loop", w.Name, endpoint, whose, p.Port, p.Service.Host))
			m.Detail = fmt.Sprintf("spec.address %s, app address %s", w.Address, w.AppAddress)
			m.Fix = "set the " + model.AppAddressAnnotation + " annotation to the address the application listens on " +
				"(the sidecar listens on spec.address; the app must not)"
			break
		}
	}
}

// serves reports whether w's sidecar listens on port (one of its inbound ports).
func serves(m *model.Mesh, w *model.Workload, port uint32) bool {
	for _, p := range m.InboundPorts(w) {
		if p.Port == port {
			return true
		}
	}
	return false
}
