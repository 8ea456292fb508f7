package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/controlplane/ads"
	"github.com/lucid-mesh/lucid/internal/controlplane/podevent"
	"github.com/lucid-mesh/lucid/internal/kube/inject"
	"github.com/lucid-mesh/lucid/internal/kube/install"
	"github.com/lucid-mesh/lucid/internal/kube/kubeclient"
	"github.com/lucid-mesh/lucid/internal/kube/selfcert"
	"github.com/lucid-mesh/lucid/internal/kube/webhook"
)

// WebhookOptions configure the sidecar injection webhook (`--webhook-addr`). With the
// webhook or in Kubernetes mode, the control plane also records the probe failures
// sidecars report as Events on their pods.
type WebhookOptions struct {
	Addr   string        // --webhook-addr, e.g. :15017; "" disables the webhook
	Inject inject.Config // image, policy, revision, ... (DiscoveryAddress defaults to the Service)
	// Namespace is the control plane's namespace: the CA Secret's and the Service's
	// (default $POD_NAMESPACE, else istio-system).
	Namespace string
	// ConfigName is the MutatingWebhookConfiguration whose caBundle Lucid keeps (default
	// install.WebhookConfig); CASecret the Secret holding the CA (default lucid-webhook-ca).
	ConfigName, CASecret string
	// ExtraHosts are added to the serving certificate's names: DNS names or IPs (tests use
	// 127.0.0.1 for a webhook configured by url).
	ExtraHosts []string
	// CertValidity and CertRenewBefore set the serving certificate's lifetime and when it
	// is renewed (defaults 30 days and a third of it). CheckInterval is how often the
	// caBundle is checked (default 10 s).
	CertValidity, CertRenewBefore, CheckInterval time.Duration
	// AllowOnError admits pods whose injection fails (with a warning) instead of refusing
	// them as Istio does.
	AllowOnError bool
	// EventMinInterval spaces the API writes of one probe-failure Event (default 10 s).
	EventMinInterval time.Duration
}

// DefaultCASecret holds the webhook CA in the control plane's namespace.
const DefaultCASecret = "lucid-webhook-ca" //nolint:gosec // G101: a Secret's name, not a credential

// startWebhook starts, when configured, the injection webhook and (in Kubernetes mode) the
// probe-failure Events service on srv; it must run before srv serves. The returned stop
// ends them and waits.
func startWebhook(ctx context.Context, o Options, mesh *meshv1alpha1.MeshConfig, srv *ads.Server, log *slog.Logger) (stop func(), err error) {
	w := o.Webhook
	if w.Addr == "" && !o.Kube.Enabled {
		return func() {}, nil
	}
	clients := o.Kube.Clients
	if clients == nil {
		if clients, _, err = kubeclient.Load(o.Kube.Kubeconfig); err != nil {
			return nil, fmt.Errorf("--webhook-addr: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop = func() { cancel(); wg.Wait() }

	// A control plane that talks to Kubernetes records the probe failures sidecars report.
	rec := podevent.NewRecorder(podevent.Options{Client: clients.Dynamic, MinInterval: w.EventMinInterval,
		Log: log.With("component", "podevent")})
	srv.RegisterService(&podevent.ServiceDesc, rec)
	wg.Go(func() { rec.Run(ctx) })
	if w.Addr == "" {
		return stop, nil
	}
	fail := func(err error) (func(), error) { stop(); return nil, err }
	ns := orEnv(w.Namespace, "POD_NAMESPACE", install.DefaultNamespace)
	ca, created, err := webhook.LoadOrCreateCA(ctx, clients.Dynamic, ns, orString(w.CASecret, DefaultCASecret), 0)
	if err != nil {
		return fail(fmt.Errorf("--webhook-addr: %w", err))
	}
	wlog := log.With("component", "webhook")
	if created {
		wlog.Info("webhook CA created", "secret", ns+"/"+orString(w.CASecret, DefaultCASecret))
	}
	dns, ips := certNames(ns, w.ExtraHosts)
	certs, err := selfcert.NewRotator(ca, selfcert.RotatorOptions{DNSNames: dns, IPs: ips,
		Validity: w.CertValidity, RenewBefore: w.CertRenewBefore, Logger: wlog})
	if err != nil {
		return fail(fmt.Errorf("--webhook-addr: %w", err))
	}
	cfg := injectConfig(o, mesh, ns)
	ln, err := net.Listen("tcp", w.Addr)
	if err != nil {
		return fail(fmt.Errorf("--webhook-addr: %w", err))
	}
	h := &webhook.Handler{Config: cfg, Namespaces: webhook.APINamespaces{Client: clients.Dynamic},
		AllowOnError: w.AllowOnError, Log: wlog}
	wg.Go(func() {
		err := webhook.Serve(ctx, ln, webhook.ServerOptions{Handler: h, Certs: certs, Client: clients.Dynamic,
			ConfigName: orString(w.ConfigName, install.WebhookConfig), CheckInterval: w.CheckInterval, Log: wlog})
		if err != nil {
			wlog.Error("injection webhook stopped", "error", err)
		}
	})
	return stop, nil
}

// injectConfig is what the webhook injects: the flags' configuration, the control plane's
// Service in namespace ns on the port sidecars use (ca.go), and the mesh's trust domain,
// in which the CA issues the identities injected sidecars ask for.
func injectConfig(o Options, mesh *meshv1alpha1.MeshConfig, ns string) inject.Config {
	cfg := o.Webhook.Inject
	if cfg.TrustDomain == "" {
		cfg.TrustDomain = mesh.GetTrustDomain()
	}
	if cfg.DiscoveryAddress == "" {
		cfg.DiscoveryAddress = fmt.Sprintf("%s.%s.svc:%d", install.Name, ns, injectedPort(o)) // ca.go
	}
	return cfg
}

// certNames are the serving certificate's names: the discovery Service's DNS names (as the
// API server calls it) and the extra hosts.
func certNames(ns string, extra []string) ([]string, []net.IP) {
	svc := install.Name
	dns := []string{svc + "." + ns + ".svc", svc, svc + "." + ns, svc + "." + ns + ".svc.cluster.local"}
	var ips []net.IP
	for _, h := range extra {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else if h != "" {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orEnv(s, env, def string) string {
	if s != "" {
		return s
	}
	return orString(os.Getenv(env), def)
}
