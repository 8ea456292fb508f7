package up

import (
	"cmp"
	"path/filepath"
	"slices"
	"strconv"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// AnnotationProxy on a WorkloadEntry set to ProxyRouter makes `lucid up` run a gateway
// (`lucid gateway`, Istio's router proxy) for it instead of a sidecar; Gateways select it
// by its labels, as Istio's select the istio-ingressgateway pods.
const (
	AnnotationProxy = "lucid.dev/proxy"
	ProxyRouter     = "router"
)

// GatewayServer is one port a gateway listens on for the user, from a Gateway server.
type GatewayServer struct {
	Port     uint32
	Protocol string   // HTTP, HTTPS, HTTP2, GRPC, TCP, TLS
	Hosts    []string // as written, "ns/" stripped
	Gateway  string   // the Gateway's ns/name
	TLSMode  string   // SIMPLE, MUTUAL, PASSTHROUGH, ... ("" for plaintext)
	Redirect bool     // tls.httpsRedirect
	CACert   string   // tls.caCertificates (MUTUAL), or the CA `lucid up` generates
	Path     string   // a path the Gateway's VirtualServices route ("/" when none found)
}

// isRouter reports whether a WorkloadEntry runs a gateway instead of a sidecar.
func isRouter(o *config.Object) bool { return o.Annotations[AnnotationProxy] == ProxyRouter }

// gatewayServers lists, per router workload ("ns/name"), the Gateway servers whose
// selector matches its labels, sorted by port.
func gatewayServers(dir string, objs []*config.Object, workloads []Workload) map[string][]GatewayServer {
	out := map[string][]GatewayServer{}
	for _, o := range objs {
		gw, ok := o.Spec.(*networkingv1alpha3.Gateway)
		if !ok || o.Kind != config.KindGateway {
			continue
		}
		for _, w := range workloads {
			if !w.Router || !matches(gw.GetSelector(), w.Labels) {
				continue
			}
			key := w.Namespace + "/" + w.Name
			for _, s := range gw.GetServers() {
				gs := GatewayServer{
					Port:     s.GetPort().GetNumber(),
					Protocol: s.GetPort().GetProtocol(),
					Gateway:  o.Key(),
				}
				for _, h := range s.GetHosts() {
					gs.Hosts = append(gs.Hosts, stripNamespace(h))
				}
				if t := s.GetTls(); t != nil {
					gs.Redirect = t.GetHttpsRedirect()
					if gs.Protocol == "HTTPS" || gs.Protocol == "TLS" {
						gs.TLSMode = t.GetMode().String()
						base := filepath.Join(dir, filepath.Dir(o.File))
						switch {
						case t.GetCaCertificates() != "":
							gs.CACert = resolve(base, t.GetCaCertificates())
						case o.Annotations[AnnotationGenerateCertificate] == "true" && t.GetServerCertificate() != "":
							gs.CACert = filepath.Join(filepath.Dir(resolve(base, t.GetServerCertificate())), "ca.crt")
						}
					}
				}
				gs.Path = firstPath(objs, o)
				out[key] = append(out[key], gs)
			}
		}
	}
	for k := range out {
		slices.SortStableFunc(out[k], func(a, b GatewayServer) int {
			return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Gateway, b.Gateway))
		})
	}
	return out
}

func stripNamespace(h string) string {
	for i := 0; i < len(h); i++ {
		if h[i] == '/' {
			return h[i+1:]
		}
	}
	return h
}

// gatewayProcess is the `lucid gateway` child for a router workload.
func gatewayProcess(w Workload, servers []GatewayServer, opts PlanOptions) Process {
	binds := []string{
		hostPort(w.Admin, AdminPort), hostPort(w.Address, StatusPort),
		hostPort(w.Address, HealthPort), hostPort(w.Address, PrometheusPort),
	}
	for _, s := range servers {
		binds = appendNew(binds, hostPort(w.Address, int(s.Port)))
	}
	args := []string{"gateway", "--ip", w.Address, "--workload", w.Name, "--namespace", w.Namespace, "--admin-address", w.Admin}
	if len(w.Labels) > 0 {
		args = append(args, "--labels", labelString(w.Labels))
	}
	args = append(args,
		// The gateway stops first; with no connection open it exits at once (Ctrl-C is
		// immediate), with some it drains them for up to 5 s.
		"--exit-on-zero-active-connections", "--minimum-drain-duration", "100ms",
		"--discovery-address", opts.GRPCAddr, "--access-log", "/dev/stdout", "--log-level", opts.LogLevel)
	return Process{
		Name:  w.Name,
		Role:  RoleGateway,
		Path:  opts.Executable,
		Args:  args,
		Ready: "http://" + hostPort(w.Address, HealthPort) + "/healthz/ready",
		Binds: binds,
	}
}

// gatewayURLs are the first requests to try through a gateway's servers.
func gatewayURLs(w Workload, servers []GatewayServer) []string {
	var out []string
	for _, s := range servers {
		host := w.Address
		for _, h := range s.Hosts {
			if h != "*" && h != "" && h[0] != '*' {
				host = h
				break
			}
		}
		port := strconv.Itoa(int(s.Port))
		resolve := ""
		if host != w.Address {
			resolve = " --resolve " + host + ":" + port + ":" + w.Address
		}
		switch {
		case s.Redirect:
			out = append(out, "curl -i"+resolve+" http://"+hostPort(host, int(s.Port))+s.Path+"   (redirects to https)")
		case s.Protocol == "HTTP" || s.Protocol == "HTTP2" || s.Protocol == "GRPC":
			out = append(out, "curl"+resolve+" http://"+hostPort(host, int(s.Port))+s.Path)
		case s.Protocol == "HTTPS" && s.TLSMode == "SIMPLE":
			ca := cmp.Or(s.CACert, "<the server's CA certificate>")
			out = append(out, "curl --cacert "+ca+resolve+" https://"+hostPort(host, int(s.Port))+s.Path)
		}
	}
	return out
}

// gatewayIPs are the addresses of the router WorkloadEntries, for generated certificates.
func gatewayIPs(objs []*config.Object) []string {
	var out []string
	for _, o := range objs {
		we, ok := o.Spec.(*networkingv1alpha3.WorkloadEntry)
		if ok && o.Kind == config.KindWorkloadEntry && isRouter(o) && we.GetAddress() != "" {
			out = append(out, we.GetAddress())
		}
	}
	return out
}

// firstPath is the first exact or prefix URI of a VirtualService bound to gateway gw, so
// the welcome's curl reaches a route; "/" when there is none.
func firstPath(objs []*config.Object, gw *config.Object) string {
	for _, o := range objs {
		vs, ok := o.Spec.(*networkingv1alpha3.VirtualService)
		if !ok || o.Kind != config.KindVirtualService {
			continue
		}
		bound := false
		for _, g := range vs.GetGateways() {
			if g == gw.Name && o.Namespace == gw.Namespace || g == gw.Namespace+"/"+gw.Name {
				bound = true
			}
		}
		if !bound {
			continue
		}
		for _, h := range vs.GetHttp() {
			for _, m := range h.GetMatch() {
				if p := m.GetUri().GetExact(); p != "" {
					return p
				}
				if p := m.GetUri().GetPrefix(); p != "" {
					return p
				}
			}
		}
	}
	return "/"
}
