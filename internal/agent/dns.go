package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/lucid-mesh/lucid/internal/agent/dnsproxy"
	"github.com/lucid-mesh/lucid/internal/contract/nds"
	"github.com/lucid-mesh/lucid/internal/contract/resolvconf"
)

// DNS capture (Istio's ISTIO_META_DNS_CAPTURE, docs/capture.md): the agent runs the DNS
// proxy on 127.0.0.1:15053, where the pod's capture rules send its port-53 queries; it
// answers from the name table the control plane sends (the xDS client subscribes to it
// only then) and forwards the rest to the resolvers of resolv.conf. The node metadata asks
// the control plane for the table (DNS_CAPTURE) and for auto-allocated addresses
// (DNS_AUTO_ALLOCATE), as Istio's agent does.

// DNSOptions configure the agent's DNS proxy.
type DNSOptions struct {
	DNSCapture      bool   // ISTIO_META_DNS_CAPTURE
	DNSAutoAllocate bool   // ISTIO_META_DNS_AUTO_ALLOCATE
	ResolvConf      string // default /etc/resolv.conf: the upstream resolvers and search domains
	DNSAddress      string // default 127.0.0.1:15053
}

// dnsMetadata adds the DNS settings to the node metadata.
func dnsMetadata(o DNSOptions, meta map[string]string) {
	if o.DNSCapture {
		meta["DNS_CAPTURE"] = "true"
		if o.DNSAutoAllocate {
			meta["DNS_AUTO_ALLOCATE"] = "true"
		}
	}
}

// startDNS starts the DNS proxy when DNS capture is on and returns what receives the name
// tables (nil when off) and a stop function that waits for it to end.
func startDNS(ctx context.Context, o DNSOptions, namespace string, log *slog.Logger) (func(nds.Table), func(), error) {
	if !o.DNSCapture {
		return nil, func() {}, nil
	}
	path := o.ResolvConf
	if path == "" {
		path = "/etc/resolv.conf"
	}
	rc, err := resolvconf.Read(path)
	if err != nil {
		return nil, nil, fmt.Errorf("DNS capture (ISTIO_META_DNS_CAPTURE): the upstream resolvers: %w", err)
	}
	srv := dnsproxy.New(dnsproxy.Options{Addr: o.DNSAddress, Upstreams: rc.Upstreams, Search: rc.Search, Namespace: namespace, Logger: log})
	ctx, cancel := context.WithCancel(ctx)
	bound := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, func(a net.Addr) { bound <- a }) }()
	var addr net.Addr
	select {
	case addr = <-bound:
	case err := <-done:
		cancel()
		return nil, nil, err
	}
	log.Info("dns proxy listening", "address", addr.String(), "upstreams", rc.Upstreams, "search", rc.Search)
	return srv.Update, func() {
		cancel()
		if err := <-done; err != nil {
			log.Error("dns proxy stopped", "error", err)
		}
	}, nil
}
