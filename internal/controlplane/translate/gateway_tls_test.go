package translate

import (
	"testing"

	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// A Gateway credentialName is the credential of the gateway's own namespace, sent inline;
// MUTUAL gets its CA as the trusted CA; a MUTUAL server whose credential has no CA, or a
// credential the namespace does not have, gets no filter chain.
func TestGatewayCredentialInline(t *testing.T) {
	objs := loadObjects(t, "gw.yaml", []byte(`apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: gw, namespace: istio-system, annotations: {lucid.dev/proxy: router}}
spec: {address: 127.0.0.1, labels: {istio: ingressgateway}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: a-cert}
  - port: {number: 9443, name: https-m, protocol: HTTPS}
    hosts: [m.example.com]
    tls: {mode: MUTUAL, credentialName: m-cert}
  - port: {number: 10443, name: https-noca, protocol: HTTPS}
    hosts: [n.example.com]
    tls: {mode: MUTUAL, credentialName: a-cert}
  - port: {number: 11443, name: https-elsewhere, protocol: HTTPS}
    hosts: [e.example.com]
    tls: {mode: SIMPLE, credentialName: elsewhere-cert}
`))
	for _, c := range []*model.Credential{
		{Namespace: "istio-system", Name: "a-cert", Cert: []byte("a cert"), Key: []byte("a key")},
		{Namespace: "istio-system", Name: "m-cert", Cert: []byte("m cert"), Key: []byte("m key"), CA: []byte("m ca")},
		{Namespace: "default", Name: "elsewhere-cert", Cert: []byte("e cert"), Key: []byte("e key")},
	} {
		objs = append(objs, &config.Object{Kind: config.KindSecret, Namespace: c.Namespace, Name: c.Name, Generation: c.Name, Kube: c.Secret()})
	}
	m, _ := model.Build(objs, nil)
	res := Generate(m, m.ResolveProxy(proxy(t, "router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local")))
	tlsOf := func(listener string) *tlspb.DownstreamTlsContext {
		t.Helper()
		var l *listenerpb.Listener
		for _, msg := range res.Listeners {
			if x := msg.(*listenerpb.Listener); x.GetName() == listener {
				l = x
			}
		}
		for _, fc := range l.GetFilterChains() {
			if ts := fc.GetTransportSocket(); ts != nil {
				var d tlspb.DownstreamTlsContext
				if err := ts.GetTypedConfig().UnmarshalTo(&d); err != nil {
					t.Fatal(err)
				}
				return &d
			}
		}
		return nil
	}
	a := tlsOf("0.0.0.0_8443")
	if c := a.GetCommonTlsContext().GetTlsCertificates(); len(c) != 1 || string(c[0].GetCertificateChain().GetInlineBytes()) != "a cert" ||
		string(c[0].GetPrivateKey().GetInlineBytes()) != "a key" || a.GetCommonTlsContext().GetValidationContext() != nil {
		t.Errorf("SIMPLE a-cert: %v", a)
	}
	mt := tlsOf("0.0.0.0_9443")
	if string(mt.GetCommonTlsContext().GetValidationContext().GetTrustedCa().GetInlineBytes()) != "m ca" || !mt.GetRequireClientCertificate().GetValue() {
		t.Errorf("MUTUAL m-cert: %v", mt)
	}
	if d := tlsOf("0.0.0.0_10443"); d != nil {
		t.Errorf("MUTUAL with a credential without a CA got a chain: %v", d)
	}
	if d := tlsOf("0.0.0.0_11443"); d != nil {
		t.Errorf("a credential of another namespace was served: %v", d)
	}
}
