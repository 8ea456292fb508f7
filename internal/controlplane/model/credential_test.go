package model

import (
	"crypto/tls"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

func secret(name string, data map[string][]byte) *corev1.Secret {
	s := &corev1.Secret{Data: data}
	s.Name, s.Namespace = name, "gw"
	return s
}

// Istio's key names and the -cacert companion, and why a Secret is no credential.
func TestCredentialFromSecrets(t *testing.T) {
	ca := testutil.CA(t, "credential CA")
	leaf := testutil.Issue(t, ca, false, "a.example.com")
	other := testutil.Issue(t, ca, false, "b.example.com")
	caPEM := pki.EncodeCerts(ca.Cert)
	tests := []struct {
		name     string
		s, caSec *corev1.Secret
		wantCA   bool
		wantErr  string
	}{
		{name: "kubernetes.io/tls", s: secret("c", map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM})},
		{name: "generic", s: secret("c", map[string][]byte{"cert": leaf.CertPEM, "key": leaf.KeyPEM, "cacert": caPEM}), wantCA: true},
		{name: "ca.crt in the Secret wins over the companion", s: secret("c", map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM, "ca.crt": caPEM}),
			caSec: secret("c-cacert", map[string][]byte{"ca.crt": []byte("not PEM")}), wantCA: true},
		{name: "the -cacert companion", s: secret("c", map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM}),
			caSec: secret("c-cacert", map[string][]byte{"cacert": caPEM}), wantCA: true},
		{name: "a companion without a CA", s: secret("c", map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM}),
			caSec: secret("c-cacert", map[string][]byte{"other": caPEM}), wantErr: "Secret gw/c-cacert has no CA: want data key ca.crt or cacert"},
		{name: "no keys", s: secret("c", map[string][]byte{"tls.crt": leaf.CertPEM}), wantErr: ErrNoCertificate.Error()},
		{name: "a key that is not the certificate's", s: secret("c", map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": other.KeyPEM}),
			wantErr: "the certificate and key do not load: tls: private key does not match public key"},
		{name: "a CA that is not PEM", s: secret("c", map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM, "ca.crt": []byte("x")}),
			wantErr: "the CA (ca.crt or cacert) holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := CredentialFromSecrets(tt.s, tt.caSec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (len(c.CA) > 0) != tt.wantCA || c.Namespace != "gw" || c.Name != "c" {
				t.Errorf("credential %s/%s with CA %v, want CA %v", c.Namespace, c.Name, len(c.CA) > 0, tt.wantCA)
			}
			// The Secret-kind object the model is handed reads back the same.
			b := &builder{m: &Mesh{}}
			b.addCredential(&config.Object{Kind: config.KindSecret, Namespace: "gw", Name: "c"}, c.Secret())
			if got := b.m.Credential("gw", "c"); got == nil || string(got.Cert) != string(c.Cert) || string(got.CA) != string(c.CA) {
				t.Errorf("the model read back %+v", got)
			}
		})
	}
}

// FuzzCredentialFromSecrets: any Secret data is an error or a credential that loads.
func FuzzCredentialFromSecrets(f *testing.F) {
	ca := testutil.CA(f, "fuzz CA")
	leaf := testutil.Issue(f, ca, false, "a.example.com")
	f.Add(leaf.CertPEM, leaf.KeyPEM, pki.EncodeCerts(ca.Cert))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n"), []byte("x"), []byte(""))
	f.Fuzz(func(t *testing.T, cert, key, caPEM []byte) {
		c, err := CredentialFromSecrets(secret("c", map[string][]byte{"tls.crt": cert, "tls.key": key, "ca.crt": caPEM}), nil)
		if err != nil {
			return
		}
		if _, err := tls.X509KeyPair(c.Cert, c.Key); err != nil {
			t.Errorf("accepted a pair that does not load: %v", err)
		}
	})
}
