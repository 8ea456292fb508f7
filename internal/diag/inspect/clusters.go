package inspect

import (
	"fmt"
	"slices"
	"strings"
	"time"

	adminpb "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"google.golang.org/protobuf/encoding/protojson"
)

// ClusterHealth is one cluster of a sidecar's /clusters?format=json.
type ClusterHealth struct {
	Name  string
	Hosts []HostHealth
}

// HostHealth is one host of a cluster at run time.
type HostHealth struct {
	Address string // "ip:port" (or "hostname:port")
	// EDSHealth is Envoy's HealthStatus name: UNKNOWN, HEALTHY, UNHEALTHY, DRAINING,
	// TIMEOUT, DEGRADED.
	EDSHealth string
	// OutlierEjected is failed_outlier_check.
	OutlierEjected bool
	// Flags are Envoy's health flag names that are set, e.g. contract.FailedOutlierCheck.
	Flags []string
	// Idle is the host's keep-alive idle timeout as the sidecar's HTTP/1.1 pool knows it
	// (Lucid's idle_* host stats); nil when the sidecar reports none.
	Idle *pool.IdleInfo
}

// Ejected reports whether the host is out of load balancing at run time for a reason other
// than its EDS health (outlier detection, active health checking, pending removal).
func (h HostHealth) Ejected() bool {
	for _, f := range h.Flags {
		if f != contract.FailedEDSHealth && f != contract.DegradedEDSHealth && f != contract.EDSStatusDraining {
			return true
		}
	}
	return false
}

// ParseClusters decodes /clusters?format=json (envoy.admin.v3.Clusters).
func ParseClusters(b []byte) ([]ClusterHealth, error) {
	var cs adminpb.Clusters
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &cs); err != nil {
		return nil, fmt.Errorf("inspect: /clusters?format=json: %w", err)
	}
	out := make([]ClusterHealth, 0, len(cs.GetClusterStatuses()))
	for _, c := range cs.GetClusterStatuses() {
		ch := ClusterHealth{Name: c.GetName()}
		for _, h := range c.GetHostStatuses() {
			ch.Hosts = append(ch.Hosts, hostHealth(h))
		}
		out = append(out, ch)
	}
	slices.SortFunc(out, func(a, b ClusterHealth) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func hostHealth(h *adminpb.HostStatus) HostHealth {
	sa := h.GetAddress().GetSocketAddress()
	addr := fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue())
	if strings.Contains(sa.GetAddress(), ":") {
		addr = fmt.Sprintf("[%s]:%d", sa.GetAddress(), sa.GetPortValue())
	}
	hs := h.GetHealthStatus()
	out := HostHealth{
		Address:        addr,
		EDSHealth:      corepb.HealthStatus_name[int32(hs.GetEdsHealthStatus())],
		OutlierEjected: hs.GetFailedOutlierCheck(),
	}
	add := func(set bool, name string) {
		if set {
			out.Flags = append(out.Flags, name)
		}
	}
	add(hs.GetFailedActiveHealthCheck(), contract.FailedActiveHC)
	add(hs.GetFailedOutlierCheck(), contract.FailedOutlierCheck)
	switch hs.GetEdsHealthStatus() {
	case corepb.HealthStatus_UNHEALTHY, corepb.HealthStatus_TIMEOUT:
		add(true, contract.FailedEDSHealth)
	case corepb.HealthStatus_DEGRADED:
		add(true, contract.DegradedEDSHealth)
	case corepb.HealthStatus_DRAINING:
		add(true, contract.EDSStatusDraining)
	}
	add(hs.GetFailedActiveDegradedCheck(), contract.DegradedActiveHC)
	add(hs.GetPendingDynamicRemoval(), contract.PendingDynamicRemoval)
	add(hs.GetPendingActiveHc(), contract.PendingActiveHC)
	add(hs.GetExcludedViaImmediateHcFail(), contract.ExcludedViaImmediateHCFail)
	add(hs.GetActiveHcTimeout(), contract.ActiveHCTimeout)
	out.Idle = idleInfo(h.GetStats())
	return out
}

// idleInfo reads Lucid's idle_timeout_ms, idle_timeout_closes and idle_reuse_limit_ms
// host stats; nil when absent.
func idleInfo(stats []*adminpb.SimpleMetric) *pool.IdleInfo {
	var i pool.IdleInfo
	found, limit := false, false
	for _, m := range stats {
		v := m.GetValue()
		switch m.GetName() {
		case "idle_timeout_ms":
			found, i.Timeout = true, time.Duration(v)*time.Millisecond
		case "idle_timeout_closes":
			i.Closes = int(v)
		case "idle_reuse_limit_ms":
			limit, i.ReuseLimit = true, time.Duration(v)*time.Millisecond
		}
	}
	if !found {
		return nil
	}
	if !limit {
		i.ReuseLimit = -1
	}
	i.Announced = i.Timeout > 0 && i.Closes == 0
	return &i
}

// Host finds a host by address in a cluster list, nil when absent.
func Host(cs []ClusterHealth, cluster, addr string) *HostHealth {
	i, ok := slices.BinarySearchFunc(cs, cluster, func(c ClusterHealth, n string) int { return strings.Compare(c.Name, n) })
	if !ok {
		return nil
	}
	for j := range cs[i].Hosts {
		if cs[i].Hosts[j].Address == addr {
			return &cs[i].Hosts[j]
		}
	}
	return nil
}
