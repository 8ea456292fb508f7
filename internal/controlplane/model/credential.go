package model

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// Gateway credentials: the certificate a Gateway server's tls.credentialName names, read
// from a Kubernetes Secret in the gateway workload's namespace with Istio's key names.
// source/kube watches only the Secrets Gateways reference and hands the model one
// Secret-kind object per credential (Kube set to the *corev1.Secret, its data reduced to
// tls.crt, tls.key and ca.crt, the -cacert companion's CA merged in); translate serves
// it inline in the server's DownstreamTlsContext (gateway_tls.go).

// Istio's Secret keys: a kubernetes.io/tls Secret's, then a generic Secret's.
const (
	SecretTLSCert = "tls.crt"
	SecretTLSKey  = "tls.key"
	SecretTLSCA   = "ca.crt"
	SecretCert    = "cert"
	SecretKey     = "key"
	SecretCACert  = "cacert"
	CACertSuffix  = "-cacert" // the companion Secret that holds MUTUAL's client CA apart
)

// Credential is one resolved credential: PEM certificate chain, key and (for MUTUAL)
// client CA.
type Credential struct {
	Namespace, Name string
	Cert, Key, CA   []byte
}

// ErrNoCertificate is a Secret without Istio's certificate keys.
var ErrNoCertificate = errors.New("no certificate: want data keys tls.crt and tls.key (type kubernetes.io/tls), or cert and key")

// CredentialFromSecrets reads a credential as Istio does: the certificate and key from
// tls.crt/tls.key or cert/key, the CA from ca.crt or cacert in the same Secret, else from
// the companion Secret <name>-cacert (nil when there is none). The pair must load and the
// CA parse: a credential that would not serve is an error saying why.
func CredentialFromSecrets(s, caSecret *corev1.Secret) (*Credential, error) {
	c := &Credential{Namespace: s.Namespace, Name: s.Name}
	pick := func(sec *corev1.Secret, keys ...string) []byte {
		for _, k := range keys {
			if v := sec.Data[k]; len(v) > 0 {
				return v
			}
		}
		return nil
	}
	switch {
	case len(s.Data[SecretTLSCert]) > 0 && len(s.Data[SecretTLSKey]) > 0:
		c.Cert, c.Key = s.Data[SecretTLSCert], s.Data[SecretTLSKey]
	case len(s.Data[SecretCert]) > 0 && len(s.Data[SecretKey]) > 0:
		c.Cert, c.Key = s.Data[SecretCert], s.Data[SecretKey]
	default:
		return nil, ErrNoCertificate
	}
	if _, err := tls.X509KeyPair(c.Cert, c.Key); err != nil {
		return nil, fmt.Errorf("the certificate and key do not load: %w", err)
	}
	c.CA = pick(s, SecretTLSCA, SecretCACert)
	if c.CA == nil && caSecret != nil {
		c.CA = pick(caSecret, SecretTLSCA, SecretCACert)
		if c.CA == nil {
			return nil, fmt.Errorf("Secret %s/%s has no CA: want data key ca.crt or cacert", caSecret.Namespace, caSecret.Name)
		}
	}
	if c.CA != nil && !x509.NewCertPool().AppendCertsFromPEM(c.CA) {
		return nil, errors.New("the CA (ca.crt or cacert) holds no PEM certificate")
	}
	return c, nil
}

// Secret is the Secret-kind object source/kube hands the model for a resolved credential.
func (c *Credential) Secret() *corev1.Secret {
	data := map[string][]byte{SecretTLSCert: c.Cert, SecretTLSKey: c.Key}
	if c.CA != nil {
		data[SecretTLSCA] = c.CA
	}
	s := &corev1.Secret{Type: corev1.SecretTypeTLS, Data: data}
	s.Name, s.Namespace = c.Name, c.Namespace
	return s
}

// addCredential records a Secret-kind object as the credential of its namespace and name.
func (b *builder) addCredential(o *config.Object, s *corev1.Secret) {
	c := &Credential{Namespace: o.Namespace, Name: o.Name, Cert: s.Data[SecretTLSCert], Key: s.Data[SecretTLSKey], CA: s.Data[SecretTLSCA]}
	if len(c.Cert) == 0 || len(c.Key) == 0 {
		return
	}
	if b.m.credentials == nil {
		b.m.credentials = map[string]*Credential{}
	}
	b.m.credentials[o.Namespace+"/"+o.Name] = c
}

// Credential is the credential credentialName names for a gateway in namespace ns, or nil.
func (m *Mesh) Credential(ns, name string) *Credential {
	return m.credentials[ns+"/"+name]
}
