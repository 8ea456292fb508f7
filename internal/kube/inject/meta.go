package inject

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// setMetadata adds Istio's labels and annotations: the mTLS mode, the canonical service
// and revision, the revision, and the containers kubectl uses by default.
func (w *injection) setMetadata(appContainers []string) {
	p := w.pod
	p.Labels[LabelTLSMode] = "istio"
	p.Labels[LabelCanonName] = canonicalName(p.Labels, w.workload)
	p.Labels[LabelCanonRev] = canonicalRevision(p.Labels)
	p.Annotations[LabelRev] = w.cfg.Revision
	if len(appContainers) > 0 {
		if _, ok := p.Annotations[AnnotationDefaultContainer]; !ok {
			p.Annotations[AnnotationDefaultContainer] = appContainers[0]
		}
		if _, ok := p.Annotations[AnnotationDefaultLogsContainer]; !ok {
			p.Annotations[AnnotationDefaultLogsContainer] = appContainers[0]
		}
	}
}

func canonicalName(labels map[string]string, workload string) string {
	for _, k := range []string{LabelCanonName, "app.kubernetes.io/name", "app"} {
		if v, ok := labels[k]; ok {
			return v
		}
	}
	return workload
}

func canonicalRevision(labels map[string]string) string {
	for _, k := range []string{LabelCanonRev, "app.kubernetes.io/version", "version"} {
		if v, ok := labels[k]; ok {
			return v
		}
	}
	return "latest"
}

// cronJobName matches a Job created by a CronJob: <cronjob>-<8 to 10 digit timestamp>.
var cronJobName = regexp.MustCompile(`^(.+)-\d{8,10}$`)

// workloadName is Istio's GetDeployMetaFromPod: for a generated pod, its controller's name,
// with a ReplicaSet's pod-template-hash suffix or a CronJob Job's timestamp removed;
// otherwise the pod's name.
func workloadName(p *corev1.Pod) string {
	if p.GenerateName != "" {
		for _, ref := range p.OwnerReferences {
			if ref.Controller == nil || !*ref.Controller {
				continue
			}
			switch hash := p.Labels["pod-template-hash"]; {
			case ref.Kind == "ReplicaSet" && hash != "" && strings.HasSuffix(ref.Name, "-"+hash):
				return strings.TrimSuffix(ref.Name, "-"+hash)
			case ref.Kind == "Job":
				if m := cronJobName.FindStringSubmatch(ref.Name); m != nil {
					return m[1]
				}
			}
			return ref.Name
		}
	}
	if p.Name != "" {
		return p.Name
	}
	return strings.TrimSuffix(p.GenerateName, "-")
}

// The Prometheus annotations, compared after Prometheus' label-name sanitising (so that
// prometheus.io/scrape and prometheus_io/scrape are the same annotation).
const (
	promScrape = "prometheus_io_scrape"
	promPort   = "prometheus_io_port"
	promPath   = "prometheus_io_path"
)

var nonLabelChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

func sanitize(k string) string { return nonLabelChars.ReplaceAllString(k, "_") }

// prometheusMerge is Istio's applyPrometheusMerge: unless the pod turns scraping off, the
// app's prometheus.io/{scrape,port,path} move into ISTIO_PROMETHEUS_ANNOTATIONS and the
// annotations point at the status server's merged /stats/prometheus.
func (w *injection) prometheusMerge() {
	p := w.pod
	enabled := !w.cfg.DisablePrometheusMerge
	if v, ok := p.Annotations[AnnotationPrometheusMerge]; ok {
		if b, err := strconv.ParseBool(v); err == nil {
			enabled = b
		}
	}
	scrape := true
	var cfg struct {
		Scrape string `json:"scrape"`
		Path   string `json:"path"`
		Port   string `json:"port"`
	}
	var keys []string
	for k, v := range p.Annotations {
		switch sanitize(k) {
		case promScrape:
			if b, err := strconv.ParseBool(v); err == nil {
				scrape = b
			}
			cfg.Scrape = v
		case promPort:
			cfg.Port = v
		case promPath:
			cfg.Path = v
		default:
			continue
		}
		keys = append(keys, k)
	}
	target := strconv.Itoa(int(w.cfg.StatusPort))
	if !enabled || !scrape || cfg.Port == target {
		return
	}
	if cfg.Scrape != "" || cfg.Path != "" || cfg.Port != "" {
		if b, err := json.Marshal(cfg); err == nil {
			proxy := findProxy(p)
			proxy.Env = append(proxy.Env, corev1.EnvVar{Name: EnvPrometheus, Value: string(b)})
		}
	}
	for _, k := range keys {
		delete(p.Annotations, k)
	}
	p.Annotations["prometheus.io/port"] = target
	p.Annotations["prometheus.io/path"] = "/stats/prometheus"
	p.Annotations["prometheus.io/scrape"] = "true"
}

// setStatus writes sidecar.istio.io/status as Istio does: what was injected, so that it can
// be recognised (and removed) later.
func (w *injection) setStatus(inits []string, volumes []corev1.Volume) {
	status := struct {
		InitContainers   []string `json:"initContainers"`
		Containers       []string `json:"containers"`
		Volumes          []string `json:"volumes"`
		ImagePullSecrets []string `json:"imagePullSecrets"`
		Revision         string   `json:"revision"`
	}{
		InitContainers: inits,
		Containers:     []string{ProxyContainerName},
		Revision:       w.cfg.Revision,
	}
	for _, v := range volumes {
		status.Volumes = append(status.Volumes, v.Name)
	}
	b, err := json.Marshal(status)
	if err == nil {
		w.pod.Annotations[AnnotationStatus] = string(b)
	}
}

// reorder is Istio's reorderPod: the proxy last among the containers (so kubectl exec and
// logs default to the app), or first when the application waits for it; istio-init last
// among the init containers, so that other init containers' traffic is not captured.
func (w *injection) reorder() {
	s := &w.pod.Spec
	if w.ann.holdApplication {
		s.Containers = moveTo(s.Containers, ProxyContainerName, true)
	} else {
		s.Containers = moveTo(s.Containers, ProxyContainerName, false)
	}
	s.InitContainers = moveTo(s.InitContainers, InitContainerName, false)
}

func moveTo(cs []corev1.Container, name string, first bool) []corev1.Container {
	var match *corev1.Container
	rest := make([]corev1.Container, 0, len(cs))
	for i := range cs {
		if cs[i].Name == name && match == nil {
			match = &cs[i]
			continue
		}
		rest = append(rest, cs[i])
	}
	if match == nil {
		return cs
	}
	if first {
		return append([]corev1.Container{*match}, rest...)
	}
	return append(rest, *match)
}
