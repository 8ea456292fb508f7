package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newRoot(t *testing.T) *Authority {
	t.Helper()
	a, err := NewRoot(RootOptions{Org: "cluster.local", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestIssueVerifies(t *testing.T) {
	root := newRoot(t)
	for name, a := range map[string]*Authority{"root": root, "intermediate": intermediate(t, root)} {
		t.Run(name, func(t *testing.T) {
			c, err := a.Issue(Template{DNSNames: []string{"istiod.istio-system.svc"}, IPs: []net.IP{net.ParseIP("127.0.117.9")}, Validity: time.Hour}, ECDSAP256)
			if err != nil {
				t.Fatal(err)
			}
			inter := x509.NewCertPool()
			for _, der := range c.Certificate[1:] {
				ic, _ := x509.ParseCertificate(der)
				inter.AddCert(ic)
			}
			for _, n := range []string{"istiod.istio-system.svc", "127.0.117.9"} {
				if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: a.RootPool(), Intermediates: inter, DNSName: n}); err != nil {
					t.Errorf("verify %s: %v", n, err)
				}
			}
			for _, der := range c.Certificate {
				if cert, _ := x509.ParseCertificate(der); IsSelfSigned(cert) {
					t.Error("the serving chain carries the root")
				}
			}
			if !c.Leaf.NotAfter.Equal(a.Cert.NotAfter) {
				t.Errorf("leaf expires %v, want capped at the CA's %v", c.Leaf.NotAfter, a.Cert.NotAfter)
			}
		})
	}
}

func TestSignWorkload(t *testing.T) {
	a := newRoot(t)
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	u, _ := url.Parse("spiffe://cluster.local/ns/default/sa/reviews")
	now := time.Now()
	c, err := a.Sign(key.Public(), Template{URIs: []*url.URL{u}, Usage: ServerAuth | ClientAuth, Validity: 10 * time.Minute, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.URIs) != 1 || c.URIs[0].String() != u.String() || len(c.DNSNames) != 0 {
		t.Errorf("SANs = %v %v", c.URIs, c.DNSNames)
	}
	if len(c.ExtKeyUsage) != 2 {
		t.Errorf("ext key usage = %v, want server and client auth", c.ExtKeyUsage)
	}
	if c.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
		t.Error("an RSA leaf lacks keyEncipherment")
	}
	critical := false
	for _, e := range c.Extensions {
		if e.Id.Equal([]int{2, 5, 29, 17}) {
			critical = e.Critical
		}
	}
	if !critical {
		t.Error("the SAN extension of a subject-less certificate is not critical")
	}
	if got := c.NotBefore; !got.Equal(now.Add(-ClockSkew).Truncate(time.Second)) {
		t.Errorf("NotBefore = %v, want now - %s", got, ClockSkew)
	}
	expired := &Authority{Cert: &x509.Certificate{NotAfter: now.Add(-time.Second)}}
	if _, err := expired.Sign(key.Public(), Template{URIs: []*url.URL{u}, Validity: time.Minute, Now: now}); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("signing with an expired CA: %v", err)
	}
	if _, err := a.Sign(key.Public(), Template{Validity: time.Minute}); err == nil {
		t.Error("a certificate without SANs was signed")
	}
}

func TestLoadAuthority(t *testing.T) {
	root := newRoot(t)
	inter := intermediate(t, root)
	other := newRoot(t)
	files := func(a *Authority) Files {
		f, err := a.Files()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for name, f := range map[string]Files{"root": files(root), "intermediate": files(inter),
		"root without root-cert.pem": {CACert: files(root).CACert, CAKey: files(root).CAKey}} {
		a, err := LoadAuthority(f)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, err := a.Issue(Template{DNSNames: []string{"x"}, Validity: time.Minute}, ECDSAP256); err != nil {
			t.Errorf("%s: issue: %v", name, err)
		}
	}
	leaf, _ := root.Issue(Template{DNSNames: []string{"x"}, Validity: time.Minute}, ECDSAP256)
	leafKey, _ := EncodeKey(leaf.PrivateKey.(*ecdsa.PrivateKey))
	sec1, _ := x509.MarshalECPrivateKey(root.Key.(*ecdsa.PrivateKey))
	fi := files(inter)
	tests := []struct {
		name string
		f    Files
		want string
	}{
		{"garbage cert", Files{CACert: []byte("nope"), CAKey: files(root).CAKey}, "ca-cert.pem: no PEM CERTIFICATE block"},
		{"garbage key", Files{CACert: files(root).CACert, CAKey: []byte("nope")}, "ca-key.pem: no PEM block"},
		{"key of another CA", Files{CACert: files(root).CACert, CAKey: files(other).CAKey}, "ca-key.pem does not belong to ca-cert.pem"},
		{"not a CA", Files{CACert: EncodeCerts(leaf.Leaf), CAKey: leafKey}, "not a CA certificate"},
		{"intermediate without its root", Files{CACert: fi.CACert, CAKey: fi.CAKey, CertChain: fi.CertChain}, "root-cert.pem is missing"},
		{"intermediate with another root", Files{CACert: fi.CACert, CAKey: fi.CAKey, RootCert: files(other).RootCert}, "does not chain to root-cert.pem"},
		{"a key in the chain", Files{CACert: fi.CACert, CAKey: fi.CAKey, CertChain: fi.CAKey, RootCert: fi.RootCert}, `cert-chain.pem: PEM block 1 is a "PRIVATE KEY"`},
		{"SEC 1 key is fine, RSA label is not", Files{CACert: files(root).CACert, CAKey: pemBlock("RSA PRIVATE KEY", sec1)}, "ca-key.pem: RSA PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadAuthority(tt.f)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := LoadAuthority(Files{CACert: files(root).CACert, CAKey: pemBlock("EC PRIVATE KEY", sec1)}); err != nil {
		t.Errorf("SEC 1 CA key: %v", err)
	}
}

func TestServingChainLeavesOutRoots(t *testing.T) {
	root := newRoot(t)
	inter := intermediate(t, root)
	if got := inter.Intermediates(); len(got) != 1 || got[0] != inter.Cert {
		t.Fatalf("intermediates = %d certificates, want the intermediate only", len(got))
	}
	c, err := inter.Issue(Template{DNSNames: []string{"x"}, Validity: time.Minute}, RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificate) != 2 {
		t.Errorf("chain of %d, want leaf + intermediate", len(c.Certificate))
	}
	if _, err := tls.X509KeyPair(pemCerts(c.Certificate), mustKey(t, c)); err != nil {
		t.Errorf("issued pair unusable: %v", err)
	}
}

func TestKeyTypes(t *testing.T) {
	for _, k := range []KeyType{ECDSAP256, RSA2048} {
		key, err := NewKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckPublicKey(key.Public()); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	if _, err := NewKey(KeyType(9)); err == nil {
		t.Error("unknown key type accepted")
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err := CheckPublicKey(p224.Public()); err == nil || !strings.Contains(err.Error(), "P-224") {
		t.Errorf("P-224: %v", err)
	}
}

func intermediate(t *testing.T, parent *Authority) *Authority {
	t.Helper()
	a, err := parent.NewIntermediate(RootOptions{CommonName: "intermediate", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return a
}
