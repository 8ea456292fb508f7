package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Config is a proxy's configuration as `lucid proxy-config` lists it, read from its admin
// API's /config_dump?include_eds (Envoy's ConfigDump JSON).
type Config struct {
	Listeners []ListenerRow `json:"listeners"`
	Routes    []RouteRow    `json:"routes"`
	Clusters  []ClusterRow  `json:"clusters"`
	Endpoints []EndpointRow `json:"endpoints"`
}

// ListenerRow is one listener.
type ListenerRow struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Chains  int    `json:"chains"`
}

// RouteRow is one route of one virtual host.
type RouteRow struct {
	RouteConfig string   `json:"route_config"`
	VirtualHost string   `json:"virtual_host"`
	Domains     []string `json:"domains"`
	Match       string   `json:"match"`
	Destination string   `json:"destination"`
}

// ClusterRow is one cluster.
type ClusterRow struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// EndpointRow is one endpoint of one cluster.
type EndpointRow struct {
	Cluster string `json:"cluster"`
	Address string `json:"address"`
	Health  string `json:"health"`
}

// The parts of Envoy's ConfigDump JSON (proto field names) the tables need.
type (
	dumpJSON struct {
		Configs []json.RawMessage `json:"configs"`
	}
	typedJSON struct {
		Type string `json:"@type"`
	}
	socketJSON struct {
		SocketAddress struct {
			Address   string `json:"address"`
			PortValue uint32 `json:"port_value"`
		} `json:"socket_address"`
	}
	listenerJSON struct {
		Name         string            `json:"name"`
		Address      socketJSON        `json:"address"`
		FilterChains []json.RawMessage `json:"filter_chains"`
	}
	listenersDumpJSON struct {
		Static []struct {
			Listener listenerJSON `json:"listener"`
		} `json:"static_listeners"`
		Dynamic []struct {
			Active struct {
				Listener listenerJSON `json:"listener"`
			} `json:"active_state"`
		} `json:"dynamic_listeners"`
	}
	routeConfigJSON struct {
		Name         string `json:"name"`
		VirtualHosts []struct {
			Name    string   `json:"name"`
			Domains []string `json:"domains"`
			Routes  []struct {
				Match map[string]any `json:"match"`
				Route *struct {
					Cluster          string `json:"cluster"`
					WeightedClusters *struct {
						Clusters []struct {
							Name   string `json:"name"`
							Weight uint32 `json:"weight"`
						} `json:"clusters"`
					} `json:"weighted_clusters"`
				} `json:"route"`
				Redirect     map[string]any `json:"redirect"`
				DirectResp   map[string]any `json:"direct_response"`
				NonForwardng map[string]any `json:"non_forwarding_action"`
			} `json:"routes"`
		} `json:"virtual_hosts"`
	}
	routesDumpJSON struct {
		Static []struct {
			RouteConfig routeConfigJSON `json:"route_config"`
		} `json:"static_route_configs"`
		Dynamic []struct {
			RouteConfig routeConfigJSON `json:"route_config"`
		} `json:"dynamic_route_configs"`
	}
	clusterJSON struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	clustersDumpJSON struct {
		Static []struct {
			Cluster clusterJSON `json:"cluster"`
		} `json:"static_clusters"`
		Dynamic []struct {
			Cluster clusterJSON `json:"cluster"`
		} `json:"dynamic_active_clusters"`
	}
	claJSON struct {
		ClusterName string `json:"cluster_name"`
		Endpoints   []struct {
			LbEndpoints []struct {
				Endpoint struct {
					Address socketJSON `json:"address"`
				} `json:"endpoint"`
				HealthStatus string `json:"health_status"`
			} `json:"lb_endpoints"`
		} `json:"endpoints"`
	}
	endpointsDumpJSON struct {
		Static []struct {
			EndpointConfig claJSON `json:"endpoint_config"`
		} `json:"static_endpoint_configs"`
		Dynamic []struct {
			EndpointConfig claJSON `json:"endpoint_config"`
		} `json:"dynamic_endpoint_configs"`
	}
)

func (d *Dashboard) config(ctx context.Context, p proxy) (*Config, error) {
	code, body, err := d.get(ctx, d.adminAddr(p), "/config_dump?include_eds")
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", p.Name, err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("config of %s: admin API answered %d: %s", p.Name, code, strings.TrimSpace(string(body)))
	}
	return parseConfigDump(body)
}

// parseConfigDump turns a ConfigDump into proxy-config's tables.
func parseConfigDump(b []byte) (*Config, error) {
	var dump dumpJSON
	if err := json.Unmarshal(b, &dump); err != nil {
		return nil, fmt.Errorf("config dump: %w", err)
	}
	c := &Config{Listeners: []ListenerRow{}, Routes: []RouteRow{}, Clusters: []ClusterRow{}, Endpoints: []EndpointRow{}}
	for i, raw := range dump.Configs {
		var t typedJSON
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, fmt.Errorf("config dump: configs[%d]: %w", i, err)
		}
		var err error
		switch t.Type[strings.LastIndexByte(t.Type, '.')+1:] {
		case "ListenersConfigDump":
			err = c.addListeners(raw)
		case "RoutesConfigDump":
			err = c.addRoutes(raw)
		case "ClustersConfigDump":
			err = c.addClusters(raw)
		case "EndpointsConfigDump":
			err = c.addEndpoints(raw)
		}
		if err != nil {
			return nil, fmt.Errorf("config dump: configs[%d] (%s): %w", i, t.Type, err)
		}
	}
	return c, nil
}

