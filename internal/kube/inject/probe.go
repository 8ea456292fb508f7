package inject

import (
	"encoding/json"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Prober is one original probe (or lifecycle hook) in ISTIO_KUBE_APP_PROBERS: exactly one
// of HTTPGet, TCPSocket and GRPC, in Kubernetes' JSON. The agent reads it.
type Prober struct {
	HTTPGet        *corev1.HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket      *corev1.TCPSocketAction `json:"tcpSocket,omitempty"`
	GRPC           *corev1.GRPCAction      `json:"grpc,omitempty"`
	TimeoutSeconds int32                   `json:"timeoutSeconds,omitempty"`
}

// Status-server paths that take over a container's probes (Istio's FormatProberURL).
func proberPaths(container string) (readyz, livez, startupz, prestopz, poststartz string) {
	return "/app-health/" + container + "/readyz",
		"/app-health/" + container + "/livez",
		"/app-health/" + container + "/startupz",
		"/app-lifecycle/" + container + "/prestopz",
		"/app-lifecycle/" + container + "/poststartz"
}

// rewriteProbes is Istio's applyRewrite: the originals of every container's httpGet,
// tcpSocket and grpc probes and lifecycle hooks go to ISTIO_KUBE_APP_PROBERS (named ports
// resolved), and the probes become httpGet on the status port at /app-health/... and
// /app-lifecycle/.... exec probes are left alone. With status port 0 (no status server)
// nothing is rewritten: Istio would point the probes at port 0, a pod the API server
// refuses.
func (w *injection) rewriteProbes() {
	if !w.ann.rewriteProbes || w.ann.statusPort == 0 {
		return
	}
	proxy := findProxy(w.pod)
	if probers := w.dumpProbers(); len(probers) > 0 {
		b, err := json.Marshal(probers)
		if err == nil {
			proxy.Env = append(proxy.Env, corev1.EnvVar{Name: EnvAppProbers, Value: string(b)})
		}
	}
	port := w.ann.statusPort
	for _, list := range [][]corev1.Container{w.pod.Spec.Containers, w.pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name != ProxyContainerName {
				rewriteContainer(&list[i], port)
			}
		}
	}
}

// dumpProbers collects the originals, init containers first (Istio's allContainers).
func (w *injection) dumpProbers() map[string]*Prober {
	out := map[string]*Prober{}
	all := append(append([]corev1.Container{}, w.pod.Spec.InitContainers...), w.pod.Spec.Containers...)
	for _, c := range all {
		if c.Name == ProxyContainerName {
			continue
		}
		readyz, livez, startupz, prestopz, poststartz := proberPaths(c.Name)
		add := func(path, what string, p *Prober) {
			if p == nil {
				return
			}
			if !w.resolvePort(&c, p) {
				w.warnings = append(w.warnings, fmt.Sprintf(
					"container %s: the %s names port %q, which the container does not declare: "+
						"it is left out of %s and %s will answer 400", c.Name, what, namedPort(p), EnvAppProbers, path))
				return
			}
			out[path] = p
		}
		add(readyz, "readiness probe", probeToProber(c.ReadinessProbe))
		add(livez, "liveness probe", probeToProber(c.LivenessProbe))
		add(startupz, "startup probe", probeToProber(c.StartupProbe))
		if c.Lifecycle != nil {
			add(prestopz, "preStop hook", hookToProber(c.Lifecycle.PreStop))
			add(poststartz, "postStart hook", hookToProber(c.Lifecycle.PostStart))
		}
	}
	return out
}

func probeToProber(p *corev1.Probe) *Prober {
	switch {
	case p == nil:
		return nil
	case p.HTTPGet != nil:
		return &Prober{HTTPGet: p.HTTPGet.DeepCopy(), TimeoutSeconds: p.TimeoutSeconds}
	case p.TCPSocket != nil:
		return &Prober{TCPSocket: p.TCPSocket.DeepCopy(), TimeoutSeconds: p.TimeoutSeconds}
	case p.GRPC != nil:
		return &Prober{GRPC: p.GRPC.DeepCopy(), TimeoutSeconds: p.TimeoutSeconds}
	}
	return nil
}

// hookToProber: lifecycle hooks carry no timeout.
func hookToProber(h *corev1.LifecycleHandler) *Prober {
	switch {
	case h == nil:
		return nil
	case h.HTTPGet != nil:
		return &Prober{HTTPGet: h.HTTPGet.DeepCopy()}
	case h.TCPSocket != nil:
		return &Prober{TCPSocket: h.TCPSocket.DeepCopy()}
	}
	return nil
}

func probePort(p *Prober) *intstr.IntOrString {
	switch {
	case p.HTTPGet != nil:
		return &p.HTTPGet.Port
	case p.TCPSocket != nil:
		return &p.TCPSocket.Port
	}
	return nil // gRPC ports are integers
}

func namedPort(p *Prober) string {
	if port := probePort(p); port != nil {
		return port.StrVal
	}
	return ""
}

// resolvePort replaces a named port with the container's port of that name, or a numeric
// string with its number; it reports false when neither works (Istio drops the probe).
func (w *injection) resolvePort(c *corev1.Container, p *Prober) bool {
	port := probePort(p)
	if port == nil || port.Type == intstr.Int {
		return true
	}
	for _, cp := range c.Ports {
		if cp.Name == port.StrVal && cp.ContainerPort > 0 {
			*port = intstr.FromInt32(cp.ContainerPort)
			return true
		}
	}
	n, err := strconv.ParseInt(port.StrVal, 10, 32)
	if err != nil {
		return false
	}
	*port = intstr.FromInt32(int32(n))
	return true
}

// rewriteContainer points the container's probes and hooks at the status server.
func rewriteContainer(c *corev1.Container, statusPort int32) {
	readyz, livez, startupz, prestopz, poststartz := proberPaths(c.Name)
	rewriteProbe(c.ReadinessProbe, readyz, statusPort)
	rewriteProbe(c.LivenessProbe, livez, statusPort)
	rewriteProbe(c.StartupProbe, startupz, statusPort)
	if c.Lifecycle != nil {
		rewriteHook(c.Lifecycle.PreStop, prestopz, statusPort)
		rewriteHook(c.Lifecycle.PostStart, poststartz, statusPort)
	}
}

func rewriteProbe(p *corev1.Probe, path string, port int32) {
	if p == nil {
		return
	}
	switch {
	case p.HTTPGet != nil:
	case p.TCPSocket != nil:
		p.HTTPGet, p.TCPSocket = &corev1.HTTPGetAction{}, nil
	case p.GRPC != nil:
		p.HTTPGet, p.GRPC = &corev1.HTTPGetAction{}, nil
	default:
		return // exec: runs in the container, works under mTLS
	}
	pointAt(p.HTTPGet, path, port)
}

func rewriteHook(h *corev1.LifecycleHandler, path string, port int32) {
	if h == nil {
		return
	}
	switch {
	case h.HTTPGet != nil:
	case h.TCPSocket != nil:
		h.HTTPGet, h.TCPSocket = &corev1.HTTPGetAction{}, nil
	default:
		return
	}
	pointAt(h.HTTPGet, path, port)
}

// pointAt sends an httpGet to the status server; HTTPS becomes HTTP (kubelet → HTTP → agent
// → HTTPS → app). Host, headers and the probe's timings stay.
func pointAt(a *corev1.HTTPGetAction, path string, port int32) {
	a.Port = intstr.FromInt32(port)
	a.Path = path
	if a.Scheme == corev1.URISchemeHTTPS {
		a.Scheme = corev1.URISchemeHTTP
	}
}
