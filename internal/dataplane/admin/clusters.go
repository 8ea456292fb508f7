package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// Envoy's circuit-breaker defaults; Istio sets thresholds for the default priority only,
// so the high priority keeps these.
const (
	highMaxConnections     = 1024
	highMaxPendingRequests = 1024
	highMaxRequests        = 1024
	highMaxRetries         = 3
)

// Host counters and gauges in Envoy's order (counters, then gauges).
var (
	hostCounters = []string{"cx_connect_fail", "cx_total", "rq_error", "rq_success", "rq_timeout", "rq_total"}
	hostGauges   = []string{"cx_active", "rq_active"}
)

func (s *server) clusters(w http.ResponseWriter, r *http.Request) {
	if s.o.Clusters == nil {
		unavailable(w, "clusters")
		return
	}
	cs := slices.Clone(s.o.Clusters())
	slices.SortStableFunc(cs, func(a, b ClusterStatus) int { return strings.Compare(a.Name, b.Name) })
	if r.URL.Query().Get("format") == "json" {
		body, err := ClustersJSON(cs)
		if err != nil {
			text(w, http.StatusInternalServerError, err.Error()+"\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
		return
	}
	text(w, http.StatusOK, ClustersText(cs))
}

// ClustersText renders clusters as Envoy's /clusters text: one
// "<cluster>::<key>::<value>" line per fact, hosts' stats sorted by name.
func ClustersText(cs []ClusterStatus) string {
	var b strings.Builder
	line := func(parts ...string) {
		b.WriteString(strings.Join(parts, "::"))
		b.WriteByte('\n')
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	for _, c := range cs {
		line(c.Name, "observability_name", observabilityName(c))
		for _, p := range []struct {
			name                   string
			conns, pending, rq, rt uint64
		}{
			{"default", c.MaxConnections, c.MaxPendingRequests, c.MaxRequests, c.MaxRetries},
			{"high", highMaxConnections, highMaxPendingRequests, highMaxRequests, highMaxRetries},
		} {
			pr := p.name + "_priority"
			line(c.Name, pr, "max_connections", u(p.conns))
			line(c.Name, pr, "max_pending_requests", u(p.pending))
			line(c.Name, pr, "max_requests", u(p.rq))
			line(c.Name, pr, "max_retries", u(p.rt))
		}
		line(c.Name, "added_via_api", strconv.FormatBool(c.AddedViaAPI))
		if c.EDSServiceName != "" {
			line(c.Name, "eds_service_name", c.EDSServiceName)
		}
		for _, h := range c.Hosts {
			names := append(slices.Clone(hostCounters), hostGauges...)
			for k := range h.Stats {
				if !slices.Contains(names, k) {
					names = append(names, k)
				}
			}
			slices.Sort(names)
			for _, n := range names {
				line(c.Name, h.Address, n, u(h.Stats[n]))
			}
			line(c.Name, h.Address, "hostname", h.Hostname)
			line(c.Name, h.Address, "health_flags", healthFlags(h.HealthFlags))
			line(c.Name, h.Address, "weight", u(uint64(h.Weight)))
			line(c.Name, h.Address, "region", h.Region)
			line(c.Name, h.Address, "zone", h.Zone)
			line(c.Name, h.Address, "sub_zone", h.SubZone)
			line(c.Name, h.Address, "canary", "false")
			line(c.Name, h.Address, "priority", u(uint64(h.Priority)))
			line(c.Name, h.Address, "success_rate", "-1")
			line(c.Name, h.Address, "local_origin_success_rate", "-1")
			if i := h.Idle; i != nil {
				line(c.Name, h.Address, "idle_timeout", i.Description)
				limit := "none"
				if i.ReuseLimit >= 0 {
					limit = i.ReuseLimit.String()
				}
				line(c.Name, h.Address, "idle_reuse_limit", limit)
			}
		}
	}
	return b.String()
}

func observabilityName(c ClusterStatus) string {
	if c.ObservabilityName != "" {
		return c.ObservabilityName
	}
	return c.Name
}

// healthFlags is Envoy's healthFlagsToString: "healthy", or the flags concatenated.
func healthFlags(flags []string) string {
	if len(flags) == 0 {
		return "healthy"
	}
	return strings.Join(flags, "")
}

// The envoy.admin.v3.Clusters JSON shape (proto JSON with original field names, zero
// values omitted, uint64 as strings), written with plain structs.
type (
	clustersJSON struct {
		ClusterStatuses []clusterStatusJSON `json:"cluster_statuses"`
	}
	clusterStatusJSON struct {
		Name              string              `json:"name"`
		AddedViaAPI       bool                `json:"added_via_api,omitempty"`
		HostStatuses      []hostStatusJSON    `json:"host_statuses,omitempty"`
		CircuitBreakers   circuitBreakersJSON `json:"circuit_breakers"`
		ObservabilityName string              `json:"observability_name,omitempty"`
		EDSServiceName    string              `json:"eds_service_name,omitempty"`
	}
	circuitBreakersJSON struct {
		Thresholds []thresholdJSON `json:"thresholds"`
	}
	thresholdJSON struct {
		Priority           string `json:"priority,omitempty"`
		MaxConnections     uint64 `json:"max_connections"`
		MaxPendingRequests uint64 `json:"max_pending_requests"`
		MaxRequests        uint64 `json:"max_requests"`
		MaxRetries         uint64 `json:"max_retries"`
	}
	hostStatusJSON struct {
		Address      addressJSON    `json:"address"`
		Stats        []simpleMetric `json:"stats,omitempty"`
		HealthStatus hostHealthJSON `json:"health_status"`
		Weight       uint32         `json:"weight,omitempty"`
		Hostname     string         `json:"hostname,omitempty"`
		Priority     uint32         `json:"priority,omitempty"`
		Locality     localityJSON   `json:"locality"`
	}
	simpleMetric struct {
		Type  string `json:"type,omitempty"`
		Value string `json:"value,omitempty"`
		Name  string `json:"name"`
	}
	hostHealthJSON struct {
		FailedActiveHealthCheck    bool   `json:"failed_active_health_check,omitempty"`
		FailedOutlierCheck         bool   `json:"failed_outlier_check,omitempty"`
		FailedActiveDegradedCheck  bool   `json:"failed_active_degraded_check,omitempty"`
		PendingDynamicRemoval      bool   `json:"pending_dynamic_removal,omitempty"`
		PendingActiveHC            bool   `json:"pending_active_hc,omitempty"`
		ExcludedViaImmediateHCFail bool   `json:"excluded_via_immediate_hc_fail,omitempty"`
		ActiveHCTimeout            bool   `json:"active_hc_timeout,omitempty"`
		EDSHealthStatus            string `json:"eds_health_status,omitempty"`
	}
	localityJSON struct {
		Region  string `json:"region,omitempty"`
		Zone    string `json:"zone,omitempty"`
		SubZone string `json:"sub_zone,omitempty"`
	}
	addressJSON struct {
		SocketAddress socketAddressJSON `json:"socket_address"`
	}
	socketAddressJSON struct {
		Address   string `json:"address"`
		PortValue uint32 `json:"port_value,omitempty"`
	}
)

// idleStats are a host's keep-alive idle timeout as HostStatus stats (values in ms; zero
// values omitted as Envoy omits them; no idle_reuse_limit_ms when there is no limit).
func idleStats(i *IdleTimeout) []simpleMetric {
	v := func(n int64) string {
		if n <= 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	out := []simpleMetric{
		{Type: "GAUGE", Name: "idle_timeout_ms", Value: v(i.Timeout.Milliseconds())},
		{Name: "idle_timeout_closes", Value: v(int64(i.Closes))},
	}
	if i.ReuseLimit >= 0 {
		out = append(out, simpleMetric{Type: "GAUGE", Name: "idle_reuse_limit_ms", Value: v(i.ReuseLimit.Milliseconds())})
	}
	return out
}

func toAddress(hostport string) addressJSON {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return addressJSON{SocketAddress: socketAddressJSON{Address: hostport}}
	}
	p, _ := strconv.ParseUint(port, 10, 16)
	return addressJSON{SocketAddress: socketAddressJSON{Address: host, PortValue: uint32(p)}}
}

// ClustersJSON renders clusters as Envoy's /clusters?format=json (envoy.admin.v3.Clusters),
// pretty-printed like Envoy. Only fields of Envoy's proto appear (HostStatus.Labels does
// not), so strict proto readers such as istioctl accept it.
func ClustersJSON(cs []ClusterStatus) ([]byte, error) {
	out := clustersJSON{ClusterStatuses: make([]clusterStatusJSON, 0, len(cs))}
	for _, c := range cs {
		cj := clusterStatusJSON{
			Name:              c.Name,
			AddedViaAPI:       c.AddedViaAPI,
			ObservabilityName: observabilityName(c),
			EDSServiceName:    c.EDSServiceName,
			CircuitBreakers: circuitBreakersJSON{Thresholds: []thresholdJSON{
				{MaxConnections: c.MaxConnections, MaxPendingRequests: c.MaxPendingRequests, MaxRequests: c.MaxRequests, MaxRetries: c.MaxRetries},
				{Priority: "HIGH", MaxConnections: highMaxConnections, MaxPendingRequests: highMaxPendingRequests, MaxRequests: highMaxRequests, MaxRetries: highMaxRetries},
			}},
		}
		for _, h := range c.Hosts {
			hj := hostStatusJSON{
				Address:  toAddress(h.Address),
				Weight:   h.Weight,
				Hostname: h.Hostname,
				Priority: h.Priority,
				Locality: localityJSON{Region: h.Region, Zone: h.Zone, SubZone: h.SubZone},
				HealthStatus: hostHealthJSON{
					EDSHealthStatus: h.EDSHealth,
				},
			}
			for _, f := range h.HealthFlags {
				switch f {
				case contract.FailedActiveHC:
					hj.HealthStatus.FailedActiveHealthCheck = true
				case contract.FailedOutlierCheck:
					hj.HealthStatus.FailedOutlierCheck = true
				case contract.DegradedActiveHC:
					hj.HealthStatus.FailedActiveDegradedCheck = true
				case contract.PendingDynamicRemoval:
					hj.HealthStatus.PendingDynamicRemoval = true
				case contract.PendingActiveHC:
					hj.HealthStatus.PendingActiveHC = true
				case contract.ExcludedViaImmediateHCFail:
					hj.HealthStatus.ExcludedViaImmediateHCFail = true
				case contract.ActiveHCTimeout:
					hj.HealthStatus.ActiveHCTimeout = true
				case contract.FailedEDSHealth:
					hj.HealthStatus.EDSHealthStatus = "UNHEALTHY"
				case contract.DegradedEDSHealth:
					if hj.HealthStatus.EDSHealthStatus != "UNHEALTHY" {
						hj.HealthStatus.EDSHealthStatus = "DEGRADED"
					}
				}
			}
			for _, group := range []struct {
				names []string
				typ   string
			}{{hostCounters, ""}, {hostGauges, "GAUGE"}} {
				for _, n := range group.names {
					m := simpleMetric{Type: group.typ, Name: n}
					if v := h.Stats[n]; v != 0 {
						m.Value = strconv.FormatUint(v, 10)
					}
					hj.Stats = append(hj.Stats, m)
				}
			}
			if i := h.Idle; i != nil {
				hj.Stats = append(hj.Stats, idleStats(i)...)
			}
			if hj.HealthStatus.EDSHealthStatus == "" {
				hj.HealthStatus.EDSHealthStatus = "HEALTHY"
			}
			cj.HostStatuses = append(cj.HostStatuses, hj)
		}
		out.ClusterStatuses = append(out.ClusterStatuses, cj)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("admin: encode clusters: %w", err)
	}
	return buf.Bytes(), nil
}
