package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Gateway credentials on Kubernetes, as Istio reads them: a Gateway server's
// tls.credentialName is a Secret in the namespace of the gateway's pods (the pods its
// selector matches; the Gateway's own namespace when the selector is empty), with
// tls.crt/tls.key or cert/key, and MUTUAL's client CA from ca.crt/cacert in it or in the
// Secret <name>-cacert. Each resolved credential goes to the model as one Secret-kind
// object (model/credential.go), which translate serves inline to the gateway.
//
// A Secret that is deleted or stops being a credential (keys missing, a key that does
// not match the certificate, a CA that does not parse) keeps its last good credential
// serving; a Warning naming the Gateway, the server and the Secret says why, as a
// diagnostic and as an Event on the Gateway. A Secret that was never good leaves the
// server without a filter chain (the gateway refuses TLS for its hosts), with the same
// Warning.

// credentialRef is one Gateway server's credentialName, resolved to a namespace.
type credentialRef struct {
	gateway   *config.Object
	server    int
	namespace string
	name      string
	mutual    bool
}

func (r credentialRef) key() string { return r.namespace + "/" + r.name }

// credentialRefs lists the credentialNames of the Gateways' TLS-terminating servers,
// once per namespace of the pods each Gateway selects.
func credentialRefs(gateways []*config.Object, pods []*corev1.Pod) []credentialRef {
	var out []credentialRef
	for _, o := range gateways {
		gw, ok := o.Spec.(*networkingv1alpha3.Gateway)
		if !ok {
			continue
		}
		var nss []string
		if sel := gw.GetSelector(); len(sel) == 0 {
			nss = []string{o.Namespace}
		} else {
			seen := map[string]bool{}
			for _, p := range pods {
				if !seen[p.Namespace] && selects(sel, p.Labels) {
					seen[p.Namespace] = true
					nss = append(nss, p.Namespace)
				}
			}
			slices.Sort(nss)
		}
		for i, s := range gw.GetServers() {
			t := s.GetTls()
			mode := t.GetMode()
			if t.GetCredentialName() == "" || t.GetServerCertificate() != "" || mode == networkingv1alpha3.ServerTLSSettings_PASSTHROUGH ||
				mode == networkingv1alpha3.ServerTLSSettings_AUTO_PASSTHROUGH || mode == networkingv1alpha3.ServerTLSSettings_ISTIO_MUTUAL {
				continue
			}
			mutual := mode == networkingv1alpha3.ServerTLSSettings_MUTUAL || mode == networkingv1alpha3.ServerTLSSettings_OPTIONAL_MUTUAL
			for _, ns := range nss {
				out = append(out, credentialRef{gateway: o, server: i, namespace: ns, name: t.GetCredentialName(), mutual: mutual})
			}
		}
	}
	return out
}

// secrets is what credentials reads Secrets through (secretWatch).
type secrets interface {
	set(want map[string]bool)
	// get is the Secret (nil: it does not exist), whether it has been listed, and why not
	// when listing failed.
	get(ns, name string) (s *corev1.Secret, known bool, failed error)
}

// credentials resolves credential references with last-good retention. Owned by the
// source's build loop.
type credentials struct {
	watch secrets
	good  map[string]*model.Credential // "ns/name" → last good credential
}

func newCredentials(w secrets) *credentials {
	return &credentials{watch: w, good: map[string]*model.Credential{}}
}

