package agent

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/catest"
)

// A sidecar with a CA: it gets its certificate with the token it was given, is not ready
// before, and its admin /config_dump ends with the secrets (Envoy's SecretsConfigDump):
// "default" carrying the workload's SPIFFE identity, "ROOTCA" the mesh roots.
func TestRunWorkloadIdentity(t *testing.T) {
	c := catest.Start(t, "127.0.163.1")
	runWithCA(t, c, "127.0.163.10", "shop", "web-sa", c.Token(t, "shop/web", "shop", "web-sa"))
	admin := "http://" + testutil.Admin("127.0.163.10")
	testutil.Eventually(t, 10*time.Second, "admin API", func() bool { return dialable(testutil.Admin("127.0.163.10")) })

	var chain []byte
	testutil.EventuallyWhy(t, 10*time.Second, "the workload certificate in /config_dump", func() (bool, string) {
		_, _, body := get(t, "GET", admin+"/config_dump")
		var d struct {
			Configs []struct {
				Type   string `json:"@type"`
				Active []struct {
					Name   string `json:"name"`
					Secret struct {
						TLS *struct {
							Chain struct {
								Inline []byte `json:"inline_bytes"`
							} `json:"certificate_chain"`
						} `json:"tls_certificate"`
					} `json:"secret"`
				} `json:"dynamic_active_secrets"`
			} `json:"configs"`
		}
		if err := json.Unmarshal([]byte(body), &d); err != nil {
			return false, err.Error()
		}
		last := d.Configs[len(d.Configs)-1]
		if last.Type != "type.googleapis.com/envoy.admin.v3.SecretsConfigDump" {
			return false, "last config is " + last.Type
		}
		if len(last.Active) != 2 || last.Active[0].Name != "default" || last.Active[1].Name != "ROOTCA" || last.Active[0].Secret.TLS == nil {
			return false, body
		}
		chain = last.Active[0].Secret.TLS.Chain.Inline
		return true, ""
	})
	certs, err := pki.ParseCerts(chain)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs[0].URIs) != 1 || certs[0].URIs[0].String() != "spiffe://cluster.local/ns/shop/sa/web-sa" {
		t.Fatalf("certificate SANs %v, want spiffe://cluster.local/ns/shop/sa/web-sa", certs[0].URIs)
	}
	// Ready is now only waiting for xDS (no control plane here), not for the certificate.
	if _, _, body := get(t, "GET", "http://127.0.163.10:15020/healthz/ready"); strings.Contains(body, "certificate") {
		t.Fatalf("readiness still waits for the certificate: %q", body)
	}
}

// A sidecar whose token the CA does not know never becomes ready, and says why.
func TestRunWorkloadIdentityRefused(t *testing.T) {
	c := catest.Start(t, "127.0.163.2")
	logs := runWithCA(t, c, "127.0.163.11", "default", "", "lucid-local-not-a-token")
	testutil.Eventually(t, 10*time.Second, "status server", func() bool { return dialable("127.0.163.11:15020") })
	testutil.Eventually(t, 10*time.Second, "the refusal logged", func() bool { return strings.Contains(logs.String(), "request authenticate failure") })
	if code, _, body := get(t, "GET", "http://127.0.163.11:15020/healthz/ready"); code != 503 || body != "workload certificate not received yet from the CA\n" {
		t.Fatalf("ready: %d %q", code, body)
	}
}

// runWithCA runs a sidecar at ip whose agent presents token to c; it stops at the end of
// the test.
func runWithCA(t *testing.T, c *catest.CA, ip, ns, sa, token string) *testutil.Buffer {
	t.Helper()
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	rootFile := filepath.Join(dir, "root-cert.pem")
	if err := os.WriteFile(rootFile, c.RootsPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &testutil.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			IP: netip.MustParseAddr(ip), Workload: "web", Namespace: ns, Discovery: ip + ":1",
			LogOutput: logs, DrainDuration: 100 * time.Millisecond,
			Identity: IdentityOptions{CAAddress: c.Addr, CARootCert: rootFile, CATokenFile: tokFile, ServiceAccount: sa},
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return logs
}
