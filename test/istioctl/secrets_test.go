package istioctl

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"istio.io/istio/istioctl/pkg/writer/envoy/configdump"

	"github.com/lucid-mesh/lucid/internal/agent/identity"
	"github.com/lucid-mesh/lucid/internal/diag/configview"
	"github.com/lucid-mesh/lucid/internal/diag/inspect"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// `lucid proxy-config bootstrap` and `secret` on a real sidecar print what istioctl's
// bootstrap and secret summaries print.
func TestBootstrapAndSecretMatchIstioctl(t *testing.T) {
	m := startMesh(t)
	admin := testutil.Admin("127.0.171.110")
	waitRoutes(t, m, admin)
	dump := get(t, "http://"+admin+"/config_dump")
	same(t, "bootstrap", istioctl(t, dump, func(w *configdump.ConfigWriter) error { return w.PrintBootstrapSummary() }),
		lucid(t, "proxy-config", "bootstrap", "--admin", admin))
	same(t, "secret", istioctl(t, dump, func(w *configdump.ConfigWriter) error { return w.PrintSecretSummary() }),
		lucid(t, "proxy-config", "secret", "--admin", admin))
}

// A secrets section with a workload certificate (SPIFFE URI) and the root, active and
// warming, in the JSON Envoy writes: the table is istioctl's, row for row. When every
// secret names a trust domain istioctl adds a TRUST DOMAIN column, by appending it to a
// package-level header that keeps it for the rest of the process; that case is checked on
// its own, not against istioctl, so the other comparisons stay valid.
func TestSecretTableMatchesIstioctl(t *testing.T) {
	now := time.Now()
	root := certPEM(t, true, "", now)
	leaf := certPEM(t, false, "spiffe://cluster.local/ns/default/sa/curl", now)
	const secretType = `"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"`
	active := fmt.Sprintf(`[{"name":"default","version_info":"1","secret":{`+secretType+`,"name":"default",
		"tls_certificate":{"certificate_chain":{"inline_bytes":%q},"private_key":{"inline_bytes":"W3JlZGFjdGVkXQ=="}}}},
		{"name":"ROOTCA","version_info":"1","secret":{`+secretType+`,"name":"ROOTCA",
		"validation_context":{"trusted_ca":{"inline_bytes":%q}}}}]`, leaf, root)
	leafOnly := fmt.Sprintf(`[{"name":"default","version_info":"1","secret":{`+secretType+`,"name":"default",
		"tls_certificate":{"certificate_chain":{"inline_bytes":%q}}}}]`, leaf)
	warming := `,"dynamic_warming_secrets":[{"name":"ROOTCA","secret":{` + secretType + `,"name":"ROOTCA"}}]`
	table := func(secrets string) (dump []byte, lucid string) {
		t.Helper()
		dump = []byte(`{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.SecretsConfigDump","dynamic_active_secrets":` + secrets + `}]}`)
		d, err := inspect.ParseConfigDump(dump)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := configview.Secrets(&got, d, time.Now()); err != nil {
			t.Fatal(err)
		}
		return dump, got.String()
	}
	for name, secrets := range map[string]string{"active": active, "active and warming": active + warming, "leaf and warming": leafOnly + warming} {
		dump, got := table(secrets)
		same(t, name, istioctl(t, dump, func(w *configdump.ConfigWriter) error { return w.PrintSecretSummary() }), got)
	}
	if _, got := table(leafOnly); !strings.Contains(got, "NOT BEFORE               TRUST DOMAIN") || !strings.Contains(got, "Z     cluster.local\n") {
		t.Errorf("every secret names a trust domain: no TRUST DOMAIN column:\n%s", got)
	}
}

// certPEM is a certificate (a CA, or a workload certificate with uri) as base64 PEM, the
// form of inline_bytes in the JSON dump.
func certPEM(t *testing.T, ca bool, uri string, now time.Time) string {
	t.Helper()
	cert, _ := newCert(t, ca, "", uri, now)
	return base64.StdEncoding.EncodeToString(cert)
}

// The agent's secrets section before its certificate arrives (warming) and after: istioctl's
// secret summary reads both, and `lucid proxy-config secret` prints the same.
func TestAgentSecretsReadByIstioctl(t *testing.T) {
	now := time.Now()
	chain, _ := newCert(t, false, "", "spiffe://cluster.local/ns/default/sa/curl", now)
	roots, _ := newCert(t, true, "", "", now)
	for _, s := range []*identity.Secret{nil, {ChainPEM: chain, RootsPEM: roots, Version: "1", Updated: now}} {
		sec, err := identity.SecretsConfigDump(s)
		if err != nil {
			t.Fatal(err)
		}
		dump := []byte(`{"configs":[` + string(sec) + `]}`)
		want := istioctl(t, dump, func(w *configdump.ConfigWriter) error { return w.PrintSecretSummary() })
		d, err := inspect.ParseConfigDump(dump)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := configview.Secrets(&got, d, time.Now()); err != nil {
			t.Fatal(err)
		}
		same(t, fmt.Sprintf("agent secrets (certificate in: %v)", s != nil), want, got.String())
	}
}
