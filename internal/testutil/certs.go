package testutil

import (
	"crypto"
	"crypto/tls"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/pki"
)

// CA is a test certificate authority: a fresh self-signed root from internal/pki (the
// mint every Lucid certificate comes from), valid for an hour.
func CA(t testing.TB, name string) *pki.Authority {
	t.Helper()
	ca, err := pki.NewRoot(pki.RootOptions{CommonName: name, Org: "lucid tests", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// Leaf is what Issue returns: the certificate and its key, as tls wants them and in PEM.
type Leaf struct {
	TLS             tls.Certificate
	CertPEM, KeyPEM []byte
}

// Issue signs an hour-long certificate from ca for names: DNS names, IP addresses and URIs
// (a name with "://" is a URI SAN, e.g. spiffe://cluster.local/ns/default/sa/x). client
// asks for the client-auth usage instead of server-auth.
func Issue(t testing.TB, ca *pki.Authority, client bool, names ...string) Leaf {
	t.Helper()
	tmpl := pki.Template{Validity: time.Hour, Usage: pki.ServerAuth}
	if client {
		tmpl.Usage = pki.ClientAuth
	}
	for _, n := range names {
		switch ip := net.ParseIP(n); {
		case ip != nil:
			tmpl.IPs = append(tmpl.IPs, ip)
		case strings.Contains(n, "://"):
			u, err := url.Parse(n)
			if err != nil {
				t.Fatal(err)
			}
			tmpl.URIs = append(tmpl.URIs, u)
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if len(names) > 0 {
		tmpl.CommonName = names[0]
	}
	c, err := ca.Issue(tmpl, pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.EncodeKey(c.PrivateKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	return Leaf{TLS: *c, CertPEM: pki.EncodeCerts(c.Leaf), KeyPEM: key}
}
