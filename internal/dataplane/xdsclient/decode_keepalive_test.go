package xdsclient

import (
	"testing"
	"time"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func TestDecodeKeepalive(t *testing.T) {
	c := &clusterpb.Cluster{UpstreamConnectionOptions: &clusterpb.UpstreamConnectionOptions{TcpKeepalive: &corepb.TcpKeepalive{
		KeepaliveProbes: wrapperspb.UInt32(4), KeepaliveTime: wrapperspb.UInt32(30),
	}}}
	var out resource.Cluster
	decodeTCPKeepalive(c, &out)
	if want := (resource.TCPKeepalive{Probes: 4, Time: 30 * time.Second}); out.TCPKeepalive == nil || *out.TCPKeepalive != want {
		t.Fatalf("tcp keepalive = %+v, want %+v", out.TCPKeepalive, want)
	}
	decodeHTTP2Keepalive(&corepb.Http2ProtocolOptions{ConnectionKeepalive: &corepb.KeepaliveSettings{
		Interval: durationpb.New(5 * time.Second), Timeout: durationpb.New(3 * time.Second),
	}}, &out)
	if want := (resource.HTTP2Keepalive{Interval: 5 * time.Second, Timeout: 3 * time.Second}); out.HTTP2Keepalive == nil || *out.HTTP2Keepalive != want {
		t.Fatalf("h2 keepalive = %+v, want %+v", out.HTTP2Keepalive, want)
	}
	var none resource.Cluster
	decodeTCPKeepalive(&clusterpb.Cluster{}, &none)
	decodeHTTP2Keepalive(nil, &none)
	if none.TCPKeepalive != nil || none.HTTP2Keepalive != nil {
		t.Fatal("unset keepalive decoded as set")
	}
}
