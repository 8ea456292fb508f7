package kube

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// wellKnownPorts are ports Istio never sniffs: a port whose name gives no protocol is TCP
// on these (SMTP, DNS, MySQL, MongoDB).
var wellKnownPorts = map[int32]bool{25: true, 53: true, 3306: true, 27017: true}

// Protocol is the protocol Istio gives a Kubernetes service port, in the model's
// upper-case spelling, with "" for "not declared" (Istio's UnsupportedProtocol: the port is
// sniffed per connection; the explicit proxy of local mode routes it as HTTP). Istio's rule:
//
//   - UDP ports are UDP;
//   - else appProtocol, when set, replaces the name; the Kubernetes names kubernetes.io/h2c,
//     kubernetes.io/ws and kubernetes.io/wss are HTTP2, HTTP and HTTPS;
//   - a name starting with "grpc-web" (any case) is GRPC-WEB;
//   - else the part of the name before the first '-' is matched, ignoring case, against
//     tcp, udp, grpc, http, http_proxy, http2, https, tls, mongo, redis, mysql;
//   - no match on a well-known port (25, 53, 3306, 27017) is TCP.
func Protocol(port int32, name string, proto corev1.Protocol, appProtocol *string) string {
	if proto == corev1.ProtocolUDP {
		return "UDP"
	}
	if appProtocol != nil {
		name = *appProtocol
		switch name {
		case "kubernetes.io/h2c":
			return "HTTP2"
		case "kubernetes.io/ws":
			return "HTTP"
		case "kubernetes.io/wss":
			return "HTTPS"
		}
	}
	const grpcWeb = "grpc-web"
	if len(name) >= len(grpcWeb) && strings.EqualFold(name[:len(grpcWeb)], grpcWeb) {
		return "GRPC-WEB"
	}
	if i := strings.IndexByte(name, '-'); i >= 0 {
		name = name[:i]
	}
	switch p := strings.ToLower(name); p {
	case "tcp", "udp", "grpc", "http", "http_proxy", "http2", "https", "tls", "mongo", "redis", "mysql":
		return strings.ToUpper(p)
	}
	if wellKnownPorts[port] {
		return "TCP"
	}
	return ""
}
