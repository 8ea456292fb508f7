package ads

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	adminpb "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/contract/redact"
)

// DebugHandler serves the control plane's debug endpoints:
//
//	/debug/syncz                      JSON array of SyncStatus
//	/debug/config_dump?proxyID=ID     the newest configuration generated for that proxy, as an Envoy
//	                                  admin ConfigDump (protojson): clusters, listeners,
//	                                  routes and endpoints, each with its version
//
// Mount it on the debug port's mux with mux.Handle("/debug/", s.DebugHandler()).
func (s *Server) DebugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+contract.SyncPath, s.serveSyncz)
	mux.HandleFunc("GET /debug/config_dump", s.serveConfigDump)
	return mux
}

func (s *Server) serveSyncz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.SyncStatus()) // a write error means the client went away
}

func (s *Server) serveConfigDump(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("proxyID")
	if id == "" {
		http.Error(w, "missing proxyID: /debug/config_dump?proxyID=<node id>", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	var cur map[string]view
	var versions map[string]string
	if n := s.nodes[id]; n != nil && !s.expired(n, s.now()) {
		cur, versions = n.cur, n.versions
	}
	s.mu.Unlock()
	if cur == nil {
		http.Error(w, fmt.Sprintf("proxy %q has no configuration (not connected, or forgotten)", id), http.StatusNotFound)
		return
	}
	dump, err := configDump(cur, versions)
	if err != nil {
		http.Error(w, fmt.Sprintf("config dump of %q: %v", id, err), http.StatusInternalServerError)
		return
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}.Marshal(dump)
	if err != nil {
		http.Error(w, fmt.Sprintf("config dump of %q: %v", id, err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// configDump renders a proxy's resources as Envoy's admin ConfigDump (field names in
// snake_case, as Envoy's /config_dump prints them), in Envoy's order (clusters, listeners,
// routes) with endpoints last, resources sorted by name.
func configDump(cur map[string]view, versions map[string]string) (*adminpb.ConfigDump, error) {
	each := func(typeURL string, add func(version, name string, res *anypb.Any)) {
		var rs []*resource
		cur[typeURL].each(func(r *resource) { rs = append(rs, r) })
		slices.SortFunc(rs, func(a, b *resource) int { return strings.Compare(a.name, b.name) })
		for _, r := range rs {
			add(versions[typeURL], r.name, redact.PrivateKeys(r.any)) // as Envoy's dump: no private key
		}
	}
	version := func(typeURL string) string { return versions[typeURL] }

	clusters := &adminpb.ClustersConfigDump{VersionInfo: version(contract.ClusterTypeURL)}
	each(contract.ClusterTypeURL, func(v, _ string, a *anypb.Any) {
		clusters.DynamicActiveClusters = append(clusters.DynamicActiveClusters,
			&adminpb.ClustersConfigDump_DynamicCluster{VersionInfo: v, Cluster: a})
	})
	listeners := &adminpb.ListenersConfigDump{VersionInfo: version(contract.ListenerTypeURL)}
	each(contract.ListenerTypeURL, func(v, name string, a *anypb.Any) {
		listeners.DynamicListeners = append(listeners.DynamicListeners, &adminpb.ListenersConfigDump_DynamicListener{
			Name:        name,
			ActiveState: &adminpb.ListenersConfigDump_DynamicListenerState{VersionInfo: v, Listener: a},
		})
	})
	routes := &adminpb.RoutesConfigDump{}
	each(contract.RouteTypeURL, func(v, _ string, a *anypb.Any) {
		routes.DynamicRouteConfigs = append(routes.DynamicRouteConfigs,
			&adminpb.RoutesConfigDump_DynamicRouteConfig{VersionInfo: v, RouteConfig: a})
	})
	endpoints := &adminpb.EndpointsConfigDump{}
	each(contract.EndpointTypeURL, func(v, _ string, a *anypb.Any) {
		endpoints.DynamicEndpointConfigs = append(endpoints.DynamicEndpointConfigs,
			&adminpb.EndpointsConfigDump_DynamicEndpointConfig{VersionInfo: v, EndpointConfig: a})
	})
	dump := &adminpb.ConfigDump{}
	for _, m := range []proto.Message{clusters, listeners, routes, endpoints} {
		a, err := anypb.New(m)
		if err != nil {
			return nil, fmt.Errorf("wrap %T: %w", m, err)
		}
		dump.Configs = append(dump.Configs, a)
	}
	return dump, nil
}
