package analyze

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// The Gateway checks: Istio's IngressGatewayPortAnalyzer (IST0101 selector, IST0162),
// SecretAnalyzer (IST0101 credentialName, IST0161), ConflictingGatewayAnalyzer (IST0145),
// CertificateAnalyzer (IST0138), and Lucid's LUC0005 (a server the per-port merge drops).
//
// A Gateway's workloads are the pods its selector selects, in any namespace, and in Lucid
// also the WorkloadEntries (a gateway in Lucid's local mode is a WorkloadEntry annotated
// lucid.dev/proxy: router); Istio's analyzers know only pods.

func gatewaySpec(o *config.Object) *networkingv1alpha3.Gateway {
	g, _ := o.Spec.(*networkingv1alpha3.Gateway)
	return g
}

func (a *analyzer) gateways() {
	for _, o := range a.kind(config.KindGateway) {
		g := gatewaySpec(o)
		if g == nil {
			continue
		}
		a.gatewayWorkloads(o, g)
		a.gatewaySecrets(o, g)
		a.duplicateCertificates(o, g)
	}
	a.conflictingGateways()
	a.droppedGatewayServers()
}

// gatewayWorkloads: IST0101 when no workload has the selector's labels, else IST0162 for
// a server port that no Service selecting the gateway's pods exposes (as a target port).
func (a *analyzer) gatewayWorkloads(o *config.Object, g *networkingv1alpha3.Gateway) {
	sel := g.GetSelector()
	var pods []*pod
	for _, p := range a.pods {
		if selects(sel, p.labels) {
			pods = append(pods, p)
		}
	}
	if len(pods) == 0 {
		if !slices.ContainsFunc(a.workloads(), func(w workload) bool { return selects(sel, w.labels) }) {
			a.selectorNotFound(o, g)
		}
		return
	}
	// A server port is exposed when a TCP port of a Service selecting the pods has it as
	// its port or its (numeric) target port.
	ports := map[uint32]bool{}
	for _, p := range pods {
		for _, s := range a.services {
			if s.ns != p.ns || !selects(s.selector, p.labels) {
				continue
			}
			for _, sp := range s.ports {
				if sp.protocol != corev1.ProtocolTCP {
					continue
				}
				ports[uint32(sp.port)] = true
				if tp := sp.targetPort.IntValue(); tp > 0 {
					ports[uint32(tp)] = true
				}
			}
		}
	}
	for i, s := range g.GetServers() {
		n := s.GetPort().GetNumber()
		if s.GetPort() == nil || ports[n] {
			continue
		}
		m := a.reportf(o, "IST0162", Warning, selectorField(g), "The gateway is listening on a target port (port %d) that is not defined in the Service associated with its workload instances (Pod selector %s). If you need to access the gateway port through the gateway Service, it will not be available.",
			n, selectorString(sel))
		m.Field = fmt.Sprintf("spec.servers[%d].port.number", i)
		m.Detail = fmt.Sprintf("the gateway pods listen on %d, but no Service selecting them forwards a port to it", n)
		m.Fix = "add the port to the gateway's Service (targetPort: " + strconv.Itoa(int(n)) + "), or use a port the Service exposes"
	}
}

// selectorField is where Istio points for selector messages: the selector's first label.
func selectorField(g *networkingv1alpha3.Gateway) string {
	keys := slices.Sorted(maps.Keys(g.GetSelector()))
	if len(keys) == 0 {
		return "spec.selector"
	}
	return "spec.selector." + keys[0]
}

func (a *analyzer) selectorNotFound(o *config.Object, g *networkingv1alpha3.Gateway) {
	m := a.reportf(o, "IST0101", Error, selectorField(g), "Referenced %s not found: %q", "selector", selectorString(g.GetSelector()))
	m.Detail = fmt.Sprintf("no pod or workload has the labels %s: no gateway serves Gateway %s/%s, so its ports (%s) are not opened anywhere",
		labelList(g.GetSelector()), o.Namespace, o.Name, serverPorts(g))
	m.Fix = "correct spec.selector to the gateway's labels (Istio's ingress gateway has istio: ingressgateway), or run a gateway with these labels " +
		"(a WorkloadEntry annotated lucid.dev/proxy: router)"
}

