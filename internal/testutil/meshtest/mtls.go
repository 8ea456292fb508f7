package meshtest

import (
	"cmp"
	"os"
	"path/filepath"

	"github.com/lucid-mesh/lucid/internal/agent"
	"github.com/lucid-mesh/lucid/internal/controlplane/ca"
	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
)

// caOptions runs the mesh CA in discovery when o asks for mutual TLS.
func (m *Mesh) caOptions(o Options) discovery.CAOptions {
	if o.MTLS == "" {
		return discovery.CAOptions{}
	}
	if m.State == "" {
		m.State = m.t.TempDir()
	}
	return discovery.CAOptions{Addr: o.MTLS, StateDir: m.State}
}

// identity issues workload w its token (as `lucid up` does) and points its agent at the CA.
func (m *Mesh) identity(o Options, w Workload) agent.IdentityOptions {
	m.t.Helper()
	if o.MTLS == "" {
		return agent.IdentityOptions{}
	}
	ns, sa := cmp.Or(w.Namespace, "default"), cmp.Or(w.ServiceAccount, "default")
	tok, err := ca.IssueLocalToken(filepath.Join(m.State, discovery.TokensFileName), ns+"/"+w.Name, ns, sa)
	if err != nil {
		m.t.Fatal(err)
	}
	file := filepath.Join(m.State, "token-"+ns+"-"+w.Name)
	if err := os.WriteFile(file, []byte(tok), 0o600); err != nil {
		m.t.Fatal(err)
	}
	return agent.IdentityOptions{CAAddress: o.MTLS, CARootCert: filepath.Join(m.State, discovery.RootCertFile),
		CATokenFile: file, ServiceAccount: sa, SecretTTL: o.CertTTL, TrustDomain: o.TrustDomain}
}

// xdsAddr is where the sidecars get xDS: the TLS port with o.XDSOverTLS.
func (m *Mesh) xdsAddr(o Options) string {
	if o.XDSOverTLS && o.MTLS != "" {
		return o.MTLS
	}
	return m.ADS
}
