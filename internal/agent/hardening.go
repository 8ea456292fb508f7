package agent

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/dataplane/admin"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/proxy"
	"github.com/lucid-mesh/lucid/internal/dataplane/stats"
)

// The sidecar's exposure and limits: where the admin API listens and who may call it and
// the status server's controls, and the downstream request limits Istio configures through
// ProxyConfig.

// Istio's ProxyConfig keys for the downstream limits: Envoy's runtime overrides of the
// connection manager defaults (runtimeValues), and the proxy metadata Istio turns into
// accept_http_10 and idle_timeout.
const (
	runtimeMaxHeadersKB    = "envoy.reloadable_features.max_request_headers_size_kb"
	runtimeMaxHeadersCount = "envoy.reloadable_features.max_request_headers_count"
	metaHTTP10             = "ISTIO_META_HTTP10"
	metaIdleTimeout        = "ISTIO_META_IDLE_TIMEOUT"
)

// adminMetadata is the node metadata key under which the proxy tells the control plane
// where its admin API listens (the CLI and the dashboard find it there).
const adminMetadata = contract.AdminMetadata

// downstream is what ProxyConfig sets for the proxy's listeners.
type downstream struct {
	limits http1.Limits
	idle   time.Duration
}

// parseProxyConfig reads Istio's PROXY_CONFIG (JSON or YAML).
func parseProxyConfig(s string) (downstream, error) {
	var d downstream
	if s == "" {
		return d, nil
	}
	js, err := yaml.YAMLToJSON([]byte(s))
	if err != nil {
		return d, fmt.Errorf("proxy config: %w", err)
	}
	var pc meshv1alpha1.ProxyConfig
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(js, &pc); err != nil {
		return d, fmt.Errorf("proxy config: %w", err)
	}
	positive := func(key string) (int, error) {
		v, ok := pc.GetRuntimeValues()[key]
		if !ok {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("proxy config: runtimeValues[%q] = %q: want a positive number", key, v)
		}
		return n, nil
	}
	if d.limits.MaxRequestHeadersKB, err = positive(runtimeMaxHeadersKB); err != nil {
		return d, err
	}
	if d.limits.MaxRequestHeadersKB > 8192 {
		return d, fmt.Errorf("proxy config: runtimeValues[%q] = %d: Envoy's most is 8192", runtimeMaxHeadersKB, d.limits.MaxRequestHeadersKB)
	}
	if d.limits.MaxHeadersCount, err = positive(runtimeMaxHeadersCount); err != nil {
		return d, err
	}
	meta := pc.GetProxyMetadata()
	d.limits.AcceptHTTP10 = meta[metaHTTP10] == "1" || meta[metaHTTP10] == "true"
	if v := meta[metaIdleTimeout]; v != "" {
		if d.idle, err = time.ParseDuration(v); err != nil || d.idle <= 0 {
			return d, fmt.Errorf("proxy config: proxyMetadata[%q] = %q: want a duration such as 30m", metaIdleTimeout, v)
		}
	}
	return d, nil
}

// adminAddress is where the admin API listens.
func adminAddress(o Options) netip.AddrPort {
	ip := o.AdminAddress
	if !ip.IsValid() {
		ip = contract.AdminAddress(o.IP)
	}
	return netip.AddrPortFrom(ip, o.AdminPort) // AdminPort: 15000 unless set (withDefaults)
}

// callers admits localhost and the workload's own addresses to the admin API and the
// status server's controls.
func callers(o Options) func(netip.Addr) bool {
	return admin.LocalCallers(o.IP, o.AppAddress, adminAddress(o).Addr())
}

// exposeStats adds the server.* gauges and the listeners' downstream_cx_* stats.
func exposeStats(st *stats.Stats, px *proxy.Proxy, started time.Time, state func() string) {
	st.AddCounters(px.EachListenerStat)
	st.AddGauges(px.EachListenerGauge)
	st.AddGauges(admin.ServerGauges(started, state, func() uint64 {
		var n uint64
		px.EachListenerGauge(func(_ string, v uint64) { n += v })
		return n
	}))
}
