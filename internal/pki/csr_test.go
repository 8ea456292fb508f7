package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"strings"
	"testing"
)

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pemCerts(ders [][]byte) []byte {
	var b bytes.Buffer
	for _, d := range ders {
		b.Write(pemBlock("CERTIFICATE", d))
	}
	return b.Bytes()
}

func mustKey(t *testing.T, c *tls.Certificate) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PRIVATE KEY", der)
}

func spiffeURL(s string) *url.URL {
	u, _ := url.Parse(s)
	return u
}

func TestParseCSR(t *testing.T) {
	key, _ := NewKey(ECDSAP256)
	good, err := NewCSR(key, []*url.URL{spiffeURL("spiffe://cluster.local/ns/a/sa/b")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ParseCSR(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(csr.URIs) != 1 || csr.URIs[0].String() != "spiffe://cluster.local/ns/a/sa/b" {
		t.Errorf("URIs = %v", csr.URIs)
	}
	block, _ := pem.Decode(good)
	tampered := bytes.Clone(block.Bytes)
	tampered[len(tampered)-5] ^= 0xff // inside the signature
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "no PEM block"},
		{"not PEM", []byte("hello"), "no PEM block"},
		{"a certificate", pemBlock("CERTIFICATE", block.Bytes), `is a "CERTIFICATE", want CERTIFICATE REQUEST`},
		{"two CSRs", append(bytes.Clone(good), good...), "more than one PEM block"},
		{"garbage DER", pemBlock("CERTIFICATE REQUEST", []byte{0x30, 0x03, 0x02, 0x01, 0x01}), "malformed CSR"},
		{"bad signature", pemBlock("CERTIFICATE REQUEST", tampered), "signature does not verify"},
		{"huge", bytes.Repeat([]byte("A"), MaxCSRBytes+1), "more than the"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCSR(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := ParseCSR(pemBlock("NEW CERTIFICATE REQUEST", block.Bytes)); err != nil {
		t.Errorf("the NEW CERTIFICATE REQUEST label (old openssl): %v", err)
	}
}

func TestCheckPublicKey(t *testing.T) {
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name string
		pub  any
		want string // "" = accepted
	}{
		{"RSA 1024", rsa1024.Public(), "RSA 1024 bits"},
		{"P-384", p384.Public(), ""},
		{"Ed25519", edPub, "Ed25519"},
		{"none", nil, "no public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPublicKey(tt.pub)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// FuzzParseCSR: whatever arrives as a CSR, parsing returns a CSR or an error, never
// panics, and an accepted CSR's key passed its own signature check.
func FuzzParseCSR(f *testing.F) {
	key, _ := NewKey(ECDSAP256)
	good, _ := NewCSR(key, []*url.URL{spiffeURL("spiffe://cluster.local/ns/a/sa/b")}, []string{"x"})
	f.Add(good)
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		csr, err := ParseCSR(b)
		if err != nil {
			return
		}
		if csr.CheckSignature() != nil {
			t.Fatal("accepted a CSR whose signature does not verify")
		}
		_ = CheckPublicKey(csr.PublicKey)
	})
}

func FuzzParseCertsAndKey(f *testing.F) {
	a, _ := NewRoot(RootOptions{Validity: 1e9 * 3600})
	files, _ := a.Files()
	f.Add(files.CACert, files.CAKey)
	f.Add([]byte("x"), []byte("-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, certs, key []byte) {
		_, _ = ParseCerts(certs)
		_, _ = ParseKey(key)
		_, _ = LoadAuthority(Files{CACert: certs, CAKey: key, RootCert: certs})
	})
}
