package agent

import (
	"fmt"
	"net/netip"
	"strings"
)

// Transparent capture: an injected pod's istio-init installed the capture rules
// (`lucid iptables`), and the injector tells the sidecar so in ISTIO_META_INTERCEPTION_MODE
// (REDIRECT or TPROXY; NONE or unset: local mode, no capture). Under capture the proxy
// serves virtualOutbound and virtualInbound on 0.0.0.0:15001/15006 by original
// destination (proxy.Options.Capture; under TPROXY the sockets are IP_TRANSPARENT, which
// needs CAP_NET_ADMIN), and the node metadata carries the mode as Istio's does.

// Interception modes (ISTIO_META_INTERCEPTION_MODE).
const (
	InterceptRedirect = "REDIRECT"
	InterceptTProxy   = "TPROXY"
	InterceptNone     = "NONE"
)

// captureOn reports whether the pod's traffic is captured, checking the mode's spelling.
func captureOn(mode string) (bool, error) {
	switch strings.ToUpper(mode) {
	case "", InterceptNone:
		return false, nil
	case InterceptRedirect, InterceptTProxy:
		return true, nil
	}
	return false, fmt.Errorf("--interception-mode %q: want REDIRECT, TPROXY or NONE", mode)
}

// transparent reports TPROXY interception: the capture sockets must be IP_TRANSPARENT.
func transparent(mode string) bool { return strings.EqualFold(mode, InterceptTProxy) }

// agentEndpoint is where the proxy's static "agent" cluster reaches the status server:
// 127.0.0.1 in a pod, as Istio's bootstrap does (the capture rules never redirect
// 127.0.0.1, while a call to the pod's own address would be captured to 15006), the
// workload's address in local mode, where every workload shares loopback.
func agentEndpoint(ip netip.Addr) netip.Addr {
	if ip.IsLoopback() {
		return ip
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// statusListenAddr is the status server's address: every address of the pod (the kubelet
// probes the pod IP, the proxy calls 127.0.0.1), the workload's own in local mode.
func statusListenAddr(ip netip.Addr) netip.Addr {
	if ip.IsLoopback() {
		return ip
	}
	return netip.IPv4Unspecified()
}
