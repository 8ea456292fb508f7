package xdsclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	adminpb "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	bootstrappb "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	// Types that appear inside accepted resources' Anys, so protojson can render them.
	_ "github.com/cncf/xds/go/udpa/type/v1"
	_ "github.com/cncf/xds/go/xds/type/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/http_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"

	"github.com/lucid-mesh/lucid/internal/contract/redact"
)

// ConfigDump renders Envoy's admin /config_dump JSON (envoy.admin.v3.ConfigDump) of the
// accepted resources, in Envoy's order: bootstrap, clusters, endpoints (only when
// includeEDS), listeners, routes. Resources are sorted by name; the JSON is indented with
// two spaces, as Envoy prints it.
func (c *Client) ConfigDump(includeEDS bool) ([]byte, error) {
	c.mu.Lock()
	dump, err := c.configDumpLocked(includeEDS)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(dump)
	if err != nil {
		return nil, fmt.Errorf("config dump: %w", err)
	}
	// protojson's spacing is deliberately unstable; re-indent for a stable, Envoy-like form.
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("config dump: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// dumpResource is a resource as the dump shows it: inline private keys redacted, as
// Envoy's config dump hides them (a Gateway credential from a Kubernetes Secret arrives
// inline).
func dumpResource(a *anypb.Any) *anypb.Any { return redact.PrivateKeys(a) }

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func (c *Client) configDumpLocked(includeEDS bool) (*adminpb.ConfigDump, error) {
	var msgs []proto.Message
	msgs = append(msgs, &adminpb.BootstrapConfigDump{
		Bootstrap: &bootstrappb.Bootstrap{Node: c.node},
	})
	cds := c.types[ClusterType]
	cd := &adminpb.ClustersConfigDump{VersionInfo: cds.status.Version}
	for _, name := range sortedKeys(cds.entries) {
		e := cds.entries[name]
		cd.DynamicActiveClusters = append(cd.DynamicActiveClusters, &adminpb.ClustersConfigDump_DynamicCluster{
			VersionInfo: e.version, Cluster: dumpResource(e.raw), LastUpdated: ts(e.updated),
		})
	}
	msgs = append(msgs, cd)
	if includeEDS {
		eds := c.types[EndpointType]
		ed := &adminpb.EndpointsConfigDump{}
		for _, name := range sortedKeys(eds.entries) {
			e := eds.entries[name]
			ed.DynamicEndpointConfigs = append(ed.DynamicEndpointConfigs, &adminpb.EndpointsConfigDump_DynamicEndpointConfig{
				VersionInfo: e.version, EndpointConfig: dumpResource(e.raw), LastUpdated: ts(e.updated),
			})
		}
		msgs = append(msgs, ed)
	}
	lds := c.types[ListenerType]
	ld := &adminpb.ListenersConfigDump{VersionInfo: lds.status.Version}
	for _, name := range sortedKeys(lds.entries) {
		e := lds.entries[name]
		ld.DynamicListeners = append(ld.DynamicListeners, &adminpb.ListenersConfigDump_DynamicListener{
			Name: name,
			ActiveState: &adminpb.ListenersConfigDump_DynamicListenerState{
				VersionInfo: e.version, Listener: dumpResource(e.raw), LastUpdated: ts(e.updated),
			},
		})
	}
	msgs = append(msgs, ld)
	rds := c.types[RouteType]
	rd := &adminpb.RoutesConfigDump{}
	for _, name := range sortedKeys(rds.entries) {
		e := rds.entries[name]
		rd.DynamicRouteConfigs = append(rd.DynamicRouteConfigs, &adminpb.RoutesConfigDump_DynamicRouteConfig{
			VersionInfo: e.version, RouteConfig: dumpResource(e.raw), LastUpdated: ts(e.updated),
		})
	}
	msgs = append(msgs, rd)

	dump := &adminpb.ConfigDump{}
	for _, m := range msgs {
		a, err := anypb.New(m)
		if err != nil {
			return nil, fmt.Errorf("config dump: %w", err)
		}
		dump.Configs = append(dump.Configs, a)
	}
	return dump, nil
}
