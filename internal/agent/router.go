package agent

import (
	"context"
	"fmt"
)

// Router mode: the same agent and proxy run as a standalone gateway (Istio's
// istio-ingressgateway, proxy type "router"). Its listeners come from the Gateways that
// select its labels; there is no app beside it, so no app probes and no app metrics;
// readiness, the admin API, the access log and metrics are as for a sidecar. At shutdown
// a router drains every listener (Envoy's drain_listeners?graceful) except the health
// listener on 15021, which keeps answering "not ready".

// RouterNodeID is Istio's node id for a gateway: router~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local.
func RouterNodeID(ip fmt.Stringer, name, namespace string) string {
	return fmt.Sprintf("router~%s~%s.%s~%s.svc.cluster.local", ip, name, namespace, namespace)
}

func nodeIDOf(o Options) string {
	if o.Router {
		return RouterNodeID(o.IP, o.Workload, o.Namespace)
	}
	return NodeID(o.IP, o.Workload, o.Namespace)
}

// drainListeners starts the shutdown drain: a sidecar's inbound listeners, or every
// listener of a router but the health listener.
func (l lifecycle) drainListeners(ctx context.Context) <-chan struct{} {
	if l.o.Router {
		return l.proxy.DrainRouter(ctx, healthListenerName)
	}
	return l.proxy.DrainInbound(ctx)
}

// proxyKind names the process in logs: "gateway" or "sidecar".
func proxyKind(o Options) string {
	if o.Router {
		return "gateway"
	}
	return "sidecar"
}
