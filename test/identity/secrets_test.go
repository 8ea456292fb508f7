// Package identity checks the agent's secrets dump as `lucid proxy-config secret` and
// istioctl will read it: decoded with Envoy's own protos (envoy.admin.v3.SecretsConfigDump,
// the tls.v3.Secret inside), it yields istioctl's rows for the workload certificate a real
// CA issued.
package identity

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"testing"
	"time"

	adminpb "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/lucid-mesh/lucid/internal/agent/identity"
	"github.com/lucid-mesh/lucid/internal/pki/spiffe"
	"github.com/lucid-mesh/lucid/internal/testutil/catest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// row is one line of istioctl's `proxy-config secret` table.
type row struct {
	name, typ, status string
	valid             bool
	serial            string
	notAfter          string
	notBefore         string
	trustDomain       string
}

// rows reads a secrets dump as istioctl's sdscompare does.
func rows(t *testing.T, d *adminpb.SecretsConfigDump, now time.Time) []row {
	t.Helper()
	var out []row
	add := func(s *adminpb.SecretsConfigDump_DynamicSecret, status string) {
		sec := &tlspb.Secret{}
		if err := s.GetSecret().UnmarshalTo(sec); err != nil {
			t.Fatalf("secret %s: %v", s.GetName(), err)
		}
		data := sec.GetTlsCertificate().GetCertificateChain().GetInlineBytes()
		if len(data) == 0 {
			data = sec.GetValidationContext().GetTrustedCa().GetInlineBytes()
		}
		block, _ := pem.Decode(data)
		if block == nil {
			t.Fatalf("secret %s: no PEM", s.GetName())
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		r := row{name: s.GetName(), status: status, typ: "Cert Chain",
			valid: now.After(c.NotBefore) && now.Before(c.NotAfter), serial: fmt.Sprintf("%032x", c.SerialNumber),
			notAfter: c.NotAfter.Format(time.RFC3339), notBefore: c.NotBefore.Format(time.RFC3339)}
		if c.IsCA {
			r.typ = "CA"
		}
		for _, u := range c.URIs {
			if u.Scheme == "spiffe" {
				r.trustDomain = u.Host
			}
		}
		out = append(out, r)
	}
	for _, s := range d.GetDynamicWarmingSecrets() {
		out = append(out, row{name: s.GetName(), status: "WARMING"})
	}
	for _, s := range d.GetDynamicActiveSecrets() {
		add(s, "ACTIVE")
	}
	return out
}

func TestSecretsDumpReadsAsIstioctl(t *testing.T) {
	c := catest.Start(t, "127.0.117.60")
	cc, client, err := identity.Dial(identity.DialOptions{Address: c.Addr, Roots: c.Roots(),
		Token: identity.StaticToken(c.Token(t, "default/reviews-v1", "default", "bookinfo-reviews"))})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	m, err := identity.New(identity.Options{Client: client, ID: spiffe.ID{TrustDomain: "cluster.local", Namespace: "default", ServiceAccount: "bookinfo-reviews"}})
	if err != nil {
		t.Fatal(err)
	}

	decode := func() *adminpb.SecretsConfigDump {
		b, err := m.SecretsConfigDump()
		if err != nil {
			t.Fatal(err)
		}
		// The dump is an element of /config_dump's configs: an Any of SecretsConfigDump.
		a := &anypb.Any{}
		if err := protojson.Unmarshal(b, a); err != nil {
			t.Fatalf("the dump is not an Any: %v\n%s", err, b)
		}
		d := &adminpb.SecretsConfigDump{}
		if err := a.UnmarshalTo(d); err != nil {
			t.Fatalf("Envoy's SecretsConfigDump does not read the dump: %v\n%s", err, b)
		}
		// It also fits in /config_dump's configs list, as its last entry (Envoy's order).
		whole := `{"configs":[` + string(b) + `]}`
		if err := protojson.Unmarshal([]byte(whole), &adminpb.ConfigDump{}); err != nil {
			t.Fatalf("in a ConfigDump: %v", err)
		}
		return d
	}
	if got := rows(t, decode(), time.Now()); len(got) != 2 || got[0].status != "WARMING" || got[1].name != "ROOTCA" {
		t.Fatalf("before the certificate: %+v", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-m.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("no certificate")
	}
	d := decode()
	s := m.Current()
	if v := d.GetDynamicActiveSecrets()[0].GetVersionInfo(); v != s.Version {
		t.Errorf("version_info %q, want %q", v, s.Version)
	}
	if lu := d.GetDynamicActiveSecrets()[0].GetLastUpdated().AsTime(); !lu.Equal(s.Updated) {
		t.Errorf("last_updated %v, want %v", lu, s.Updated)
	}
	sec := &tlspb.Secret{}
	_ = d.GetDynamicActiveSecrets()[0].GetSecret().UnmarshalTo(sec)
	if k := string(sec.GetTlsCertificate().GetPrivateKey().GetInlineBytes()); k != "[redacted]" {
		t.Errorf("private key shown as %q, want Envoy's [redacted]", k)
	}
	leaf := s.Leaf
	want := []row{
		{name: "default", typ: "Cert Chain", status: "ACTIVE", valid: true, serial: fmt.Sprintf("%032x", leaf.SerialNumber),
			notAfter: leaf.NotAfter.Format(time.RFC3339), notBefore: leaf.NotBefore.Format(time.RFC3339), trustDomain: "cluster.local"},
		{name: "ROOTCA", typ: "CA", status: "ACTIVE", valid: true},
	}
	got := rows(t, d, time.Now())
	if len(got) != 2 {
		t.Fatalf("rows %+v", got)
	}
	if got[0] != want[0] {
		t.Errorf("default row %+v, want %+v", got[0], want[0])
	}
	if got[1].name != want[1].name || got[1].typ != "CA" || got[1].status != "ACTIVE" || !got[1].valid {
		t.Errorf("ROOTCA row %+v", got[1])
	}
}
