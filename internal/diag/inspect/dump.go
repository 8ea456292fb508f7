package inspect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	adminpb "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/xdsclient"
)

// Dump is one Envoy ConfigDump: what a sidecar applied (/config_dump) or what the control
// plane would send it (/debug/config_dump), decoded.
type Dump struct {
	Node *corepb.Node // from the bootstrap dump; nil when absent

	Listeners []Entry[*listenerpb.Listener]
	Routes    []Entry[*routepb.RouteConfiguration]
	Clusters  []Entry[*clusterpb.Cluster]
	// Endpoints is nil when the dump has no EndpointsConfigDump (no ?include_eds).
	Endpoints []Entry[*endpointpb.ClusterLoadAssignment]
	HasEDS    bool

	// Versions by short type: "LDS", "RDS", "CDS", "EDS" (the newest resource version).
	Versions map[string]string

	// Secrets are the SDS secrets (secrets.go); HasSecrets says the dump has the section.
	Secrets    []Secret
	HasSecrets bool
}

// Entry is one resource of a dump with its version and when it was last updated.
type Entry[T proto.Message] struct {
	Name        string
	Version     string
	LastUpdated time.Time // zero when the dump does not say
	Resource    T
}

// ParseConfigDump decodes Envoy's /config_dump JSON (envoy.admin.v3.ConfigDump). Resource
// types it does not know are an error: the sidecar's own dump only holds types xdsclient
// accepts.
func ParseConfigDump(b []byte) (*Dump, error) {
	var cd adminpb.ConfigDump
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &cd); err != nil {
		return nil, fmt.Errorf("inspect: config dump: %w", err)
	}
	d := &Dump{Versions: map[string]string{}}
	var errs []error
	for _, a := range cd.GetConfigs() {
		m, err := a.UnmarshalNew()
		if err != nil {
			errs = append(errs, fmt.Errorf("config dump section %s: %w", a.GetTypeUrl(), err))
			continue
		}
		switch x := m.(type) {
		case *adminpb.BootstrapConfigDump:
			d.Node = x.GetBootstrap().GetNode()
		case *adminpb.ClustersConfigDump:
			for _, c := range x.GetDynamicActiveClusters() {
				addEntry(&d.Clusters, c.GetCluster(), c.GetVersionInfo(), c.GetLastUpdated(), &errs)
			}
			for _, c := range x.GetStaticClusters() {
				addEntry(&d.Clusters, c.GetCluster(), "", c.GetLastUpdated(), &errs)
			}
		case *adminpb.ListenersConfigDump:
			for _, l := range x.GetDynamicListeners() {
				st := l.GetActiveState()
				addEntry(&d.Listeners, st.GetListener(), st.GetVersionInfo(), st.GetLastUpdated(), &errs)
			}
			for _, l := range x.GetStaticListeners() {
				addEntry(&d.Listeners, l.GetListener(), "", l.GetLastUpdated(), &errs)
			}
		case *adminpb.RoutesConfigDump:
			for _, r := range x.GetDynamicRouteConfigs() {
				addEntry(&d.Routes, r.GetRouteConfig(), r.GetVersionInfo(), r.GetLastUpdated(), &errs)
			}
			for _, r := range x.GetStaticRouteConfigs() {
				addEntry(&d.Routes, r.GetRouteConfig(), "", r.GetLastUpdated(), &errs)
			}
		case *adminpb.SecretsConfigDump:
			d.addSecrets(x, &errs)
		case *adminpb.EndpointsConfigDump:
			d.HasEDS = true
			for _, e := range x.GetDynamicEndpointConfigs() {
				addEntry(&d.Endpoints, e.GetEndpointConfig(), e.GetVersionInfo(), e.GetLastUpdated(), &errs)
			}
			for _, e := range x.GetStaticEndpointConfigs() {
				addEntry(&d.Endpoints, e.GetEndpointConfig(), "", e.GetLastUpdated(), &errs)
			}
		}
	}
	d.Versions[contract.LDS] = newestVersion(d.Listeners)
	d.Versions[contract.RDS] = newestVersion(d.Routes)
	d.Versions[contract.CDS] = newestVersion(d.Clusters)
	d.Versions[contract.EDS] = newestVersion(d.Endpoints)
	return d, errors.Join(errs...)
}

type named interface {
	proto.Message
	GetName() string
}

func addEntry[T proto.Message](dst *[]Entry[T], a *anypb.Any, version string, ts *timestamppb.Timestamp, errs *[]error) {
	if a == nil {
		return
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s: %w", a.GetTypeUrl(), err))
		return
	}
	t, ok := m.(T)
	if !ok {
		*errs = append(*errs, fmt.Errorf("unexpected %s in the dump", a.GetTypeUrl()))
		return
	}
	e := Entry[T]{Version: version, Resource: t}
	switch n := m.(type) {
	case named:
		e.Name = n.GetName()
	case *endpointpb.ClusterLoadAssignment:
		e.Name = n.GetClusterName()
	}
	if ts != nil {
		e.LastUpdated = ts.AsTime()
	}
	*dst = append(*dst, e)
	slices.SortStableFunc(*dst, func(a, b Entry[T]) int { return strings.Compare(a.Name, b.Name) })
}

func newestVersion[T proto.Message](es []Entry[T]) string {
	v := ""
	var at time.Time
	for _, e := range es {
		if e.Version != "" && (v == "" || e.LastUpdated.After(at)) {
			v, at = e.Version, e.LastUpdated
		}
	}
	return v
}

// Snapshot decodes the dump into the data plane's resource types with the sidecar's own
// decoders. A resource that does not decode is reported in the error and left out.
func (d *Dump) Snapshot() (*resource.Snapshot, error) {
	s := &resource.Snapshot{
		Listeners: map[string]*resource.Listener{},
		Routes:    map[string]*resource.RouteConfig{},
		Clusters:  map[string]*resource.Cluster{},
		Endpoints: map[string]*resource.Endpoints{},
		Versions: map[string]string{
			xdsclient.ListenerType: d.Versions[contract.LDS], xdsclient.RouteType: d.Versions[contract.RDS],
			xdsclient.ClusterType: d.Versions[contract.CDS], xdsclient.EndpointType: d.Versions[contract.EDS],
		},
	}
	var errs []error
	for _, e := range d.Listeners {
		l, err := xdsclient.DecodeListener(e.Resource)
		if err != nil {
			errs = append(errs, fmt.Errorf("listener %q: %w", e.Name, err))
			continue
		}
		s.Listeners[l.Name] = l
	}
	for _, e := range d.Routes {
		rc, err := xdsclient.DecodeRouteConfig(e.Resource)
		if err != nil {
			errs = append(errs, fmt.Errorf("route config %q: %w", e.Name, err))
			continue
		}
		s.Routes[rc.Name] = rc
	}
	for _, e := range d.Clusters {
		c, err := xdsclient.DecodeCluster(e.Resource)
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %q: %w", e.Name, err))
			continue
		}
		s.Clusters[c.Name] = c
	}
	for _, e := range d.Endpoints {
		ep, err := xdsclient.DecodeEndpoints(e.Resource)
		if err != nil {
			errs = append(errs, fmt.Errorf("endpoints %q: %w", e.Name, err))
			continue
		}
		s.Endpoints[ep.ClusterName] = ep
	}
	return s, errors.Join(errs...)
}

// ResourceJSON renders one resource as stable, indented JSON (Envoy's field names), for
// diffs and -o json.
func ResourceJSON(m proto.Message) ([]byte, error) {
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	return out.Bytes(), nil
}
