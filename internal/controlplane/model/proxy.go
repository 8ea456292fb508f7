package model

import (
	"fmt"
	"maps"
	"net/netip"
	"strings"
)

// Proxy types, the first field of Istio's node id.
const (
	ProxySidecar = "sidecar"
	ProxyRouter  = "router"
)

// Proxy is one data-plane proxy as identified by its xDS node.
type Proxy struct {
	ID             string            // xDS node id, "sidecar~127.0.10.2~reviews-v1.default~default.svc.cluster.local"
	Type           string            // "sidecar" or "router"
	IP             netip.Addr        // the workload's address
	Name           string            // workload name (WorkloadEntry name)
	Namespace      string            // the workload's namespace
	Labels         map[string]string // filled by (*Mesh).ResolveProxy
	ServiceAccount string            // filled by (*Mesh).ResolveProxy
	// GRPC: a proxyless gRPC client (node metadata GENERATOR "grpc"), served as Istio's
	// grpcgen serves it (translate/grpc.go).
	GRPC bool
	// TProxy: the sidecar's inbound traffic is captured with TPROXY (node metadata
	// INTERCEPTION_MODE); its virtualInbound carries Istio's original_src listener filter.
	TProxy bool
}

// ParseNodeID parses Istio's node id "type~ip~name.namespace~namespace.svc.cluster.local".
func ParseNodeID(id string) (*Proxy, error) {
	parts := strings.Split(id, "~")
	if len(parts) != 4 {
		return nil, fmt.Errorf("node id %q: want 4 fields separated by ~ (type~ip~name.namespace~namespace.svc.cluster.local), got %d", id, len(parts))
	}
	typ := parts[0]
	if typ != ProxySidecar && typ != ProxyRouter {
		return nil, fmt.Errorf("node id %q: unknown proxy type %q (want sidecar or router)", id, typ)
	}
	ip, err := netip.ParseAddr(parts[1])
	if err != nil {
		return nil, fmt.Errorf("node id %q: ip: %w", id, err)
	}
	ns, _, _ := strings.Cut(parts[3], ".")
	name := parts[2]
	switch {
	case ns != "" && strings.HasSuffix(name, "."+ns):
		name = strings.TrimSuffix(name, "."+ns)
	default:
		i := strings.LastIndexByte(name, '.')
		if i <= 0 || i == len(name)-1 {
			return nil, fmt.Errorf("node id %q: workload %q: want name.namespace", id, name)
		}
		if ns == "" {
			ns = name[i+1:]
		}
		name = name[:i]
	}
	if name == "" || ns == "" {
		return nil, fmt.Errorf("node id %q: empty workload name or namespace", id)
	}
	return &Proxy{ID: id, Type: typ, IP: ip.Unmap(), Name: name, Namespace: ns}, nil
}

// ResolveProxy returns a copy of p with Labels and ServiceAccount filled from the
// WorkloadEntry with p's name and namespace or, failing that, p's address.
func (m *Mesh) ResolveProxy(p *Proxy) *Proxy {
	out := *p
	w := m.workloadByName[p.Namespace+"/"+p.Name]
	if w == nil {
		w = m.workloadByIP[p.IP]
	}
	if w != nil {
		out.Labels = maps.Clone(w.Labels)
		out.ServiceAccount = w.ServiceAccount
		if out.Labels == nil {
			out.Labels = map[string]string{}
		}
	}
	return &out
}

// Workload returns the WorkloadEntry a proxy runs for (by name, then by address), or nil.
func (m *Mesh) Workload(p *Proxy) *Workload {
	if w := m.workloadByName[p.Namespace+"/"+p.Name]; w != nil {
		return w
	}
	return m.workloadByIP[p.IP]
}
