package model

import (
	"net/netip"
	"strings"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// AppAddressAnnotation on a WorkloadEntry says where the workload's application listens
// in local mode (default 127.0.0.1); the application listens on the service target ports.
const AppAddressAnnotation = "lucid.dev/app-address"

// Port is one ServiceEntry port.
type Port struct {
	Name       string
	Number     uint32
	Protocol   string // upper-case, as Istio parses it: HTTP, HTTP2, GRPC, GRPC-WEB, HTTPS, TLS, TCP, ...
	TargetPort uint32 // 0 when unset
}

// IsHTTP reports whether Istio routes the port with an HTTP connection manager.
// An empty or unknown protocol would be sniffed by Istio; Lucid treats it as HTTP.
func (p Port) IsHTTP() bool {
	switch p.Protocol {
	case "HTTP", "HTTP2", "GRPC", "GRPC-WEB", "":
		return true
	case "HTTPS", "TLS", "TCP", "MONGO", "REDIS", "MYSQL", "UDP":
		return false
	}
	return true
}

// IsHTTP2 reports whether upstream connections use HTTP/2 (http2 and grpc ports).
func (p Port) IsHTTP2() bool {
	return p.Protocol == "HTTP2" || p.Protocol == "GRPC" || p.Protocol == "GRPC-WEB"
}

// Service is one host of a ServiceEntry.
type Service struct {
	Host       string
	Namespace  string
	Addresses  []string
	Ports      []Port
	Resolution string // "STATIC", "NONE", "DNS", ...
	External   bool   // location MESH_EXTERNAL
	ExportTo   []string
	Selector   map[string]string // workloadSelector.labels; nil with inline endpoints
	Config     *config.Object    // the ServiceEntry
}

// Port returns the service port with the given number.
func (s *Service) Port(n uint32) (Port, bool) {
	for _, p := range s.Ports {
		if p.Number == n {
			return p, true
		}
	}
	return Port{}, false
}

// Endpoint is one address serving one service port.
type Endpoint struct {
	Address        string // IP or hostname
	Port           uint32 // target port on Address
	Labels         map[string]string
	Weight         uint32 // 0 when unset
	Locality       string // "region/zone/subzone"
	ServiceAccount string
	Workload       string // WorkloadEntry name, or "" for inline endpoints
	Namespace      string
}

// WorkloadID is Istio's endpoint metadata "istio".workload:
// "name;namespace;canonical name;canonical revision;cluster".
func (e *Endpoint) WorkloadID() string {
	name := e.Workload
	canonical := e.Labels["service.istio.io/canonical-name"]
	if canonical == "" {
		canonical = e.Labels["app.kubernetes.io/name"]
	}
	if canonical == "" {
		canonical = e.Labels["app"]
	}
	if canonical == "" {
		canonical = name
	}
	rev := e.Labels["service.istio.io/canonical-revision"]
	if rev == "" {
		rev = e.Labels["app.kubernetes.io/version"]
	}
	if rev == "" {
		rev = e.Labels["version"]
	}
	if rev == "" {
		rev = "latest"
	}
	return strings.Join([]string{name, e.Namespace, canonical, rev, "Kubernetes"}, ";")
}

// Workload is one WorkloadEntry.
type Workload struct {
	Name           string
	Namespace      string
	Address        netip.Addr // invalid when the entry's address is a hostname
	AppAddress     netip.Addr // where the application listens (lucid.dev/app-address, default 127.0.0.1)
	Labels         map[string]string
	Ports          map[string]uint32
	ServiceAccount string
	Locality       string
	Weight         uint32
	Config         *config.Object
}

// InboundPort is one port a workload serves through its sidecar.
type InboundPort struct {
	Port     uint32 // the sidecar's inbound port (a service's target port)
	AppPort  uint32 // where the application listens (Port, unless a Sidecar ingress says otherwise)
	Protocol string
	Service  *Service // the first service exposing the port (nil for a Sidecar ingress port no service has)
	Name     string   // service port name
}

// IsHTTP reports whether the inbound port is routed as HTTP.
func (p InboundPort) IsHTTP() bool { return Port{Protocol: p.Protocol}.IsHTTP() }

// selects reports whether labels contains every selector label.
func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
