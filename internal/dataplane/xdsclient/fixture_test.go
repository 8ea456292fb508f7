package xdsclient

import (
	"testing"
	"time"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Names used by the fixtures, as Istio writes them.
const (
	fxListener = "0.0.0.0_9080"
	fxRoute    = "9080"
	fxCluster  = "outbound|9080||reviews.default.svc.cluster.local"
	fxVHost    = "reviews.default.svc.cluster.local:9080"
)

func mustAny(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func socketAddr(ip string, port uint32) *corepb.Address {
	return &corepb.Address{Address: &corepb.Address_SocketAddress{SocketAddress: &corepb.SocketAddress{
		Address: ip, PortSpecifier: &corepb.SocketAddress_PortValue{PortValue: port},
	}}}
}

// hcmAny is an HTTP connection manager using RDS routeName.
func hcmAny(t testing.TB, routeName string) *anypb.Any {
	t.Helper()
	return mustAny(t, &hcmpb.HttpConnectionManager{
		StatPrefix: "outbound_0.0.0.0_9080",
		RouteSpecifier: &hcmpb.HttpConnectionManager_Rds{Rds: &hcmpb.Rds{
			ConfigSource:    &corepb.ConfigSource{ConfigSourceSpecifier: &corepb.ConfigSource_Ads{Ads: &corepb.AggregatedConfigSource{}}},
			RouteConfigName: routeName,
		}},
		StreamIdleTimeout: durationpb.New(0),
		HttpFilters: []*hcmpb.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerpb.Router{})},
		}},
	})
}

func fxListenerProto(t testing.TB) *listenerpb.Listener {
	t.Helper()
	return &listenerpb.Listener{
		Name:             fxListener,
		Address:          socketAddr("0.0.0.0", 9080),
		BindToPort:       wrapperspb.Bool(false),
		TrafficDirection: corepb.TrafficDirection_OUTBOUND,
		FilterChains: []*listenerpb.FilterChain{{
			Filters: []*listenerpb.Filter{{
				Name:       "envoy.filters.network.http_connection_manager",
				ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: hcmAny(t, fxRoute)},
			}},
		}},
	}
}

// fxRouteProto routes prefix "/" to fxCluster, and pathRegex (when set) first.
func fxRouteProto(pathRegex string) *routepb.RouteConfiguration {
	routes := []*routepb.Route{}
	if pathRegex != "" {
		routes = append(routes, &routepb.Route{
			Name: "regex",
			Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_SafeRegex{
				SafeRegex: &matcherpb.RegexMatcher{Regex: pathRegex},
			}},
			Action: &routepb.Route_Route{Route: &routepb.RouteAction{ClusterSpecifier: &routepb.RouteAction_Cluster{Cluster: fxCluster}}},
		})
	}
	routes = append(routes, &routepb.Route{
		Name:  "default",
		Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routepb.Route_Route{Route: &routepb.RouteAction{
			ClusterSpecifier: &routepb.RouteAction_Cluster{Cluster: fxCluster},
			Timeout:          durationpb.New(0),
		}},
	})
	return &routepb.RouteConfiguration{
		Name: fxRoute,
		VirtualHosts: []*routepb.VirtualHost{{
			Name:    fxVHost,
			Domains: []string{"reviews.default.svc.cluster.local", fxVHost},
			Routes:  routes,
		}},
	}
}

func fxClusterProto() *clusterpb.Cluster {
	return &clusterpb.Cluster{
		Name:                 fxCluster,
		ClusterDiscoveryType: &clusterpb.Cluster_Type{Type: clusterpb.Cluster_EDS},
		EdsClusterConfig: &clusterpb.Cluster_EdsClusterConfig{
			EdsConfig:   &corepb.ConfigSource{ConfigSourceSpecifier: &corepb.ConfigSource_Ads{Ads: &corepb.AggregatedConfigSource{}}},
			ServiceName: fxCluster,
		},
		ConnectTimeout: durationpb.New(10 * time.Second),
		LbPolicy:       clusterpb.Cluster_LEAST_REQUEST,
	}
}

func fxEndpointsProto(ips ...string) *endpointpb.ClusterLoadAssignment {
	cla := &endpointpb.ClusterLoadAssignment{ClusterName: fxCluster}
	lle := &endpointpb.LocalityLbEndpoints{}
	for _, ip := range ips {
		labels, _ := structpb.NewStruct(map[string]any{"app": "reviews", "version": "v1"})
		lle.LbEndpoints = append(lle.LbEndpoints, &endpointpb.LbEndpoint{
			HostIdentifier: &endpointpb.LbEndpoint_Endpoint{Endpoint: &endpointpb.Endpoint{Address: socketAddr(ip, 9080)}},
			HealthStatus:   corepb.HealthStatus_HEALTHY,
			Metadata: &corepb.Metadata{FilterMetadata: map[string]*structpb.Struct{
				"lucid": {Fields: map[string]*structpb.Value{"labels": structpb.NewStructValue(labels)}},
			}},
		})
	}
	cla.Endpoints = []*endpointpb.LocalityLbEndpoints{lle}
	return cla
}