func serverPorts(g *networkingv1alpha3.Gateway) string {
	var ps []string
	for _, s := range g.GetServers() {
		if p := strconv.Itoa(int(s.GetPort().GetNumber())); !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	return strings.Join(ps, ", ")
}

// gatewaySecrets: a server's credentialName must name a Secret, in the namespace of the
// gateway's pods, holding a certificate that parses and is valid now (IST0101, IST0161).
// Gateways served by WorkloadEntries only read certificate files instead.
func (a *analyzer) gatewaySecrets(o *config.Object, g *networkingv1alpha3.Gateway) {
	ns := ""
	for _, p := range a.pods {
		if selects(g.GetSelector(), p.labels) {
			ns = p.ns
			break
		}
	}
	if ns == "" {
		a.localCredentials(o, g) // a WorkloadEntry gateway in local mode (else IST0101 selector)
		return
	}
	for i, s := range g.GetServers() {
		cn := s.GetTls().GetCredentialName()
		if cn == "" {
			continue
		}
		field := fmt.Sprintf("spec.servers[%d].tls.credentialName", i)
		sns, name := ns, cn
		if n, c, ok := strings.Cut(cn, "/"); ok {
			sns, name = n, c
		}
		secret := a.secrets[sns+"/"+name]
		if secret == nil {
			m := a.reportf(o, "IST0101", Error, field, "Referenced %s not found: %q", "credentialName", cn)
			m.Detail = fmt.Sprintf("the gateway's pods run in %s; no Secret %s/%s holds the server's certificate: the gateway refuses TLS for these hosts", ns, sns, name)
			m.Fix = fmt.Sprintf("create the Secret %s/%s (tls.crt and tls.key), or correct credentialName", sns, name)
			continue
		}
		if why := invalidCredential(secret.Kube.(*corev1.Secret)); why != "" {
			m := a.reportf(o, "IST0161", Error, field, "The credential referenced by the Gateway %s in namespace %s is invalid, which can cause the traffic not to work as expected.", o.Name, ns)
			m.Detail = fmt.Sprintf("Secret %s/%s: %s", sns, name, why)
		}
	}
}

// localCredentials: in local mode (Options.ConfigDir) a Gateway served by a router
// WorkloadEntry reads a credentialName from the config directory's credentials/<name>/;
// without a certificate and key there the server is not served (IST0101, as a missing
// Secret is on Kubernetes).
func (a *analyzer) localCredentials(o *config.Object, g *networkingv1alpha3.Gateway) {
	if a.configDir == "" || a.m == nil || !slices.ContainsFunc(a.m.Workloads(), func(w *model.Workload) bool {
		return w.Config.Annotations[model.ProxyAnnotation] == model.ProxyRouter && selects(g.GetSelector(), w.Labels)
	}) {
		return
	}
	for i, s := range g.GetServers() {
		t := s.GetTls()
		cn := t.GetCredentialName()
		if cn == "" || t.GetServerCertificate() != "" || t.GetMode() == networkingv1alpha3.ServerTLSSettings_PASSTHROUGH ||
			t.GetMode() == networkingv1alpha3.ServerTLSSettings_AUTO_PASSTHROUGH {
			continue
		}
		if f, ok := config.FindCredential(a.configDir, cn); !ok {
			m := a.reportf(o, "IST0101", Error, fmt.Sprintf("spec.servers[%d].tls.credentialName", i), "Referenced %s not found: %q", "credentialName", cn)
			m.Detail = fmt.Sprintf("local mode reads the credential from %s: it holds no tls.crt and tls.key (or cert and key), so the gateway does not serve this server", f.Dir)
			m.Fix = fmt.Sprintf("put the certificate and key in %s/%s/tls.crt and tls.key (ca.crt too for MUTUAL), or correct credentialName", config.CredentialsDir, cn)
		}
	}
}

// invalidCredential says why a Secret is no server credential, as Istio reads one: cert
// and key, or tls.crt and tls.key, non-empty; the certificate parses and is valid now.
func invalidCredential(s *corev1.Secret) string {
	var cert []byte
	switch {
	case len(s.Data["cert"]) > 0 && len(s.Data["key"]) > 0:
		cert = s.Data["cert"]
	case len(s.Data["tls.crt"]) > 0 && len(s.Data["tls.key"]) > 0:
		cert = s.Data["tls.crt"]
	default:
		return "no certificate: want non-empty data keys cert and key, or tls.crt and tls.key"
	}
	block, _ := pem.Decode(cert)
	if block == nil {
		return "the certificate is not PEM"
	}
	certs, err := x509.ParseCertificates(block.Bytes)
	if err != nil {
		return "the certificate does not parse: " + err.Error()
	}
	now := time.Now()
	for _, c := range certs {
		if now.After(c.NotAfter) || now.Before(c.NotBefore) {
			return fmt.Sprintf("the certificate is not valid now (valid %s to %s)", c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
		}
	}
	return ""
}

// duplicateCertificates is IST0138: two Gateways for the same gateway workloads serve the
// same certificate; a client that reuses an HTTP/2 connection for the other's hosts gets 404.
func (a *analyzer) duplicateCertificates(o *config.Object, g *networkingv1alpha3.Gateway) {
	for _, other := range a.kind(config.KindGateway) {
		og := gatewaySpec(other)
		if other == o || og == nil || len(g.GetSelector()) > 0 && !selectorSubset(g.GetSelector(), og.GetSelector()) {
			continue
		}
		for _, s := range g.GetServers() {
			for _, os := range og.GetServers() {
				if s.GetTls() == nil || os.GetTls() == nil || !sameCertificate(s.GetTls(), os.GetTls()) {
					continue
				}
				m := a.reportf(o, "IST0138", Warning, "metadata.name", "Duplicate certificate in multiple gateways %v may cause 404s if clients re-use HTTP2 connections.",
					[]string{o.Namespace + "/" + o.Name, other.Namespace + "/" + other.Name})
				m.Fix = "serve the hosts from one Gateway server, or give each Gateway its own certificate"
			}
		}
	}
}

// selectorSubset reports whether every label of x is in y with the same value.
func selectorSubset(x, y map[string]string) bool {
	for k, v := range x {
		if w, ok := y[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sameCertificate(a, b *networkingv1alpha3.ServerTLSSettings) bool {
	switch {
	case a.GetCredentialName() != "" && b.GetCredentialName() != "":
		return a.GetCredentialName() == b.GetCredentialName()
	case a.GetCredentialName() == "" && b.GetCredentialName() == "":
		return a.GetServerCertificate() != "" && a.GetServerCertificate() == b.GetServerCertificate() &&
			a.GetPrivateKey() != "" && a.GetPrivateKey() == b.GetPrivateKey()
	}
	return false
}

// conflictingGateways is IST0145: Gateways for the same workloads (the same selector, or
// selectors that select a common pod) with servers on the same port and bind whose hosts
// repeat each other's; the gateway serves only one of them.
func (a *analyzer) conflictingGateways() {
	type key struct {
		selector string
		port     string
	}
	// hosts of every Gateway's servers by selector and port: gateway → host → bind
	byKey := map[key]map[*config.Object]map[string]string{}
	for _, o := range a.kind(config.KindGateway) {
		g := gatewaySpec(o)
		if g == nil {
			continue
		}
		sel := selectorString(g.GetSelector())
		for _, s := range g.GetServers() {
			k := key{sel, strconv.Itoa(int(s.GetPort().GetNumber()))}
			if byKey[k] == nil {
				byKey[k] = map[*config.Object]map[string]string{}
			}
			hb := map[string]string{}
			for _, h := range s.GetHosts() {
				hb[h] = s.GetBind()
			}
			byKey[k][o] = hb
		}
	}
	keys := slices.SortedFunc(maps.Keys(byKey), func(x, y key) int { return strings.Compare(x.selector+"~"+x.port, y.selector+"~"+y.port) })
	for _, o := range a.kind(config.KindGateway) {
		g := gatewaySpec(o)
		if g == nil {
			continue
		}
		sel := selectorString(g.GetSelector())
		var same []key
		for _, k := range keys {
			if k.selector == sel || (strings.Contains(k.selector, sel) || strings.Contains(sel, k.selector)) && a.podSelectedByBoth(g.GetSelector(), parseSelector(k.selector)) {
				same = append(same, k)
			}
		}
		if sel != "" && len(same) == 0 {
			a.selectorNotFound(o, g)
			continue
		}
		for _, s := range g.GetServers() {
			port := strconv.Itoa(int(s.GetPort().GetNumber()))
			var with []string
			for _, k := range same {
				if k.port != port {
					continue
				}
				for other, hb := range byKey[k] {
					if other != o && duplicateHosts(s.GetHosts(), s.GetBind(), hb) {
						with = append(with, other.Namespace+"/"+other.Name)
					}
				}
			}
			if len(with) == 0 {
				continue
			}
			slices.Sort(with)
			m := a.reportf(o, "IST0145", Error, "spec.servers", "Conflict with gateways %s (workload selector %s, port %s, hosts %v).",
				strings.Join(with, ","), sel, port, strings.Join(s.GetHosts(), ","))
			m.Detail = "the gateway merges the servers of every Gateway selecting it; for the same port and host only the first created is served"
			m.Fix = "serve the hosts from one Gateway, or give the servers different ports or hosts"
		}
	}
}

// duplicateHosts reports whether a host is in known with the same bind. (Istio's
// CheckDuplicates also adds the hosts to the other Gateway's known hosts when there is no
// duplicate, which makes its result depend on the order it visits Gateways in; Lucid
// compares each pair of Gateways on their own servers.)
func duplicateHosts(hosts []string, bind string, known map[string]string) bool {
	for _, h := range hosts {
		if b, ok := known[h]; ok && b == bind {
			return true
		}
	}
	return false
}

func parseSelector(s string) map[string]string {
	out := map[string]string{}
	for pair := range strings.SplitSeq(s, ",") {
		if k, v, ok := strings.Cut(pair, "="); ok && !strings.Contains(v, "=") {
			out[k] = v
		}
	}
	return out
}

func (a *analyzer) podSelectedByBoth(x, y map[string]string) bool {
	return slices.ContainsFunc(a.pods, func(p *pod) bool { return selects(x, p.labels) && selects(y, p.labels) })
}

// droppedGatewayServers is LUC0005: a Gateway server the gateway does not serve because
// Istio's merge of the Gateways selecting it drops it: a port already opened by a server
// of another protocol (two Gateways clashing on a port: Istio only logs it), a TLS host
// repeated on a port, a repeated HTTPS port name. It is checked for every router
// WorkloadEntry, and for the labels of a selector no router workload has (on Kubernetes
// the gateway pods' labels are the selector's).
func (a *analyzer) droppedGatewayServers() {
	var proxies []*model.Proxy
	for _, w := range a.m.Workloads() {
		if w.Config.Annotations[model.ProxyAnnotation] == model.ProxyRouter {
			proxies = append(proxies, &model.Proxy{Type: model.ProxyRouter, Name: w.Name, Namespace: w.Namespace, Labels: w.Labels})
		}
	}
	for _, g := range a.m.Gateways() {
		if !slices.ContainsFunc(proxies, func(p *model.Proxy) bool { return selects(g.Selector, p.Labels) }) {
			proxies = append(proxies, &model.Proxy{Type: model.ProxyRouter, Name: "(pods with " + labelList(g.Selector) + ")", Labels: g.Selector})
		}
	}
	seen := map[string]bool{}
	for _, p := range proxies {
		for _, sk := range a.m.MergeGateways(p).Skipped {
			s := sk.Server
			key := s.Gateway.Key() + s.Field() + sk.Reason
			if seen[key] {
				continue
			}
			seen[key] = true
			m := a.reportf(s.Gateway.Config, "LUC0005", Error, s.Field(),
				"Gateway server %s (port %d, %s) is not served: %s", s.Field(), s.Port(), s.Protocol, sk.Reason)
			who := "gateway " + p.Namespace + "/" + p.Name
			if p.Namespace == "" {
				who = "gateway " + p.Name
			}
			m.Detail = fmt.Sprintf("%s merges the Gateways selecting it as Istio does and drops this server; connections to its hosts on port %d reach the other server", who, s.Port())
			m.Fix = "move this server to a free port, or make the servers on the port agree (plaintext HTTP servers share a port; TLS servers need distinct hosts)"
		}
	}
}
