package xdsclient

import (
	"strings"
	"testing"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	originalsrcpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_src/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// InboundPassthroughCluster's upstream_bind_config (127.0.0.6) is decoded; what the proxy
// cannot honour is NACKed with the field named.
func TestDecodeUpstreamBindConfig(t *testing.T) {
	bind := func(addr string, port uint32) *corepb.BindConfig {
		return &corepb.BindConfig{SourceAddress: &corepb.SocketAddress{Address: addr, PortSpecifier: &corepb.SocketAddress_PortValue{PortValue: port}}}
	}
	c := fxClusterProto()
	c.UpstreamBindConfig = bind("127.0.0.6", 0)
	out, err := DecodeCluster(c)
	if err != nil {
		t.Fatal(err)
	}
	if out.BindAddress.String() != "127.0.0.6" {
		t.Fatalf("bind address %v, want 127.0.0.6", out.BindAddress)
	}
	for name, tc := range map[string]struct {
		b    *corepb.BindConfig
		want string
	}{
		"no source":  {&corepb.BindConfig{}, "upstream_bind_config: source_address is required"},
		"not an IP":  {bind("localhost", 0), `upstream_bind_config.source_address.address: "localhost" is not an IP address`},
		"fixed port": {bind("127.0.0.6", 15001), "port_value: 15001: only 0"},
		"freebind":   {func() *corepb.BindConfig { b := bind("127.0.0.6", 0); b.Freebind = wrapperspb.Bool(true); return b }(), "only source_address is supported"},
	} {
		c := fxClusterProto()
		c.UpstreamBindConfig = tc.b
		if _, err := DecodeCluster(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// istiod's virtualInbound under TPROXY carries envoy.filters.listener.original_src: it is
// accepted (not NACKed as an unknown listener filter) and its mark kept; bind_port, which
// the proxy does not do, is NACKed with the field named.
func TestDecodeOriginalSrc(t *testing.T) {
	withFilter := func(cfg *originalsrcpb.OriginalSrc) *listenerpb.Listener {
		a, err := anypb.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		l := fxListenerProto(t)
		l.ListenerFilters = []*listenerpb.ListenerFilter{{Name: "envoy.filters.listener.original_src", ConfigType: &listenerpb.ListenerFilter_TypedConfig{TypedConfig: a}}}
		return l
	}
	out, err := DecodeListener(withFilter(&originalsrcpb.OriginalSrc{Mark: 1337}))
	if err != nil {
		t.Fatal(err)
	}
	if out.OriginalSrcMark != 1337 {
		t.Fatalf("original_src mark %d, want 1337", out.OriginalSrcMark)
	}
	_, err = DecodeListener(withFilter(&originalsrcpb.OriginalSrc{Mark: 1337, BindPort: true}))
	want := "listener_filters[0] (envoy.filters.listener.original_src).bind_port: only false (any port) is supported"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("bind_port: %v, want %q", err, want)
	}
}
