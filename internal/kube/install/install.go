// Package install renders everything `lucid install` puts on a Kubernetes cluster: the
// Istio CRDs, the istio-system namespace, the control plane's service account and RBAC,
// the `lucid discovery` Deployment and Service, and the MutatingWebhookConfiguration that
// sends pod creations to the injector. It sits before everything else on Kubernetes: the
// objects it renders are what the control plane, the webhook and the injected sidecars
// (internal/kube/inject) expect to find. Pure: objects in, YAML out.
package install

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// Names of the installed objects. The Service name is what injected sidecars dial
// (inject.DefaultDiscoveryAddress) and what the webhook configuration calls.
const (
	DefaultNamespace = "istio-system"
	Name             = "lucid-discovery"        // ServiceAccount, RBAC, Deployment, Service
	WebhookConfig    = "lucid-sidecar-injector" // MutatingWebhookConfiguration
	WebhookPath      = "/inject"
	imageRepository  = "ghcr.io/lucid-mesh/lucid"
)

// Control-plane ports (Istio's istiod ports).
const (
	GRPCPort       = 15010 // grpc-xds: plaintext ADS
	SecurePort     = 15012 // https-dns: the mesh CA and ADS over TLS, what injected sidecars dial
	MonitoringPort = 15014 // http-monitoring: debug and /ready
	WebhookPort    = 15017 // https-webhook, behind Service port 443
)

// DiscoveryArgs is the control plane's command line in the Deployment.
// --kubernetes and --webhook-addr are lucid discovery's Kubernetes mode (informers
// and the webhook server).
var DiscoveryArgs = []string{
	"discovery",
	"--kubernetes",
	fmt.Sprintf("--grpc-addr=:%d", GRPCPort),
	fmt.Sprintf("--ca-addr=:%d", SecurePort),
	fmt.Sprintf("--debug-addr=:%d", MonitoringPort),
	fmt.Sprintf("--webhook-addr=:%d", WebhookPort),
}

// DefaultImage is the image for a lucid version ("dev" builds use :latest).
func DefaultImage(version string) string {
	if version == "" || version == "dev" || strings.ContainsAny(version, "()+ ") {
		return imageRepository + ":latest"
	}
	return imageRepository + ":" + version
}

// Options choose what to render.
type Options struct {
	Namespace string // default istio-system
	Image     string // required
	Revision  string // default "default"
	Replicas  int32  // default 1
	NoCRDs    bool   // leave the Istio CRDs out
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Revision == "" {
		o.Revision = "default"
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	return o
}

// Render returns the manifests as one multi-document YAML stream, in the order they must be
// applied: CRDs, namespace, identity and RBAC, workload, webhook configuration.
func Render(o Options) ([]byte, error) {
	o = o.withDefaults()
	if o.Image == "" {
		return nil, errors.New("install: no image")
	}
	var out bytes.Buffer
	if !o.NoCRDs {
		crds, err := CRDs()
		if err != nil {
			return nil, err
		}
		out.Write(crds)
		if !bytes.HasSuffix(crds, []byte("\n")) {
			out.WriteByte('\n')
		}
	}
	for _, obj := range Objects(o) {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("install: encode: %w", err)
		}
		if out.Len() > 0 {
			out.WriteString("---\n")
		}
		out.Write(b)
	}
	return out.Bytes(), nil
}