func (s socketJSON) String() string {
	if s.SocketAddress.Address == "" {
		return ""
	}
	return net.JoinHostPort(s.SocketAddress.Address, strconv.Itoa(int(s.SocketAddress.PortValue)))
}

func (c *Config) addListeners(raw json.RawMessage) error {
	var l listenersDumpJSON
	if err := json.Unmarshal(raw, &l); err != nil {
		return err
	}
	add := func(x listenerJSON) {
		c.Listeners = append(c.Listeners, ListenerRow{Name: x.Name, Address: x.Address.String(), Chains: len(x.FilterChains)})
	}
	for _, x := range l.Static {
		add(x.Listener)
	}
	for _, x := range l.Dynamic {
		add(x.Active.Listener)
	}
	slices.SortFunc(c.Listeners, func(a, b ListenerRow) int { return strings.Compare(a.Name, b.Name) })
	return nil
}

func (c *Config) addRoutes(raw json.RawMessage) error {
	var r routesDumpJSON
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	add := func(rc routeConfigJSON) {
		for _, vh := range rc.VirtualHosts {
			for _, rt := range vh.Routes {
				row := RouteRow{RouteConfig: rc.Name, VirtualHost: vh.Name, Domains: vh.Domains, Match: matchString(rt.Match)}
				switch {
				case rt.Route != nil && rt.Route.WeightedClusters != nil:
					var parts []string
					for _, wc := range rt.Route.WeightedClusters.Clusters {
						parts = append(parts, fmt.Sprintf("%s %d%%", wc.Name, wc.Weight))
					}
					row.Destination = strings.Join(parts, ", ")
				case rt.Route != nil:
					row.Destination = rt.Route.Cluster
				case rt.Redirect != nil:
					row.Destination = "redirect"
				case rt.DirectResp != nil:
					row.Destination = "direct response"
				default:
					row.Destination = "-"
				}
				c.Routes = append(c.Routes, row)
			}
		}
	}
	for _, x := range r.Static {
		add(x.RouteConfig)
	}
	for _, x := range r.Dynamic {
		add(x.RouteConfig)
	}
	return nil
}

// matchString renders a route match as proxy-config does: "/v3*" for a prefix, the path
// for an exact match, the regex otherwise.
func matchString(m map[string]any) string {
	switch {
	case m["prefix"] != nil:
		return fmt.Sprint(m["prefix"]) + "*"
	case m["path"] != nil:
		return fmt.Sprint(m["path"])
	case m["path_separated_prefix"] != nil:
		return fmt.Sprint(m["path_separated_prefix"]) + "/*"
	case m["safe_regex"] != nil:
		if r, ok := m["safe_regex"].(map[string]any); ok {
			return fmt.Sprint(r["regex"])
		}
	}
	return "*"
}

func (c *Config) addClusters(raw json.RawMessage) error {
	var cl clustersDumpJSON
	if err := json.Unmarshal(raw, &cl); err != nil {
		return err
	}
	add := func(x clusterJSON) {
		if x.Type == "" {
			x.Type = "STATIC" // the enum's zero value, which protojson leaves out
		}
		c.Clusters = append(c.Clusters, ClusterRow(x))
	}
	for _, x := range cl.Static {
		add(x.Cluster)
	}
	for _, x := range cl.Dynamic {
		add(x.Cluster)
	}
	slices.SortFunc(c.Clusters, func(a, b ClusterRow) int { return strings.Compare(a.Name, b.Name) })
	return nil
}

func (c *Config) addEndpoints(raw json.RawMessage) error {
	var e endpointsDumpJSON
	if err := json.Unmarshal(raw, &e); err != nil {
		return err
	}
	add := func(cla claJSON) {
		for _, le := range cla.Endpoints {
			for _, lb := range le.LbEndpoints {
				h := lb.HealthStatus
				if h == "" {
					h = "HEALTHY"
				}
				c.Endpoints = append(c.Endpoints, EndpointRow{Cluster: cla.ClusterName, Address: lb.Endpoint.Address.String(), Health: h})
			}
		}
	}
	for _, x := range e.Static {
		add(x.EndpointConfig)
	}
	for _, x := range e.Dynamic {
		add(x.EndpointConfig)
	}
	slices.SortFunc(c.Endpoints, func(a, b EndpointRow) int {
		return strings.Compare(a.Cluster+" "+a.Address, b.Cluster+" "+b.Address)
	})
	return nil
}
