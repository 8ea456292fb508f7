package kube

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// Gateway credentialName on Kubernetes: the Secret in the gateway pod's namespace is what
// a real TLS handshake to the gateway presents; a changed Secret reaches new connections
// without restarting the gateway; MUTUAL takes its client CA from the -cacert companion;
// a missing, broken or deleted Secret is reported on the Gateway naming the server and the
// Secret, and a Secret that was good keeps serving its last good certificate.
// Addresses: 127.0.98.40 (the gateway), 127.0.98.41 (the backend).

const (
	gwIP      = "127.0.98.40"
	gwBackend = "127.0.98.41"
	gwNS      = "gwsec"
)

var gatewaysGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "gateways"}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// tlsSecret is a kubernetes.io/tls Secret's YAML.
func tlsSecret(name string, l testutil.Leaf) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: %s, namespace: %s}\ntype: kubernetes.io/tls\ndata: {tls.crt: %s, tls.key: %s}\n",
		name, gwNS, b64(l.CertPEM), b64(l.KeyPEM))
}

// handshake dials the gateway's port with SNI sni, trusting roots, offering client when
// it is not nil; it returns the certificate the gateway presented.
func handshake(port int, sni string, roots *x509.CertPool, client *tls.Certificate) (*x509.Certificate, error) {
	cfg := &tls.Config{ServerName: sni, RootCAs: roots, MinVersion: tls.VersionTLS12}
	if client != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return client, nil }
	}
	d := &net.Dialer{Timeout: 2 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort(gwIP, fmt.Sprint(port)), cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// TLS 1.3: the server's verdict on the client's certificate comes with the first read.
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", sni); err != nil {
		return nil, err
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
		return nil, fmt.Errorf("answer %q, want 200", buf[:n])
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

func TestGatewayCredentialFromSecret(t *testing.T) {
	e := newEnv(t)
	e.namespace(gwNS)
	ca := testutil.CA(t, "gateway Secret test CA")
	clientCA := testutil.CA(t, "gateway client CA")
	first := testutil.Issue(t, ca, false, "a.example.com")
	mtls := testutil.Issue(t, ca, false, "m.example.com")
	client := testutil.Issue(t, clientCA, true, "client.example.com")

	e.backend(gwBackend+":9080", "httpbin")
	e.pod(gwNS, "httpbin-0", gwBackend, map[string]string{"app": "httpbin"})
	e.pod(gwNS, "ingress-0", gwIP, map[string]string{"istio": "ingressgateway"})
	e.apply(tlsSecret("bookinfo-cert", first) + "---\n" +
		// A generic Secret (cert, key) with its client CA apart, in <name>-cacert.
		fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: mtls-cert, namespace: %s}\ndata: {cert: %s, key: %s}\n---\n", gwNS, b64(mtls.CertPEM), b64(mtls.KeyPEM)) +
		fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: mtls-cert-cacert, namespace: %s}\ndata: {cacert: %s}\n---\n", gwNS, b64(pki.EncodeCerts(clientCA.Cert))) +
		// A Secret no Gateway references: never read.
		fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: unrelated, namespace: %s}\ndata: {tls.crt: %s, tls.key: %s}\n", gwNS, b64(first.CertPEM), b64(first.KeyPEM)))
	e.apply(`apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: ` + gwNS + `}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 9080, targetPort: 9080}]
---
` + endpointSlice(gwNS, "httpbin", "http", 9080, map[string]string{"httpbin-0": gwBackend}) + `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: ` + gwNS + `}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: bookinfo-cert}
  - port: {number: 9443, name: https-mtls, protocol: HTTPS}
    hosts: [m.example.com]
    tls: {mode: MUTUAL, credentialName: mtls-cert}
  - port: {number: 10443, name: https-missing, protocol: HTTPS}
    hosts: [x.example.com]
    tls: {mode: SIMPLE, credentialName: missing-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin, namespace: ` + gwNS + `}
spec:
  hosts: [a.example.com, m.example.com, x.example.com]
  gateways: [ingress]
  http:
  - route:
    - destination: {host: httpbin}
`)
	ads := e.discovery("a")
	e.router(gwNS, "ingress-0", gwIP, ads)
	roots := ca.RootPool()

	// The Secret's certificate, through a real handshake and a routed request.
	testutil.EventuallyWhy(e.t, 10*time.Second, "the gateway serves bookinfo-cert on 8443", func() (bool, string) {
		leaf, err := handshake(8443, "a.example.com", roots, nil)
		return err == nil && leaf.SerialNumber.Cmp(first.TLS.Leaf.SerialNumber) == 0, fmt.Sprint(leaf, err)
	})

	// The key travels inline; the gateway's config dump does not show it.
	if code, dump := httpGet(nil, "http://"+testutil.Admin(gwIP)+"/config_dump"); code != http.StatusOK ||
		!strings.Contains(dump, `"[redacted]"`) || strings.Contains(dump, b64(first.KeyPEM)) {
		t.Errorf("/config_dump: %d, redacted %v, key shown %v", code, strings.Contains(dump, `"[redacted]"`), strings.Contains(dump, b64(first.KeyPEM)))
	}

	// MUTUAL with the -cacert companion: no client certificate, no connection; one the
	// client CA signed is served.
	testutil.EventuallyWhy(e.t, 10*time.Second, "the gateway serves mtls-cert on 9443 to a client with a certificate", func() (bool, string) {
		leaf, err := handshake(9443, "m.example.com", roots, &client.TLS)
		return err == nil && leaf.SerialNumber.Cmp(mtls.TLS.Leaf.SerialNumber) == 0, fmt.Sprint(err)
	})
	if _, err := handshake(9443, "m.example.com", roots, nil); err == nil {
		t.Error("MUTUAL: a client without a certificate was served")
	} else {
		t.Logf("MUTUAL without a client certificate: %v", err)
	}

	// The missing Secret: an Event on the Gateway names the server and the Secret.
	testutil.EventuallyWhy(e.t, 10*time.Second, "an Event about missing-cert", func() (bool, string) {
		var msgs []string
		for _, ev := range e.events(gatewaysGVR, gwNS, "Gateway", "ingress") {
			m, _ := ev.Object["message"].(string)
			if strings.Contains(m, "spec.servers[2].tls.credentialName: Secret "+gwNS+"/missing-cert not found") {
				return true, ""
			}
			msgs = append(msgs, m)
		}
		return false, strings.Join(msgs, " | ")
	})
	if _, err := handshake(10443, "x.example.com", roots, nil); err == nil {
		t.Error("the server whose Secret is missing was served")
	}

	// Only referenced Secrets are read: the control plane logged watching these three.
	for _, want := range []string{"secret=" + gwNS + "/bookinfo-cert", "secret=" + gwNS + "/mtls-cert-cacert", "secret=" + gwNS + "/missing-cert"} {
		if !strings.Contains(e.logs.String(), want) {
			t.Errorf("the control plane did not watch %s", want)
		}
	}
	if strings.Contains(e.logs.String(), "secret="+gwNS+"/unrelated") {
		t.Error("the control plane watched a Secret no Gateway references")
	}

	// Rotation: the Secret updated, new connections get the new certificate; the gateway
	// is the same process.
	renewed := testutil.Issue(t, ca, false, "a.example.com", "renewed.example.com")
	e.apply(tlsSecret("bookinfo-cert", renewed))
	testutil.EventuallyWhy(e.t, 10*time.Second, "new connections get the renewed certificate", func() (bool, string) {
		leaf, err := handshake(8443, "a.example.com", roots, nil)
		return err == nil && slices.Contains(leaf.DNSNames, "renewed.example.com"), fmt.Sprint(err)
	})

	// A broken Secret (a key that is not the certificate's) keeps the renewed certificate
	// serving, and says why on the Gateway.
	other := testutil.Issue(t, ca, false, "other.example.com")
	e.apply(fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: bookinfo-cert, namespace: %s}\ntype: kubernetes.io/tls\ndata: {tls.crt: %s, tls.key: %s}\n",
		gwNS, b64(renewed.CertPEM), b64(other.KeyPEM)))
	testutil.EventuallyWhy(e.t, 10*time.Second, "an Event about the broken bookinfo-cert", func() (bool, string) {
		for _, ev := range e.events(gatewaysGVR, gwNS, "Gateway", "ingress") {
			m, _ := ev.Object["message"].(string)
			if strings.Contains(m, "spec.servers[0].tls.credentialName: Secret "+gwNS+"/bookinfo-cert: the certificate and key do not load") &&
				strings.Contains(m, "the last good certificate keeps serving") {
				return true, ""
			}
		}
		return false, "no such Event"
	})
	if leaf, err := handshake(8443, "a.example.com", roots, nil); err != nil || !slices.Contains(leaf.DNSNames, "renewed.example.com") {
		t.Errorf("with the Secret broken: %v, want the last good (renewed) certificate", err)
	}

	// Deleted: still the last good certificate.
	if err := e.dyn.Resource(gvrs["Secret"]).Namespace(gwNS).Delete(e.ctx, "bookinfo-cert", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	testutil.EventuallyWhy(e.t, 10*time.Second, "an Event about the deleted bookinfo-cert", func() (bool, string) {
		for _, ev := range e.events(gatewaysGVR, gwNS, "Gateway", "ingress") {
			m, _ := ev.Object["message"].(string)
			if strings.Contains(m, "Secret "+gwNS+"/bookinfo-cert not found") && strings.Contains(m, "the last good certificate keeps serving") {
				return true, ""
			}
		}
		return false, "no such Event"
	})
	if leaf, err := handshake(8443, "a.example.com", roots, nil); err != nil || !slices.Contains(leaf.DNSNames, "renewed.example.com") {
		t.Errorf("with the Secret deleted: %v, want the last good (renewed) certificate", err)
	}
}
