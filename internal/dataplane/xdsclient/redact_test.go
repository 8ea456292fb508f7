package xdsclient

import (
	"bytes"
	"testing"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/lucid-mesh/lucid/internal/contract/redact"
)

// The config dump (dumpResource) shows resources through redact.PrivateKeys, as Envoy's
// hides private keys. The test lives here because only the data plane and the control
// plane may import Envoy's protos.

func listenerWithKey(t *testing.T, key *corepb.DataSource) *anypb.Any {
	t.Helper()
	tc, err := anypb.New(&tlspb.DownstreamTlsContext{CommonTlsContext: &tlspb.CommonTlsContext{
		TlsCertificates: []*tlspb.TlsCertificate{{
			CertificateChain: &corepb.DataSource{Specifier: &corepb.DataSource_InlineBytes{InlineBytes: []byte("-----BEGIN CERTIFICATE-----")}},
			PrivateKey:       key,
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	l := &listenerpb.Listener{Name: "0.0.0.0_8443", FilterChains: []*listenerpb.FilterChain{{
		TransportSocket: &corepb.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corepb.TransportSocket_TypedConfig{TypedConfig: tc}},
	}}}
	a, err := anypb.New(l)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A listener's inline private key (a Gateway credential from a Secret) is redacted in
// what a dump prints; the certificate stays, the resource given is not changed, and a
// key in a file is left as it is.
func TestConfigDumpRedactsPrivateKeys(t *testing.T) {
	secret := []byte("-----BEGIN EC PRIVATE KEY-----secret")
	in := listenerWithKey(t, &corepb.DataSource{Specifier: &corepb.DataSource_InlineBytes{InlineBytes: secret}})
	before := proto.Clone(in)
	out := dumpResource(in)
	js, err := protojson.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(js, []byte("secret")) || bytes.Contains(js, []byte("c2VjcmV0")) {
		t.Errorf("the dump shows the key: %s", js)
	}
	if !bytes.Contains(js, []byte(redact.Redacted)) || !bytes.Contains(js, []byte("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t")) {
		t.Errorf("want the key redacted and the certificate kept: %s", js)
	}
	if !proto.Equal(in, before) {
		t.Error("the dump changed the resource it was given")
	}

	file := listenerWithKey(t, &corepb.DataSource{Specifier: &corepb.DataSource_Filename{Filename: "/etc/certs/key.pem"}})
	if got := dumpResource(file); got != file {
		t.Error("a key given as a file name was rewritten")
	}
}
