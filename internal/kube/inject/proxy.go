package inject

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/lucid-mesh/lucid/internal/kube/iptables"
)

// The proxy's ports (Istio's numbers) and user.
const (
	proxyUID        = 1337
	healthPort      = 15021 // Envoy's /healthz/ready in Istio; the sidecar's health listener
	prometheusPort  = 15090
	binaryPath      = "/usr/local/bin/lucid" // where the Dockerfile puts lucid
	readinessPath   = "/healthz/ready"
	startupFailures = 600 // "10 minutes" at one probe a second
)

// proxyContainer is Istio's istio-proxy container, running `lucid sidecar`.
func (w *injection) proxyContainer(appContainers []string) corev1.Container {
	a := w.ann
	args := []string{
		"sidecar",
		"--ip", "$(INSTANCE_IP)",
		"--workload", "$(POD_NAME)",
		"--namespace", "$(POD_NAMESPACE)",
		"--discovery-address", w.cfg.DiscoveryAddress,
	}
	args = append(args, identityArgs(w.cfg.DiscoveryAddress, w.cfg.TrustDomain)...) // identity.go
	if a.statusPortSet && a.statusPort != 0 && a.statusPort != 15020 {
		args = append(args, "--status-port", strconv.Itoa(int(a.statusPort)))
	}
	if a.logLevel != "" {
		args = append(args, "--log-level", a.logLevel)
	}
	c := corev1.Container{
		Name:            ProxyContainerName,
		Image:           a.image,
		ImagePullPolicy: w.cfg.ImagePullPolicy,
		Args:            args,
		Ports: []corev1.ContainerPort{
			{Name: "http-envoy-prom", ContainerPort: prometheusPort, Protocol: corev1.ProtocolTCP},
			{Name: "lucid-admin", ContainerPort: 15000, Protocol: corev1.ProtocolTCP},
			{Name: "lucid-outbound", ContainerPort: 15001, Protocol: corev1.ProtocolTCP},
			{Name: "lucid-inbound", ContainerPort: 15006, Protocol: corev1.ProtocolTCP},
			{Name: "lucid-status", ContainerPort: 15020, Protocol: corev1.ProtocolTCP},
			{Name: "lucid-health", ContainerPort: healthPort, Protocol: corev1.ProtocolTCP},
		},
		Env: []corev1.EnvVar{
			fieldEnv("POD_NAME", "metadata.name"),
			fieldEnv("POD_NAMESPACE", "metadata.namespace"),
			fieldEnv("INSTANCE_IP", "status.podIP"),
			fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName"),
			{Name: EnvAppNames, Value: strings.Join(appContainers, ",")},
			{Name: EnvInterceptor, Value: a.interceptionMode},
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{},
			Limits:   corev1.ResourceList{},
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			Privileged:               ptr(false),
			ReadOnlyRootFilesystem:   ptr(true),
			RunAsGroup:               ptr(int64(proxyUID)),
			RunAsNonRoot:             ptr(true),
			RunAsUser:                ptr(int64(proxyUID)),
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "istio-data", MountPath: "/var/lib/istio/data"},
			{Name: "istio-envoy", MountPath: "/etc/istio/proxy"},
			{Name: "istio-token", MountPath: "/var/run/secrets/tokens"},
			{Name: "istio-podinfo", MountPath: "/etc/istio/pod"},
		},
	}
	if a.interceptionMode == iptables.ModeTProxy {
		// As Istio's injector: the proxy's sockets are IP_TRANSPARENT (15001, 15006, and the
		// connections to the app from the client's address), which needs NET_ADMIN in its
		// effective set, so it runs as root in group 1337 (the capture rules' --gid-owner
		// rules keep its own traffic uncaptured).
		sc := c.SecurityContext
		sc.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
		sc.RunAsUser, sc.RunAsNonRoot = ptr(int64(0)), ptr(false)
	}
	if hasIdentity(w.cfg.DiscoveryAddress) { // identity.go
		c.VolumeMounts = append(c.VolumeMounts, rootCertMount)
	}
	setQuantity(c.Resources.Requests, corev1.ResourceCPU, a.resources.cpu)
	setQuantity(c.Resources.Requests, corev1.ResourceMemory, a.resources.memory)
	setQuantity(c.Resources.Limits, corev1.ResourceCPU, a.resources.cpuLimit)
	setQuantity(c.Resources.Limits, corev1.ResourceMemory, a.resources.memoryLimit)
	if a.statusPort != 0 {
		c.ReadinessProbe = &corev1.Probe{
			ProbeHandler:        healthHandler(),
			InitialDelaySeconds: a.readinessDelay,
			PeriodSeconds:       a.readinessPeriod,
			TimeoutSeconds:      3,
			FailureThreshold:    a.readinessFailure,
		}
		c.StartupProbe = &corev1.Probe{
			ProbeHandler:     healthHandler(),
			PeriodSeconds:    1,
			TimeoutSeconds:   3,
			FailureThreshold: startupFailures,
		}
	}
	if a.holdApplication {
		c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: []string{binaryPath, "sidecar", "wait"}},
		}}
	}
	return c
}

