package cli

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/agent"
)

// addExposureFlags adds what `lucid sidecar` and `lucid gateway` expose and accept: where
// the admin API binds (localhost by default, as Istio; `lucid up` gives each proxy a
// private loopback address) and Istio's PROXY_CONFIG (request limits, HTTP/1.0, the
// downstream idle timeout).
func addExposureFlags(cmd *cobra.Command, o *agent.Options) {
	f := cmd.Flags()
	f.Var((*addrFlag)(&o.AdminAddress), "admin-address",
		"the address the admin API binds (with --admin-port) (default 127.0.0.1 for a pod's address; for a loopback --ip, a private 127.255.x.y "+
			"taken from its last two bytes, e.g. 127.0.10.1 → 127.255.10.1); only localhost and the workload's own addresses may call it")
	f.StringVar(&o.ProxyConfig, "proxy-config", os.Getenv("PROXY_CONFIG"),
		`Istio's ProxyConfig as JSON or YAML: runtimeValues "envoy.reloadable_features.max_request_headers_size_kb" and `+
			`"..._count" raise the header limits (60 KiB, 100), proxyMetadata ISTIO_META_HTTP10 "1" accepts HTTP/1.0, `+
			`ISTIO_META_IDLE_TIMEOUT sets the downstream idle timeout (1h) (default $PROXY_CONFIG)`)
}

// addrFlag is a netip.Addr flag.
type addrFlag netip.Addr

func (a *addrFlag) String() string { return (*netip.Addr)(a).String() }
func (a *addrFlag) Type() string   { return "ip" }
func (a *addrFlag) Set(s string) error {
	v, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("%q is not an IP address", s)
	}
	*a = addrFlag(v)
	return nil
}
