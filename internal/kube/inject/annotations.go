package inject

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/lucid-mesh/lucid/internal/kube/iptables"
)

// Names of containers, labels, annotations and environment variables, as Istio spells them.
const (
	ProxyContainerName = "istio-proxy"
	InitContainerName  = "istio-init"

	LabelInject    = "sidecar.istio.io/inject" // label (and deprecated annotation)
	LabelInjection = "istio-injection"         // namespace label
	LabelRev       = "istio.io/rev"            // namespace/pod label, pod annotation
	LabelTLSMode   = "security.istio.io/tlsMode"
	LabelCanonName = "service.istio.io/canonical-name"
	LabelCanonRev  = "service.istio.io/canonical-revision"

	AnnotationStatus                = "sidecar.istio.io/status"
	AnnotationRewriteProbes         = "sidecar.istio.io/rewriteAppHTTPProbers"
	AnnotationStatusPort            = "status.sidecar.istio.io/port"
	AnnotationReadinessInitialDelay = "readiness.status.sidecar.istio.io/initialDelaySeconds"
	AnnotationReadinessPeriod       = "readiness.status.sidecar.istio.io/periodSeconds"
	AnnotationReadinessFailures     = "readiness.status.sidecar.istio.io/failureThreshold"
	AnnotationInterceptionMode      = "sidecar.istio.io/interceptionMode"
	AnnotationProxyImage            = "sidecar.istio.io/proxyImage"
	AnnotationLogLevel              = "sidecar.istio.io/logLevel"
	AnnotationProxyCPU              = "sidecar.istio.io/proxyCPU"
	AnnotationProxyMemory           = "sidecar.istio.io/proxyMemory"
	AnnotationProxyCPULimit         = "sidecar.istio.io/proxyCPULimit"
	AnnotationProxyMemoryLimit      = "sidecar.istio.io/proxyMemoryLimit"
	AnnotationProxyConfig           = "proxy.istio.io/config"
	AnnotationPrometheusMerge       = "prometheus.istio.io/merge-metrics"
	AnnotationIncludeInboundPorts   = "traffic.sidecar.istio.io/includeInboundPorts"
	AnnotationExcludeInboundPorts   = "traffic.sidecar.istio.io/excludeInboundPorts"
	AnnotationIncludeOutboundIPs    = "traffic.sidecar.istio.io/includeOutboundIPRanges"
	AnnotationExcludeOutboundIPs    = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
	AnnotationIncludeOutboundPorts  = "traffic.sidecar.istio.io/includeOutboundPorts"
	AnnotationExcludeOutboundPorts  = "traffic.sidecar.istio.io/excludeOutboundPorts"
	AnnotationKubevirtInterfaces    = "traffic.sidecar.istio.io/kubevirtInterfaces"
	AnnotationRerouteVirtInterfaces = "istio.io/reroute-virtual-interfaces"
	AnnotationExcludeInterfaces     = "traffic.sidecar.istio.io/excludeInterfaces"
	AnnotationDefaultContainer      = "kubectl.kubernetes.io/default-container"
	AnnotationDefaultLogsContainer  = "kubectl.kubernetes.io/default-logs-container"

	EnvAppProbers  = "ISTIO_KUBE_APP_PROBERS"
	EnvPrometheus  = "ISTIO_PROMETHEUS_ANNOTATIONS"
	EnvAppNames    = "ISTIO_META_APP_CONTAINERS"
	EnvInterceptor = "ISTIO_META_INTERCEPTION_MODE"
)

// annotations is the pod's injection annotations, parsed and validated, with Istio's
// defaults filled in.
type annotations struct {
	statusPort       int32  // status.sidecar.istio.io/port, else the mesh's; 0 disables probes
	statusPortSet    bool   // the annotation was given
	rewriteProbes    bool   // sidecar.istio.io/rewriteAppHTTPProbers, else the global setting
	readinessDelay   int32  // readiness.status.sidecar.istio.io/initialDelaySeconds (0)
	readinessPeriod  int32  // .../periodSeconds (15)
	readinessFailure int32  // .../failureThreshold (4)
	interceptionMode string // REDIRECT, TPROXY or NONE
	image            string // sidecar.istio.io/proxyImage, else the configured image
	logLevel         string // sidecar.istio.io/logLevel, "" when not set
	holdApplication  bool   // proxy.istio.io/config holdApplicationUntilProxyStarts, else the mesh's
	capture          iptables.Config
	resources        proxyResources

	proxyMetadata map[string]string // proxy.istio.io/config proxyMetadata (metadata.go)
}

type proxyResources struct{ cpu, memory, cpuLimit, memoryLimit string }

