package kubenode

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/lucid-mesh/lucid/internal/pki"
)

// nodePKI is the node's own CA (kube-apiserver's --client-ca-file and the kubelet's
// clientCAFile) and the certificates it signs: the kubelet's serving certificate, the
// kubelet's identity towards the API server, and the API server's towards the kubelet
// (logs, exec). The API server's serving certificate stays kubetest's.
type nodePKI struct {
	caCert                       string // PEM file paths
	kubeletCert, kubeletKey      string
	kubeletClient, kubeletClKey  string
	apiserverClient, apiserverKy string
}

func writeNodePKI(dir string) (*nodePKI, error) {
	ca, err := pki.NewRoot(pki.RootOptions{CommonName: "lucid-kubenode-ca", Validity: 24 * time.Hour})
	if err != nil {
		return nil, err
	}
	p := &nodePKI{caCert: filepath.Join(dir, "node-ca.crt")}
	if err := os.WriteFile(p.caCert, pki.EncodeCerts(ca.Cert), 0o600); err != nil {
		return nil, fmt.Errorf("kubenode: %w", err)
	}
	leaves := []struct {
		cert, key *string
		name      string
		subject   pkix.Name
		ips       []net.IP
		usage     x509.ExtKeyUsage
	}{
		{&p.kubeletCert, &p.kubeletKey, "kubelet", pkix.Name{CommonName: NodeName}, []net.IP{net.ParseIP(NodeIP)}, x509.ExtKeyUsageServerAuth},
		{&p.kubeletClient, &p.kubeletClKey, "kubelet-client", pkix.Name{CommonName: "system:node:" + NodeName, Organization: []string{"system:nodes"}}, nil, x509.ExtKeyUsageClientAuth},
		{&p.apiserverClient, &p.apiserverKy, "apiserver-kubelet-client", pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}}, nil, x509.ExtKeyUsageClientAuth},
	}
	for _, l := range leaves {
		key, err := pki.NewKey(pki.ECDSAP256)
		if err != nil {
			return nil, err
		}
		serial, err := pki.SerialNumber()
		if err != nil {
			return nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial, Subject: l.subject, IPAddresses: l.ips,
			NotBefore: time.Now().Add(-pki.ClockSkew), NotAfter: ca.Cert.NotAfter,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{l.usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
		if err != nil {
			return nil, fmt.Errorf("kubenode: %s certificate: %w", l.name, err)
		}
		keyPEM, err := pki.EncodeKey(key)
		if err != nil {
			return nil, err
		}
		*l.cert, *l.key = filepath.Join(dir, l.name+".crt"), filepath.Join(dir, l.name+".key")
		cert := &x509.Certificate{Raw: der}
		if err := os.WriteFile(*l.cert, pki.EncodeCerts(cert), 0o600); err != nil {
			return nil, fmt.Errorf("kubenode: %w", err)
		}
		if err := os.WriteFile(*l.key, keyPEM, 0o600); err != nil {
			return nil, fmt.Errorf("kubenode: %w", err)
		}
	}
	return p, nil
}
