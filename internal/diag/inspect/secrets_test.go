package inspect

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/pki"
)

// secretsDump is a config dump whose last section is the agent's secrets.
func secretsDump(t testing.TB) string {
	t.Helper()
	root, err := pki.NewRoot(pki.RootOptions{Org: "cluster.local", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := url.Parse("spiffe://cluster.local/ns/default/sa/web")
	leaf, err := root.Issue(pki.Template{URIs: []*url.URL{id}, Usage: pki.ClientAuth | pki.ServerAuth, Validity: time.Hour}, pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	chain := b64(pki.EncodeCerts(leaf.Leaf))
	roots := b64(pki.EncodeCerts(root.Roots...))
	return `{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump"},
{"@type":"type.googleapis.com/envoy.admin.v3.SecretsConfigDump","dynamic_active_secrets":[
 {"name":"default","version_info":"1","secret":{"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret","name":"default",
  "tls_certificate":{"certificate_chain":{"inline_bytes":"` + chain + `"},"private_key":{"inline_bytes":"W3JlZGFjdGVkXQ=="}}}},
 {"name":"ROOTCA","version_info":"1","secret":{"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret","name":"ROOTCA",
  "validation_context":{"trusted_ca":{"inline_bytes":"` + roots + `"}}}}]}]}`
}

// The secrets section of a config dump: warming, then active, each with its first
// certificate material (a chain, or the trusted roots).
func TestConfigDumpSecrets(t *testing.T) {
	d, err := ParseConfigDump([]byte(secretsDump(t)))
	if err != nil {
		t.Fatal(err)
	}
	if !d.HasSecrets || len(d.Secrets) != 2 {
		t.Fatalf("secrets %+v", d.Secrets)
	}
	for i, name := range []string{"default", "ROOTCA"} {
		if s := d.Secrets[i]; s.Name != name || s.State != "ACTIVE" || !strings.Contains(string(s.PEM), "BEGIN CERTIFICATE") {
			t.Errorf("secret %d = %s %s %.40q, want %s ACTIVE with a certificate", i, s.Name, s.State, s.PEM, name)
		}
	}
	warming := `{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.SecretsConfigDump","dynamic_warming_secrets":[{"name":"default"},{"name":"ROOTCA"}]}]}`
	if d, err := ParseConfigDump([]byte(warming)); err != nil || len(d.Secrets) != 2 || d.Secrets[0].State != "WARMING" || d.Secrets[0].PEM != nil {
		t.Errorf("warming: %+v %v", d, err)
	}
}