// parseAnnotations validates the annotations Istio validates; the error names each bad one.
func parseAnnotations(a map[string]string, cfg Config) (annotations, error) {
	out := annotations{
		statusPort: cfg.StatusPort, rewriteProbes: !cfg.DisableProbeRewrite,
		readinessPeriod: 15, readinessFailure: 4, interceptionMode: iptables.ModeRedirect,
		image: cfg.Image, holdApplication: cfg.HoldApplicationUntilProxyStarts,
		resources: proxyResources{cpu: "100m", memory: "128Mi", cpuLimit: "2", memoryLimit: "1Gi"},
	}
	var errs []error
	bad := func(name, value string, err error) {
		errs = append(errs, fmt.Errorf("annotation %s=%q: %w", name, value, err))
	}
	if v, ok := a[AnnotationStatusPort]; ok {
		p, err := strconv.ParseUint(strings.TrimSpace(v), 10, 16)
		if err != nil {
			bad(AnnotationStatusPort, v, errors.New("not a port (0-65535)"))
		}
		out.statusPort, out.statusPortSet = int32(p), true
	}
	if v, ok := a[AnnotationRewriteProbes]; ok {
		if b, err := strconv.ParseBool(v); err == nil {
			out.rewriteProbes = b
		} else {
			bad(AnnotationRewriteProbes, v, errors.New(`not a boolean ("true" or "false")`))
		}
	}
	for _, r := range []struct {
		name string
		dst  *int32
	}{
		{AnnotationReadinessInitialDelay, &out.readinessDelay},
		{AnnotationReadinessPeriod, &out.readinessPeriod},
		{AnnotationReadinessFailures, &out.readinessFailure},
	} {
		if v, ok := a[r.name]; ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 31)
			if err != nil {
				bad(r.name, v, errors.New("not a non-negative integer"))
			}
			*r.dst = int32(n)
		}
	}
	if v, ok := a[AnnotationInterceptionMode]; ok {
		switch v {
		case iptables.ModeRedirect, iptables.ModeTProxy, "NONE":
			out.interceptionMode = v
		default:
			bad(AnnotationInterceptionMode, v, errors.New("must be REDIRECT, TPROXY or NONE"))
		}
	}
	if v, ok := a[AnnotationProxyImage]; ok && v != "" {
		out.image = v
	}
	out.logLevel = a[AnnotationLogLevel]
	if v, ok := a[AnnotationProxyConfig]; ok {
		var pc struct {
			HoldApplicationUntilProxyStarts *bool             `json:"holdApplicationUntilProxyStarts"`
			ProxyMetadata                   map[string]string `json:"proxyMetadata"`
		}
		if err := yaml.Unmarshal([]byte(v), &pc); err != nil {
			bad(AnnotationProxyConfig, v, fmt.Errorf("not a ProxyConfig: %w", err))
		} else if pc.HoldApplicationUntilProxyStarts != nil {
			out.holdApplication = *pc.HoldApplicationUntilProxyStarts
		}
		out.proxyMetadata = pc.ProxyMetadata
	}
	for _, q := range []struct {
		name string
		dst  *string
	}{
		{AnnotationProxyCPU, &out.resources.cpu},
		{AnnotationProxyMemory, &out.resources.memory},
		{AnnotationProxyCPULimit, &out.resources.cpuLimit},
		{AnnotationProxyMemoryLimit, &out.resources.memoryLimit},
	} {
		if v, ok := a[q.name]; ok {
			if _, err := resource.ParseQuantity(v); err != nil {
				bad(q.name, v, errors.New("not a Kubernetes quantity"))
			}
			*q.dst = v
		}
	}
	out.capture = captureConfig(a, out.statusPort)
	if err := out.capture.Validate(); err != nil && out.interceptionMode != "NONE" {
		errs = append(errs, fmt.Errorf("traffic capture annotations: %w", err))
	}
	return out, errors.Join(errs...)
}

// captureConfig is the istio-init configuration the template writes: the capture
// annotations with Istio's defaults, and the inbound exclusions 15090,15021 plus the status
// port (excludeInboundPort in Istio's template functions).
func captureConfig(a map[string]string, statusPort int32) iptables.Config {
	c := iptables.Default()
	if v, ok := a[AnnotationInterceptionMode]; ok && v != "NONE" {
		c.Mode = v
	}
	get := func(name, def string) string {
		if v, ok := a[name]; ok {
			return v
		}
		return def
	}
	c.IncludeOutboundIPs = get(AnnotationIncludeOutboundIPs, "*")
	c.ExcludeOutboundIPs = get(AnnotationExcludeOutboundIPs, "")
	c.IncludeInboundPort = get(AnnotationIncludeInboundPorts, "*")
	c.ExcludeInboundPort = "15090,15021," + excludeInboundPort(statusPort, get(AnnotationExcludeInboundPorts, ""))
	c.IncludeOutPorts = a[AnnotationIncludeOutboundPorts]
	c.ExcludeOutPorts = a[AnnotationExcludeOutboundPorts]
	c.KubeVirtIfaces = a[AnnotationKubevirtInterfaces]
	if v, ok := a[AnnotationRerouteVirtInterfaces]; ok {
		c.KubeVirtIfaces = v
	}
	c.ExcludeIfaces = a[AnnotationExcludeInterfaces]
	return c
}

// excludeInboundPort appends the status port to the excluded inbound ports unless it is 0 or
// already there.
func excludeInboundPort(port int32, excluded string) string {
	if port == 0 {
		return excluded
	}
	ps := strconv.Itoa(int(port))
	var out []string
	for _, p := range strings.Split(excluded, ",") {
		if p == ps {
			return excluded
		}
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(append(out, ps), ",")
}
