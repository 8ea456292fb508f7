// Package inject is Lucid's sidecar injector: a Pod, what is known of its namespace and
// the injection Config go in; the injected Pod, or a Decision saying why the pod is left
// alone, comes out. It sits where a pod enters the mesh on Kubernetes: the admission
// webhook (served by `lucid discovery`) and `lucid kube-inject` wrap it. Pure: no I/O, no
// logging; problems come back as errors (invalid annotations) or Warnings.
//
// It reproduces Istio's injector (pkg/kube/inject): the selection rules, the
// istio-proxy container (running `lucid sidecar`) and the istio-init container (running
// `lucid iptables`), the rewrite of the app's httpGet/tcpSocket/grpc probes and lifecycle
// hooks to the status port with the originals in ISTIO_KUBE_APP_PROBERS, the Prometheus
// merge, Istio's labels and annotations, and the container order.
package inject

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// Policy is the injection policy when a pod says nothing (Istio's global.proxy.autoInject).
type Policy string

// Policies.
const (
	PolicyEnabled  Policy = "enabled"  // inject unless the pod opts out (Istio's default)
	PolicyDisabled Policy = "disabled" // inject only pods that opt in with sidecar.istio.io/inject=true
)

// DefaultDiscoveryAddress is where injected sidecars find the control plane: the TLS port
// (xDS and the mesh CA) of the Service `lucid install` creates.
const DefaultDiscoveryAddress = "lucid-discovery.istio-system.svc:15012"

// Config is the injection configuration (Istio's values and mesh config that matter here).
// The zero value of every field but Image means Istio's default.
type Config struct {
	Image            string            // image of istio-proxy and istio-init (required): a lucid image
	ImagePullPolicy  corev1.PullPolicy // "" leaves Kubernetes' default
	DiscoveryAddress string            // host:port of the control plane's ADS; default DefaultDiscoveryAddress (identity.go: a :15010 one is plaintext, without workload identity)
	Policy           Policy            // default PolicyEnabled
	Revision         string            // the control plane's revision; default "default"
	StatusPort       int32             // the mesh's status port (defaultConfig.statusPort); default 15020
	// TrustDomain is meshConfig.trustDomain: the trust domain of the identity the sidecar
	// asks the CA for and accepts (identity.go); default cluster.local.
	TrustDomain string

	// DisableProbeRewrite turns off the probe rewrite unless a pod's
	// sidecar.istio.io/rewriteAppHTTPProbers says otherwise (Istio's
	// sidecarInjectorWebhook.rewriteAppHTTPProbe: false).
	DisableProbeRewrite bool
	// DisablePrometheusMerge is meshConfig.enablePrometheusMerge: false.
	DisablePrometheusMerge bool
	// HoldApplicationUntilProxyStarts is the mesh-wide default of the ProxyConfig field.
	HoldApplicationUntilProxyStarts bool
}

func (c Config) withDefaults() Config {
	if c.DiscoveryAddress == "" {
		c.DiscoveryAddress = DefaultDiscoveryAddress
	}
	if c.Policy == "" {
		c.Policy = PolicyEnabled
	}
	if c.Revision == "" {
		c.Revision = "default"
	}
	if c.StatusPort == 0 {
		c.StatusPort = 15020
	}
	return c
}

// Namespace is what the caller knows of the pod's namespace.
type Namespace struct {
	Name   string
	Labels map[string]string
}

// Request is one pod to inject.
type Request struct {
	Pod *corev1.Pod // not modified
	// Namespace is the pod's namespace with its labels, used to apply the webhook's
	// namespace and object selectors (istio-injection=enabled, istio.io/rev, ...). nil means
	// not known: the selectors are skipped, as `istioctl kube-inject` does.
	Namespace *Namespace
	// Workload names the pod's workload (a Deployment's name, ...). Empty: derived from the
	// pod's controller as Istio does (a ReplicaSet "reviews-v1-5f8c7" → "reviews-v1").
	Workload string
}

// Result is the outcome: Injected says whether Pod is a new, injected copy; when it is
// false, Pod is the request's pod, unchanged, and Reason says why.
type Result struct {
	Pod      *corev1.Pod
	Injected bool
	Reason   string   // why the pod was not injected; empty when it was
	Warnings []string // things the user should know about an injected pod (a probe that cannot work, ...)
}

// Pod injects req.Pod. An error means the pod asks for something invalid (a malformed
// annotation, ...): Istio refuses such a pod and so does Lucid, with the annotation named.
func Pod(cfg Config, req Request) (Result, error) {
	if req.Pod == nil {
		return Result{}, errors.New("inject: no pod")
	}
	cfg = cfg.withDefaults()
	if cfg.Image == "" {
		return Result{}, errors.New("inject: no image configured for the sidecar")
	}
	d := Decide(req.Pod, req.Namespace, cfg.Policy, cfg.Revision)
	if !d.Inject {
		return Result{Pod: req.Pod, Reason: d.Reason}, nil
	}
	ann, err := parseAnnotations(req.Pod.Annotations, cfg)
	if err != nil {
		return Result{}, fmt.Errorf("inject: %w", err)
	}
	pod := req.Pod.DeepCopy()
	if pod.Namespace == "" && req.Namespace != nil {
		pod.Namespace = req.Namespace.Name
	}
	workload := req.Workload
	if workload == "" {
		workload = workloadName(pod)
	}
	w := &injection{cfg: cfg, ann: ann, pod: pod, workload: workload}
	w.run()
	return Result{Pod: pod, Injected: true, Warnings: w.warnings}, nil
}

// injection is one pod being injected.
type injection struct {
	cfg      Config
	ann      annotations
	pod      *corev1.Pod
	workload string
	warnings []string
}

// run applies the steps in Istio's order: the template (containers, volumes, labels),
// then the Prometheus merge, the probe rewrite, the status annotation, the reordering.
func (w *injection) run() {
	p := w.pod
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	appContainers := containerNames(p.Spec.Containers)

	proxy := w.proxyContainer(appContainers)
	proxy.Env = append(proxy.Env, w.metadataEnv()...) // metadata.go
	p.Spec.Containers = append(p.Spec.Containers, proxy)
	var inits []string
	if w.ann.interceptionMode != "NONE" {
		initc := w.initContainer()
		initc.Env = w.metadataEnv() // metadata.go: ISTIO_META_DNS_CAPTURE turns on DNS capture
		p.Spec.InitContainers = append(p.Spec.InitContainers, initc)
		inits = append(inits, InitContainerName)
	}
	volumes := proxyVolumes(w.cfg.DiscoveryAddress)
	p.Spec.Volumes = append(p.Spec.Volumes, volumes...)
	w.setMetadata(appContainers)

	w.prometheusMerge()
	w.rewriteProbes()
	w.setStatus(inits, volumes)
	w.reorder()
}

func containerNames(cs []corev1.Container) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// findProxy returns the istio-proxy container among the pod's containers, then its init
// containers, or nil.
func findProxy(p *corev1.Pod) *corev1.Container {
	const name = ProxyContainerName
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == name {
			return &p.Spec.Containers[i]
		}
	}
	for i := range p.Spec.InitContainers {
		if p.Spec.InitContainers[i].Name == name {
			return &p.Spec.InitContainers[i]
		}
	}
	return nil
}
