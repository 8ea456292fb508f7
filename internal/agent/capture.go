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

// proxyUID is the proxy's user in Istio's capture rules (istio-iptables -u, 1337).
const proxyUID = 1337

// tproxyUserWarning explains, under TPROXY, why the proxy must not run as uid 1337 (the
// injector runs it as root in group 1337, as Istio's does): its connections to the app
// come from the client's address over loopback, and the rules' `--uid-owner 1337` rule
// sends them back to 15006; as another user they return at `! --uid-owner 1337`.
func tproxyUserWarning(mode string, euid int) string {
	if !transparent(mode) || euid != proxyUID {
		return ""
	}
	return "TPROXY interception with the proxy running as uid 1337: its connections to the app " +
		"(from the client's address) are captured again by the rules' --uid-owner 1337 rule and " +
		"loop to 15006; run it as root in group 1337 with NET_ADMIN, as the injector does"
}

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
