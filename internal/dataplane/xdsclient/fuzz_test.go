package xdsclient

import (
	"testing"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
)

func seed(f *testing.F, m proto.Message) {
	f.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
}

func FuzzDecodeRouteConfig(f *testing.F) {
	seed(f, fxRouteProto("/api/.*"))
	seed(f, fxRouteProto("("))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m routepb.RouteConfiguration
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		_, _ = DecodeRouteConfig(&m)
	})
}

func FuzzDecodeListener(f *testing.F) {
	seed(f, fxListenerProto(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m listenerpb.Listener
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		_, _ = DecodeListener(&m)
	})
}

func FuzzDecodeCluster(f *testing.F) {
	seed(f, fxClusterProto())
	seed(f, fxAutoMTLSCluster(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m clusterpb.Cluster
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		_, _ = DecodeCluster(&m)
	})
}

func FuzzDecodeEndpoints(f *testing.F) {
	seed(f, fxEndpointsProto("127.0.0.1", "127.0.0.2"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m endpointpb.ClusterLoadAssignment
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		_, _ = DecodeEndpoints(&m)
	})
}
