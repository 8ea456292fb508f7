package cli

import (
	"github.com/spf13/pflag"

	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
	"github.com/lucid-mesh/lucid/internal/kube/inject"
	"github.com/lucid-mesh/lucid/internal/kube/install"
	"github.com/lucid-mesh/lucid/internal/version"
)

// addWebhookFlags adds the injection webhook's flags to `lucid discovery`.
func addWebhookFlags(f *pflag.FlagSet, w *discovery.WebhookOptions) {
	f.StringVar(&w.Addr, "webhook-addr", "", "serve the sidecar injection webhook (HTTPS, /inject) on this address, e.g. :15017; empty disables")
	f.StringVar(&w.Inject.Image, "injector-image", install.DefaultImage(version.String()), "the lucid image the webhook injects (istio-proxy, istio-init)")
	f.StringVar(&w.Inject.DiscoveryAddress, "injector-discovery-address", "", "the ADS address injected sidecars dial (default lucid-discovery.<namespace>.svc:15012 with --ca-addr, else :15010; a :15010 address gives sidecars no workload identity)")
	f.StringVar(&w.Inject.Revision, "injector-revision", "default", "the control plane revision (istio.io/rev) the webhook injects for")
	f.StringVar((*string)(&w.Inject.Policy), "injection-policy", string(inject.PolicyEnabled), "inject pods that say nothing (enabled) or only those labelled sidecar.istio.io/inject=true (disabled)")
	f.BoolVar(&w.AllowOnError, "webhook-allow-on-error", false, "admit a pod without a sidecar (with a warning) when injecting it fails, instead of refusing it as Istio does")
	f.StringVar(&w.Namespace, "webhook-namespace", "", "the control plane's namespace: the CA Secret's and the Service's (default $POD_NAMESPACE, else istio-system)")
	f.StringVar(&w.ConfigName, "webhook-config", install.WebhookConfig, "the MutatingWebhookConfiguration whose caBundle Lucid keeps")
	f.StringSliceVar(&w.ExtraHosts, "webhook-cert-hosts", nil, "extra DNS names or IPs for the webhook's serving certificate (comma-separated)")
	f.DurationVar(&w.CertValidity, "webhook-cert-validity", 0, "lifetime of the webhook's serving certificate (default 720h)")
	f.DurationVar(&w.CertRenewBefore, "webhook-cert-renew-before", 0, "renew the serving certificate this long before it expires (default a third of its validity)")
	f.DurationVar(&w.CheckInterval, "webhook-check-interval", 0, "how often the webhook configuration's caBundle is checked and re-patched (default 10s)")
}
