package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestProtocol(t *testing.T) {
	str := func(s string) *string { return &s }
	tests := []struct {
		port  int32
		name  string
		proto corev1.Protocol
		app   *string
		want  string
	}{
		{9080, "http", corev1.ProtocolTCP, nil, "HTTP"},
		{9080, "http-web", corev1.ProtocolTCP, nil, "HTTP"},
		{9080, "HTTP-web", corev1.ProtocolTCP, nil, "HTTP"}, // prefix matched ignoring case
		{9080, "http2", corev1.ProtocolTCP, nil, "HTTP2"},
		{9080, "https-admin", corev1.ProtocolTCP, nil, "HTTPS"},
		{9080, "grpc", corev1.ProtocolTCP, nil, "GRPC"},
		{9080, "grpc-web", corev1.ProtocolTCP, nil, "GRPC-WEB"},   // before the '-' split
		{9080, "GRPC-Web-x", corev1.ProtocolTCP, nil, "GRPC-WEB"}, // any case, any suffix
		{9080, "grpcweb", corev1.ProtocolTCP, nil, ""},
		{9080, "tcp-db", corev1.ProtocolTCP, nil, "TCP"},
		{9080, "tls", corev1.ProtocolTCP, nil, "TLS"},
		{9080, "mongo", corev1.ProtocolTCP, nil, "MONGO"},
		{9080, "redis-main", corev1.ProtocolTCP, nil, "REDIS"},
		{9080, "mysql", corev1.ProtocolTCP, nil, "MYSQL"},
		{9080, "http_proxy", corev1.ProtocolTCP, nil, "HTTP_PROXY"},
		{9080, "udp", corev1.ProtocolTCP, nil, "UDP"},
		{9080, "web", corev1.ProtocolTCP, nil, ""}, // unknown prefix: sniffed
		{9080, "", corev1.ProtocolTCP, nil, ""},
		{9080, "httpx", corev1.ProtocolTCP, nil, ""},
		{9080, "http", corev1.ProtocolUDP, nil, "UDP"}, // UDP wins over everything
		{53, "dns", corev1.ProtocolUDP, nil, "UDP"},
		{53, "dns", corev1.ProtocolTCP, nil, "TCP"}, // well-known ports are never sniffed
		{25, "", corev1.ProtocolTCP, nil, "TCP"},
		{3306, "db", corev1.ProtocolTCP, nil, "TCP"},
		{27017, "", corev1.ProtocolTCP, nil, "TCP"},
		{3306, "http", corev1.ProtocolTCP, nil, "HTTP"},        // a declared protocol still wins
		{9080, "tcp", corev1.ProtocolTCP, str("http"), "HTTP"}, // appProtocol replaces the name
		{9080, "http", corev1.ProtocolTCP, str("grpc"), "GRPC"},
		{9080, "http", corev1.ProtocolTCP, str("kubernetes.io/h2c"), "HTTP2"},
		{9080, "tcp", corev1.ProtocolTCP, str("kubernetes.io/ws"), "HTTP"},
		{9080, "tcp", corev1.ProtocolTCP, str("kubernetes.io/wss"), "HTTPS"},
		{9080, "http", corev1.ProtocolTCP, str("example.com/custom"), ""}, // unknown appProtocol: sniffed, name ignored
		{9080, "http", corev1.ProtocolTCP, str(""), ""},
		{3306, "http", corev1.ProtocolTCP, str("example.com/custom"), "TCP"},
		{9080, "http", corev1.ProtocolTCP, str("HTTP2"), "HTTP2"},
		{9080, "x", corev1.ProtocolTCP, str("grpc-web"), "GRPC-WEB"},
		{9080, "http", corev1.ProtocolUDP, str("http"), "UDP"},
		{9080, "http", corev1.ProtocolSCTP, nil, "HTTP"},
	}
	for _, tt := range tests {
		app := "<nil>"
		if tt.app != nil {
			app = *tt.app
		}
		if got := Protocol(tt.port, tt.name, tt.proto, tt.app); got != tt.want {
			t.Errorf("Protocol(%d, %q, %s, appProtocol %s) = %q, want %q", tt.port, tt.name, tt.proto, app, got, tt.want)
		}
	}
}
