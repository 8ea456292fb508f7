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

func TestParseSecrets(t *testing.T) {
	rows, err := ParseSecrets([]byte(secretsDump(t)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("rows %+v", rows)
	}
	if r := rows[0]; r.Name != "default" || r.Type != "Cert Chain" || r.Status != "ACTIVE" || !r.Valid || r.Identity != "spiffe://cluster.local/ns/default/sa/web" || r.Serial == "" {
		t.Errorf("default = %+v", r)
	}
	if r := rows[1]; r.Name != "ROOTCA" || r.Type != "CA" || !r.Valid {
		t.Errorf("ROOTCA = %+v", r)
	}
	if rows, _ := ParseSecrets([]byte(secretsDump(t)), time.Now().Add(2*time.Hour)); rows[0].Valid {
		t.Error("an expired certificate shows VALID CERT true")
	}
	warming := `{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.SecretsConfigDump","dynamic_warming_secrets":[{"name":"default"},{"name":"ROOTCA"}]}]}`
	if rows, err := ParseSecrets([]byte(warming), time.Now()); err != nil || len(rows) != 2 || rows[0].Status != "WARMING" {
		t.Errorf("warming: %+v %v", rows, err)
	}
	bad := strings.Replace(secretsDump(t), `"inline_bytes":"`, `"inline_bytes":"AAAA`, 1)
	if _, err := ParseSecrets([]byte(bad), time.Now()); err == nil || !strings.Contains(err.Error(), "secret default") {
		t.Errorf("a broken certificate: %v, want an error naming the secret", err)
	}
}

func FuzzParseSecrets(f *testing.F) {
	f.Add([]byte(secretsDump(f)))
	f.Add([]byte(`{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.SecretsConfigDump","dynamic_warming_secrets":[{"name":"default"}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseSecrets(b, time.Now()) })
}
