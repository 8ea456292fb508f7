package grpcxds

import (
	"crypto/tls"
	"encoding/json"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/xds"

	"github.com/lucid-mesh/lucid/internal/agent/identity"
	"github.com/lucid-mesh/lucid/internal/pki"
)

// The bootstrap is what grpc-go accepts, names the workload as Istio's node id with
// GENERATOR grpc, carries Istio's server listener template and, with a certificate
// directory, the file_watcher provider "default" over the three files.
func TestBootstrap(t *testing.T) {
	o := BootstrapOptions{Discovery: "127.0.0.1:15010", Workload: "echo-v1", Namespace: "default", IP: netip.MustParseAddr("127.0.171.21"), CertDir: "/certs"}
	b, err := Bootstrap(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := xds.NewXDSResolverWithConfigForTesting(b); err != nil {
		t.Fatalf("grpc-go refuses the bootstrap: %v\n%s", err, b)
	}
	var got struct {
		Node struct {
			ID       string         `json:"id"`
			Metadata map[string]any `json:"metadata"`
		} `json:"node"`
		Providers map[string]struct {
			Plugin string            `json:"plugin_name"`
			Config map[string]string `json:"config"`
		} `json:"certificate_providers"`
		Template string `json:"server_listener_resource_name_template"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Node.ID != "sidecar~127.0.171.21~echo-v1.default~default.svc.cluster.local" || got.Node.Metadata["GENERATOR"] != "grpc" {
		t.Errorf("node %+v", got.Node)
	}
	if got.Template != "xds.istio.io/grpc/lds/inbound/%s" {
		t.Errorf("server listener template %q", got.Template)
	}
	p := got.Providers["default"]
	if p.Plugin != "file_watcher" || p.Config["certificate_file"] != "/certs/cert-chain.pem" || p.Config["private_key_file"] != "/certs/key.pem" || p.Config["ca_certificate_file"] != "/certs/root-cert.pem" {
		t.Errorf("certificate provider %+v", p)
	}

	o.CertDir = ""
	if b, _ := Bootstrap(o); strings.Contains(string(b), "certificate_providers") {
		t.Errorf("a bootstrap without a certificate directory names providers:\n%s", b)
	}
	for _, bad := range []BootstrapOptions{{Discovery: "nope", Workload: "a", Namespace: "b", IP: o.IP}, {Discovery: o.Discovery, Namespace: "b", IP: o.IP}, {Discovery: o.Discovery, Workload: "a", Namespace: "b"}} {
		if _, err := Bootstrap(bad); err == nil {
			t.Errorf("Bootstrap(%+v) accepted", bad)
		}
	}
}

// WriteCerts writes a pair tls.X509KeyPair loads (what gRPC's file_watcher does), the
// roots, and the key readable by its owner only.
func TestWriteCerts(t *testing.T) {
	root, err := pki.NewRoot(pki.RootOptions{Org: "cluster.local", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := url.Parse("spiffe://cluster.local/ns/default/sa/echo")
	cert, err := root.Issue(pki.Template{URIs: []*url.URL{id}, Usage: pki.ServerAuth | pki.ClientAuth, Validity: time.Hour}, pki.KeyType(0))
	if err != nil {
		t.Fatal(err)
	}
	s := &identity.Secret{Certificate: cert, Leaf: cert.Leaf, ChainPEM: pki.EncodeCerts(cert.Leaf), RootsPEM: pki.EncodeCerts(root.Cert)}
	dir := t.TempDir()
	if err := WriteCerts(dir, s); err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, CertChainFile), filepath.Join(dir, KeyFile)); err != nil {
		t.Errorf("the files are not a key pair: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key.pem: %v %v, want mode 0600", fi.Mode(), err)
	}
	roots, err := os.ReadFile(filepath.Join(dir, RootCertFile))
	if err != nil || string(roots) != string(s.RootsPEM) {
		t.Errorf("root-cert.pem: %v", err)
	}
	if err := WriteCerts(filepath.Join(dir, "missing"), s); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("writing into a missing directory: %v, want an error naming it", err)
	}
}