// resolve watches the Secrets refs need and returns one Secret-kind object per
// credential to serve, and per Gateway key ("Gateway ns/name") the Warnings about its
// servers' credentials.
func (c *credentials) resolve(refs []credentialRef) ([]*config.Object, map[string][]config.Diagnostic) {
	mutual := map[string]bool{} // "ns/name" → whether a MUTUAL server uses it
	want := map[string]bool{}   // the Secrets to watch: those and their -cacert companions
	for _, r := range refs {
		mutual[r.key()] = mutual[r.key()] || r.mutual
		want[r.key()] = true
		if r.mutual {
			want[r.key()+model.CACertSuffix] = true
		}
	}
	c.watch.set(want)

	problems := map[string]string{} // "ns/name" → why its Secret does not serve
	good := map[string]*model.Credential{}
	for _, k := range slices.Sorted(maps.Keys(mutual)) {
		cred, why, known := c.read(k, mutual[k])
		prev := c.good[k]
		switch {
		case !known: // not listed yet: the last good one, silently
			if prev != nil {
				good[k] = prev
			}
		case why == "" && mutual[k] && len(cred.CA) == 0 && prev != nil && len(prev.CA) > 0:
			problems[k] = noCA(k) // the CA went away: MUTUAL keeps the last good one
			good[k] = prev
		case why == "":
			good[k] = cred
		default:
			problems[k] = why
			if g := c.good[k]; g != nil {
				good[k] = g
			}
		}
	}
	c.good = good

	var objs []*config.Object
	for _, k := range slices.Sorted(maps.Keys(good)) {
		objs = append(objs, credentialObject(good[k]))
	}
	diags := map[string][]config.Diagnostic{}
	for _, r := range refs {
		why, bad := problems[r.key()]
		if g := good[r.key()]; !bad && r.mutual && g != nil && len(g.CA) == 0 {
			why, bad = noCA(r.key()), true // a SIMPLE server may serve it, this one cannot
		}
		if !bad {
			continue
		}
		msg := why + "; this server is not served (the gateway refuses TLS for its hosts) until it is fixed"
		if g := good[r.key()]; g != nil && (!r.mutual || len(g.CA) > 0) {
			msg = why + "; the last good certificate keeps serving"
		}
		o := r.gateway
		gk := fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name)
		diags[gk] = append(diags[gk], config.Diagnostic{Level: config.Warning, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name,
			Field: fmt.Sprintf("spec.servers[%d].tls.credentialName", r.server), Message: msg})
	}
	return objs, diags
}

// read resolves the credential k ("ns/name"): why is "" when it serves; known is false
// while the Secret has not been listed yet.
func (c *credentials) read(k string, mutual bool) (cred *model.Credential, why string, known bool) {
	ns, name, _ := strings.Cut(k, "/")
	s, known, failed := c.watch.get(ns, name)
	if failed != nil {
		return nil, fmt.Sprintf("cannot read Secret %s/%s: %v", ns, name, failed), true
	}
	if !known {
		return nil, "", false
	}
	if s == nil {
		return nil, fmt.Sprintf("Secret %s/%s not found (credentialName %q names a Secret in the namespace of the gateway's pods)", ns, name, name), true
	}
	var ca *corev1.Secret
	if mutual {
		if ca, known, failed = c.watch.get(ns, name+model.CACertSuffix); failed != nil {
			return nil, fmt.Sprintf("cannot read Secret %s/%s%s: %v", ns, name, model.CACertSuffix, failed), true
		} else if !known {
			return nil, "", false
		}
	}
	cred, err := model.CredentialFromSecrets(s, ca)
	if err != nil {
		return nil, fmt.Sprintf("Secret %s/%s: %v", ns, name, err), true
	}
	return cred, "", true
}

// noCA says why a MUTUAL server cannot serve the credential k ("ns/name").
func noCA(k string) string {
	return fmt.Sprintf("Secret %s has no client CA for MUTUAL: want data key ca.crt or cacert in it, or a Secret %s%s", k, k, model.CACertSuffix)
}

// credentialObject is the Secret-kind object the model reads a credential from; its
// Generation is a hash of the content, so a changed Secret is a configuration change.
func credentialObject(c *model.Credential) *config.Object {
	h := sha256.New()
	for _, b := range [][]byte{c.Cert, c.Key, c.CA} {
		fmt.Fprintf(h, "%d\x00", len(b))
		h.Write(b)
	}
	return &config.Object{Kind: config.KindSecret, APIVersion: "v1", Namespace: c.Namespace, Name: c.Name,
		Generation: hex.EncodeToString(h.Sum(nil))[:24], Kube: c.Secret()}
}

// withDiagnostics returns results with extra diagnostics added to the objects they name
// (by "Kind ns/name"), so the objects' Events carry them; the cached parses are not
// changed.
func withDiagnostics(results map[string]*parsed, extra map[string][]config.Diagnostic) map[string]*parsed {
	if len(extra) == 0 {
		return results
	}
	out := maps.Clone(results)
	for k, ds := range extra {
		pr := out[k]
		if pr == nil {
			continue
		}
		c := *pr
		c.diags = append(slices.Clip(pr.diags), ds...)
		out[k] = &c
	}
	return out
}