func healthHandler() corev1.ProbeHandler {
	return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: readinessPath, Port: intstr.FromInt32(healthPort)}}
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{FieldPath: path},
	}}
}

// setQuantity sets r[name]; the quantities were validated with the annotations.
func setQuantity(r corev1.ResourceList, name corev1.ResourceName, v string) {
	if q, err := resource.ParseQuantity(v); err == nil {
		r[name] = q
	}
}

// initContainer is Istio's istio-init: `lucid iptables` with istio-iptables' flags.
func (w *injection) initContainer() corev1.Container {
	c := w.ann.capture
	args := []string{
		"iptables",
		"-p", strconv.Itoa(int(c.OutboundPort)),
		"-z", strconv.Itoa(int(c.InboundPort)),
		"-u", strconv.Itoa(proxyUID),
		"-m", c.Mode,
		"-i", c.IncludeOutboundIPs,
		"-x", c.ExcludeOutboundIPs,
		"-b", c.IncludeInboundPort,
		"-d", c.ExcludeInboundPort,
	}
	opt := func(flag, annotation string, v string) {
		if _, ok := w.pod.Annotations[annotation]; ok {
			args = append(args, flag, v)
		}
	}
	opt("-q", AnnotationIncludeOutboundPorts, c.IncludeOutPorts)
	opt("-o", AnnotationExcludeOutboundPorts, c.ExcludeOutPorts)
	if c.KubeVirtIfaces != "" {
		args = append(args, "-k", c.KubeVirtIfaces)
	}
	opt("-c", AnnotationExcludeInterfaces, c.ExcludeIfaces)
	return corev1.Container{
		Name:            InitContainerName,
		Image:           w.ann.image,
		ImagePullPolicy: w.cfg.ImagePullPolicy,
		Args:            args,
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr(false),
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
			Privileged:             ptr(false),
			ReadOnlyRootFilesystem: ptr(false),
			RunAsGroup:             ptr(int64(0)),
			RunAsNonRoot:           ptr(false),
			RunAsUser:              ptr(int64(0)),
		},
	}
}

// proxyVolumes are the volumes istio-proxy mounts: Istio's (the mesh roots only with a
// workload identity: identity.go).
func proxyVolumes(discoveryAddress string) []corev1.Volume {
	v := []corev1.Volume{
		{Name: "istio-envoy", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		{Name: "istio-data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "istio-podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{
				{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
				{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations"}},
			},
		}}},
		{Name: "istio-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: "istio-ca", ExpirationSeconds: ptr(int64(43200)), Path: "istio-token",
			}}},
		}}},
	}
	if hasIdentity(discoveryAddress) {
		v = append(v, rootCertVolume)
	}
	return v
}

func ptr[T any](v T) *T { return &v }
