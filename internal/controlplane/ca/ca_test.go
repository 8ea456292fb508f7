package ca

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"

	"github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/pki/spiffe"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var reviews = spiffe.ID{TrustDomain: "cluster.local", Namespace: "default", ServiceAccount: "bookinfo-reviews"}

func newCA(t testing.TB, o Options) *CA {
	t.Helper()
	a, err := pki.NewRoot(pki.RootOptions{Org: "cluster.local", Validity: 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(a, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func csrFor(t testing.TB, uris ...string) []byte {
	t.Helper()
	key, err := pki.NewKey(pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	var us []*url.URL
	for _, s := range uris {
		u, _ := url.Parse(s)
		us = append(us, u)
	}
	b, err := pki.NewCSR(key, us, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func leafOf(t *testing.T, chain []string) *x509.Certificate {
	t.Helper()
	certs, err := pki.ParseCerts([]byte(chain[0]))
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

func TestSignIdentityFromCaller(t *testing.T) {
	c := newCA(t, Options{})
	for _, sans := range [][]string{nil, {reviews.String()}} {
		chain, err := c.Sign(csrFor(t, sans...), reviews, 0)
		if err != nil {
			t.Fatalf("CSR with SANs %v: %v", sans, err)
		}
		leaf := leafOf(t, chain)
		if id, err := spiffe.FromCertificate(leaf); err != nil || id != reviews {
			t.Errorf("issued identity %v (%v), want %s", id, err, reviews)
		}
		if got := leaf.NotAfter.Sub(leaf.NotBefore); got != DefaultWorkloadTTL+pki.ClockSkew {
			t.Errorf("lifetime %s, want the default TTL %s (+ clock skew)", got, DefaultWorkloadTTL)
		}
		if len(chain) != 2 || !strings.HasSuffix(chain[0], "\n") || chain[1] != string(c.RootsPEM()) {
			t.Errorf("chain = %d elements, want the leaf then the root, each one PEM certificate", len(chain))
		}
		pool := c.Authority().RootPool()
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify: %v", err)
		}
	}
}

func TestSignRefusals(t *testing.T) {
	c := newCA(t, Options{MaxTTL: 48 * time.Hour})
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edCSR, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, edKey)
	key, _ := pki.NewKey(pki.ECDSAP256)
	dnsCSR, _ := pki.NewCSR(key, nil, []string{"reviews.default.svc"})
	tests := []struct {
		name string
		csr  []byte
		ttl  time.Duration
		code codes.Code
		want string
	}{
		{"not a CSR", []byte("hello"), 0, codes.InvalidArgument, "no PEM block"},
		{"another identity", csrFor(t, "spiffe://cluster.local/ns/default/sa/admin"), 0, codes.InvalidArgument,
			`the CSR asks for URI SAN "spiffe://cluster.local/ns/default/sa/admin", but the caller authenticated as spiffe://cluster.local/ns/default/sa/bookinfo-reviews`},
		{"two identities", csrFor(t, reviews.String(), "spiffe://cluster.local/ns/x/sa/y"), 0, codes.InvalidArgument, "never from the CSR"},
		{"a DNS name", dnsCSR, 0, codes.InvalidArgument, "DNS SAN reviews.default.svc: workload certificates carry only the caller's SPIFFE identity"},
		{"Ed25519 key", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: edCSR}), 0, codes.InvalidArgument, "unsupported key: Ed25519"},
		{"over the max TTL", csrFor(t), 49 * time.Hour, codes.InvalidArgument, "requested TTL 49h0m0s is greater than the max allowed TTL 48h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Sign(tt.csr, reviews, tt.ttl)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ca.Error", err)
			}
			st := ce.GRPCStatus()
			if st.Code() != tt.code || !strings.HasPrefix(st.Message(), "CSR signing error (") || !strings.Contains(st.Message(), tt.want) {
				t.Fatalf("status %s %q, want %s with %q", st.Code(), st.Message(), tt.code, tt.want)
			}
		})
	}
	chain, err := c.Sign(csrFor(t), reviews, 48*time.Hour)
	if err != nil {
		t.Fatalf("the max TTL itself: %v", err)
	}
	if l := leafOf(t, chain); l.NotAfter.Sub(l.NotBefore) != 48*time.Hour+pki.ClockSkew {
		t.Errorf("lifetime %s, want 48h", l.NotAfter.Sub(l.NotBefore))
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	a, _ := pki.NewRoot(pki.RootOptions{Validity: time.Hour})
	if _, err := New(a, Options{TrustDomain: "Cluster Local"}); err == nil || !strings.Contains(err.Error(), "trustDomain") {
		t.Errorf("bad trust domain: %v", err)
	}
	if _, err := New(a, Options{DefaultTTL: 2 * time.Hour, MaxTTL: time.Hour}); err == nil {
		t.Error("a default TTL over the maximum was accepted")
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("no authority accepted")
	}
}

// TestPluggedChain: with an intermediate CA (Istio's cacerts), the response is the leaf,
// cert-chain.pem's certificates, then the roots, and the leaf verifies through them.
func TestPluggedChain(t *testing.T) {
	root, _ := pki.NewRoot(pki.RootOptions{Org: "root", Validity: time.Hour})
	inter := intermediate(t, root)
	c, err := New(inter, Options{})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := c.Sign(csrFor(t), reviews, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 4 { // leaf, intermediate, root (cert-chain.pem), root (root-cert.pem): Istio's layout
		t.Fatalf("chain of %d, want 4", len(chain))
	}
	inters := x509.NewCertPool()
	for _, el := range chain[1 : len(chain)-1] {
		cs, _ := pki.ParseCerts([]byte(el))
		inters.AddCert(cs[0])
	}
	rootPool := x509.NewCertPool()
	rootPool.AppendCertsFromPEM([]byte(chain[len(chain)-1]))
	if _, err := leafOf(t, chain).Verify(x509.VerifyOptions{Roots: rootPool, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("verify through the plugged chain: %v", err)
	}
}

func TestServingRotator(t *testing.T) {
	c := newCA(t, Options{})
	r, err := c.ServingRotator(ServingOptions{IPs: []net.IP{net.ParseIP("127.0.117.1")}})
	if err != nil {
		t.Fatal(err)
	}
	leaf := r.Current().Leaf
	for _, name := range append(ServerNames("istio-system"), "127.0.117.1") {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.Authority().RootPool(), DNSName: name}); err != nil {
			t.Errorf("serving certificate for %s: %v", name, err)
		}
	}
	if _, ok := r.Current().PrivateKey.(*ecdsa.PrivateKey); !ok {
		t.Errorf("serving key %T, want ECDSA", r.Current().PrivateKey)
	}
}

// FuzzSign: whatever bytes a caller sends as its CSR, Sign answers a certificate for the
// caller's identity or an InvalidArgument error, and never panics.
func FuzzSign(f *testing.F) {
	c := newCA(f, Options{})
	f.Add(csrFor(f), int64(3600))
	f.Add(csrFor(f, "spiffe://cluster.local/ns/default/sa/admin"), int64(0))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"), int64(-5))
	f.Fuzz(func(t *testing.T, csr []byte, ttl int64) {
		chain, err := c.Sign(csr, reviews, secondsTTL(ttl))
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.Code != codes.InvalidArgument {
				t.Fatalf("error %v: want an InvalidArgument *ca.Error", err)
			}
			return
		}
		certs, err := pki.ParseCerts([]byte(chain[0]))
		if err != nil {
			t.Fatal(err)
		}
		if id, err := spiffe.FromCertificate(certs[0]); err != nil || id != reviews {
			t.Fatalf("issued %v (%v), want the caller's identity", id, err)
		}
	})
}

func intermediate(t testing.TB, parent *pki.Authority) *pki.Authority {
	t.Helper()
	a, err := parent.NewIntermediate(pki.RootOptions{CommonName: "intermediate", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return a
}
