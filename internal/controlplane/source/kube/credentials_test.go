package kube

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// listedSecrets is what the informers have listed: Secrets by "ns/name", and which names
// have been listed at all (a name listed without a Secret does not exist).
type listedSecrets struct {
	watched map[string]bool
	listed  map[string]bool
	failed  map[string]error
	objs    map[string]*corev1.Secret
}

func (l *listedSecrets) set(want map[string]bool) { l.watched = maps.Clone(want) }
func (l *listedSecrets) get(ns, name string) (*corev1.Secret, bool, error) {
	k := ns + "/" + name
	return l.objs[k], l.listed[k], l.failed[k]
}

func (l *listedSecrets) put(name string, data map[string][]byte) {
	l.listed["gwns/"+name] = true
	l.objs["gwns/"+name] = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "gwns"}, Data: data}
}

// The Gateway's credentialNames resolve in the namespace of the pods its selector
// matches; only those Secrets (and MUTUAL's -cacert) are watched; a Secret not listed yet
// says nothing; a broken or deleted one keeps its last good credential with a Warning
// naming the server and the Secret; one never good leaves the server unserved.
func TestCredentialsLastGood(t *testing.T) {
	objs, diags := config.Parse("", []byte(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: gw-config}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: a-cert}
  - port: {number: 443, name: https-m, protocol: HTTPS}
    hosts: [m.example.com]
    tls: {mode: MUTUAL, credentialName: m-cert}
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: [p.example.com]
    tls: {mode: PASSTHROUGH}
`))
	if len(diags) != 0 {
		t.Fatal(diags)
	}
	pods := []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "ingress-0", Namespace: "gwns", Labels: map[string]string{"istio": "ingressgateway"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "app-0", Namespace: "other", Labels: map[string]string{"app": "x"}}},
	}
	refs := credentialRefs(objs, pods)
	ca := testutil.CA(t, "credentials CA")
	first, second := testutil.Issue(t, ca, false, "a.example.com"), testutil.Issue(t, ca, false, "a.example.com", "second")
	l := &listedSecrets{listed: map[string]bool{}, objs: map[string]*corev1.Secret{}}
	c := newCredentials(l)
	served := func() (map[string]string, []string) {
		t.Helper()
		objs, diags := c.resolve(refs)
		out := map[string]string{}
		for _, o := range objs {
			out[o.Namespace+"/"+o.Name] = string(o.Kube.(*corev1.Secret).Data["tls.crt"])
		}
		var msgs []string
		for _, ds := range diags {
			for _, d := range ds {
				msgs = append(msgs, d.String())
			}
		}
		slices.Sort(msgs)
		return out, msgs
	}

	// Listing fails (no RBAC on secrets): said, on the server.
	l.failed = map[string]error{"gwns/a-cert": errors.New(`secrets is forbidden: User "x" cannot list resource "secrets"`)}
	if _, msgs := served(); len(msgs) != 1 || !strings.Contains(msgs[0], "spec.servers[0].tls.credentialName: cannot read Secret gwns/a-cert: secrets is forbidden") {
		t.Errorf("listing forbidden: said %v", msgs)
	}
	l.failed = nil

	// Nothing listed yet: nothing served, nothing said.
	got, msgs := served()
	if len(got) != 0 || len(msgs) != 0 {
		t.Errorf("before listing: served %v, said %v", got, msgs)
	}
	if want := []string{"gwns/a-cert", "gwns/m-cert", "gwns/m-cert-cacert"}; !slices.Equal(slices.Sorted(maps.Keys(l.watched)), want) {
		t.Errorf("watched %v, want %v", slices.Sorted(maps.Keys(l.watched)), want)
	}

	l.put("a-cert", map[string][]byte{"tls.crt": first.CertPEM, "tls.key": first.KeyPEM})
	l.put("m-cert", map[string][]byte{"cert": first.CertPEM, "key": first.KeyPEM})
	l.listed["gwns/m-cert-cacert"] = true // listed: it does not exist
	got, msgs = served()
	if got["gwns/a-cert"] != string(first.CertPEM) || got["gwns/m-cert"] != string(first.CertPEM) {
		t.Errorf("served %v, want a-cert and m-cert (for SIMPLE servers; the MUTUAL one has no CA)", slices.Collect(maps.Keys(got)))
	}
	wantM := "Gateway gw-config/ingress: spec.servers[1].tls.credentialName: Secret gwns/m-cert has no client CA for MUTUAL: want data key ca.crt or cacert in it, or a Secret gwns/m-cert-cacert; this server is not served (the gateway refuses TLS for its hosts) until it is fixed"
	if !slices.Equal(msgs, []string{wantM}) {
		t.Errorf("said:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), wantM)
	}

	l.put("m-cert-cacert", map[string][]byte{"cacert": pki.EncodeCerts(ca.Cert)})
	l.put("a-cert", map[string][]byte{"tls.crt": second.CertPEM, "tls.key": first.KeyPEM}) // broken
	got, msgs = served()
	if got["gwns/a-cert"] != string(first.CertPEM) || got["gwns/m-cert"] == "" {
		t.Errorf("with a-cert broken: served %v, want the last good a-cert and m-cert", slices.Collect(maps.Keys(got)))
	}
	if len(msgs) != 1 || !strings.Contains(msgs[0], "spec.servers[0].tls.credentialName: Secret gwns/a-cert: the certificate and key do not load") ||
		!strings.HasSuffix(msgs[0], "; the last good certificate keeps serving") {
		t.Errorf("said %v", msgs)
	}

	// The CA goes away: MUTUAL keeps the last good credential, with its CA.
	delete(l.objs, "gwns/m-cert-cacert")
	objs2, diags2 := c.resolve(refs)
	var mCA bool
	for _, o := range objs2 {
		mCA = mCA || o.Name == "m-cert" && len(o.Kube.(*corev1.Secret).Data["ca.crt"]) > 0
	}
	if d := diags2["Gateway gw-config/ingress"]; !mCA || len(d) != 2 ||
		!strings.HasSuffix(d[1].String(), "spec.servers[1].tls.credentialName: Secret gwns/m-cert has no client CA for MUTUAL: want data key ca.crt or cacert in it, or a Secret gwns/m-cert-cacert; the last good certificate keeps serving") {
		t.Errorf("with the CA gone: m-cert with its CA %v, said %v", mCA, d)
	}
	l.put("m-cert-cacert", map[string][]byte{"cacert": pki.EncodeCerts(ca.Cert)})

	delete(l.objs, "gwns/a-cert") // deleted
	if got, msgs = served(); got["gwns/a-cert"] != string(first.CertPEM) || len(msgs) != 1 ||
		!strings.Contains(msgs[0], "Secret gwns/a-cert not found") {
		t.Errorf("with a-cert deleted: served %v, said %v", slices.Collect(maps.Keys(got)), msgs)
	}
	l.put("a-cert", map[string][]byte{"tls.crt": second.CertPEM, "tls.key": second.KeyPEM})
	if got, msgs = served(); got["gwns/a-cert"] != string(second.CertPEM) || len(msgs) != 0 {
		t.Errorf("with a-cert fixed: served %q, said %v", got["gwns/a-cert"], msgs)
	}

	// No Gateway references them any more: not watched, not kept.
	if objs, _ := c.resolve(nil); len(objs) != 0 || len(l.watched) != 0 {
		t.Errorf("without references: served %d, watched %v", len(objs), l.watched)
	}
}
