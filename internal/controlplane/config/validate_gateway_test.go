package config

import (
	"strings"
	"testing"
)

func TestValidateGateway(t *testing.T) {
	const p = "t.yaml:%d: Gateway default/x: "
	e := func(line int, rest string) string { return "error " + strings.Replace(p, "%d", itoa(line), 1) + rest }
	w := func(line int, rest string) string { return "warning " + strings.Replace(p, "%d", itoa(line), 1) + rest }
	const sel = "selector: {istio: ingressgateway}\nservers:\n"
	http := func(port, name, host string) string {
		return "- port: {number: " + port + ", name: " + name + ", protocol: HTTP}\n  hosts: [\"" + host + "\"]\n"
	}
	https := func(port, name, host, tls string) string {
		return "- port: {number: " + port + ", name: " + name + ", protocol: HTTPS}\n  hosts: [\"" + host + "\"]\n  tls: " + tls + "\n"
	}
	const simple = "{mode: SIMPLE, serverCertificate: c.pem, privateKey: k.pem}"
	runValidationCases(t, []validationCase{
		{name: "http", kind: KindGateway, valid: true, spec: sel + http("80", "http", "*")},
		{name: "no servers", kind: KindGateway, spec: "selector: {istio: ingressgateway}\n",
			want: []string{e(5, "spec.servers: gateway must have at least one server")}},
		{name: "namespaced and wildcard hosts", kind: KindGateway, valid: true,
			spec: sel + "- port: {number: 80, name: http, protocol: HTTP}\n  hosts: [\"./a.example.com\", \"default/*.example.com\", \"*/b.example.com\"]\n"},
		{name: "bad host namespace", kind: KindGateway, spec: sel + http("80", "http", "Bad_NS/a.example.com"),
			want: []string{e(9, `spec.servers[0].hosts[0]: invalid namespace value "Bad_NS" in gateway`)}},
		{name: "two HTTP servers share a port", kind: KindGateway, valid: true,
			spec: sel + http("80", "http-a", "a.example.com") + http("80", "http-b", "b.example.com")},
		{name: "port clash: HTTP then TCP", kind: KindGateway,
			spec: sel + http("80", "http", "*") + "- port: {number: 80, name: tcp, protocol: TCP}\n  hosts: [\"*\"]\n",
			want: []string{e(10, "spec.servers[1].port.protocol: port 80 is already used by spec.servers[0] with protocol HTTP; only HTTP, HTTP2 and GRPC servers can share a plaintext HTTP port")}},
		{name: "port clash: two TCP servers", kind: KindGateway,
			spec: sel + "- port: {number: 31400, name: tcp-a, protocol: TCP}\n  hosts: [\"*\"]\n- port: {number: 31400, name: tcp-b, protocol: TCP}\n  hosts: [\"*\"]\n",
			want: []string{e(10, "spec.servers[1].port.protocol: port 31400 is already used by spec.servers[0] with protocol TCP; a TCP port serves one server only")}},
		{name: "port clash: HTTP then HTTPS", kind: KindGateway,
			spec: sel + http("443", "http", "*") + https("443", "https", "a.example.com", simple),
			want: []string{e(10, "spec.servers[1].port.protocol: port 443 is already used by spec.servers[0] with protocol HTTP; only HTTP, HTTP2 and GRPC servers can share a plaintext HTTP port")}},
		{name: "port clash: HTTPS then plain HTTP", kind: KindGateway,
			spec: sel + https("443", "https", "a.example.com", simple) + http("443", "http", "b.example.com"),
			want: []string{e(11, "spec.servers[1].tls: port 443 is already used by spec.servers[0] with TLS (HTTPS); a server without tls settings cannot share it")}},
		{name: "two HTTPS servers by SNI", kind: KindGateway, valid: true,
			spec: sel + https("443", "https-a", "a.example.com", simple) + https("443", "https-b", "b.example.com", simple)},
		{name: "same port and host twice", kind: KindGateway,
			spec: sel + https("443", "https-a", "a.example.com", simple) + https("443", "https-b", "a.example.com", simple),
			want: []string{e(12, `spec.servers[1].hosts[0]: host "a.example.com" is already served on port 443 by spec.servers[0]; two TLS servers on one port cannot match the same SNI host`)}},
		{name: "duplicate port name", kind: KindGateway,
			spec: sel + http("80", "web", "a.example.com") + http("81", "web", "b.example.com"),
			want: []string{e(10, "spec.servers[1].port.name: port names in servers must be unique: duplicate name web")}},
		{name: "HTTPS needs tls", kind: KindGateway,
			spec: sel + "- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: [\"*\"]\n",
			want: []string{e(8, "spec.servers[0].tls: server must have TLS settings for HTTPS/TLS protocols")}},
		{name: "SIMPLE needs certificate and key", kind: KindGateway,
			spec: sel + https("443", "https", "*", "{mode: SIMPLE}"),
			want: []string{
				e(10, "spec.servers[0].tls.serverCertificate: SIMPLE TLS requires a server certificate (or credentialName)"),
				e(10, "spec.servers[0].tls.privateKey: SIMPLE TLS requires a private key (or credentialName)"),
			}},
		{name: "SIMPLE with credentialName", kind: KindGateway, valid: true,
			spec: sel + https("443", "https", "*", "{mode: SIMPLE, credentialName: bookinfo-cert}")},
		{name: "MUTUAL needs a CA", kind: KindGateway,
			spec: sel + https("443", "https", "*", simple[:7]+"MUTUAL"+simple[13:]),
			want: []string{e(10, "spec.servers[0].tls.caCertificates: MUTUAL TLS requires a client CA bundle")}},
		{name: "two certificate sources", kind: KindGateway,
			spec: sel + https("443", "https", "*", "{mode: SIMPLE, serverCertificate: c.pem, privateKey: k.pem, credentialName: x}"),
			want: []string{e(10, "spec.servers[0].tls: only one of credential_name, credential_names, server_certificate/private_key, tls_certificates should be specified")}},
		{name: "ISTIO_MUTUAL with files", kind: KindGateway,
			spec: sel + https("443", "https", "*", "{mode: ISTIO_MUTUAL, serverCertificate: c.pem}"),
			want: []string{e(10, "spec.servers[0].tls.serverCertificate: ISTIO_MUTUAL TLS cannot have associated server certificate")}},
		{name: "passthrough ignores certificates", kind: KindGateway, valid: true,
			spec: sel + "- port: {number: 443, name: tls, protocol: TLS}\n  hosts: [\"*\"]\n  tls: {mode: PASSTHROUGH, serverCertificate: c.pem}\n",
			want: []string{w(10, "spec.servers[0].tls.mode: PASSTHROUGH mode does not use certificates, they will be ignored")}},
		{name: "httpsRedirect on HTTP", kind: KindGateway, valid: true,
			spec: sel + "- port: {number: 80, name: http, protocol: HTTP}\n  hosts: [\"*\"]\n  tls: {httpsRedirect: true}\n"},
		{name: "httpsRedirect on HTTPS warns", kind: KindGateway, valid: true,
			spec: sel + https("443", "https", "*", "{mode: SIMPLE, serverCertificate: c.pem, privateKey: k.pem, httpsRedirect: true}"),
			want: []string{w(10, "spec.servers[0].tls.httpsRedirect: tls.httpsRedirect should only be used with http servers")}},
		{name: "TLS termination on plain HTTP", kind: KindGateway,
			spec: sel + "- port: {number: 80, name: http, protocol: HTTP}\n  hosts: [\"*\"]\n  tls: " + simple + "\n",
			want: []string{e(10, "spec.servers[0].tls: server cannot have TLS settings for plain text HTTP ports (only httpsRedirect)")}},
		{name: "tls on TCP", kind: KindGateway,
			spec: sel + "- port: {number: 31400, name: tcp, protocol: TCP}\n  hosts: [\"*\"]\n  tls: " + simple + "\n",
			want: []string{e(10, "spec.servers[0].tls: server cannot have TLS settings for non HTTPS/TLS ports")}},
		{name: "targetPort", kind: KindGateway,
			spec: sel + "- port: {number: 80, targetPort: 8080, name: http, protocol: HTTP}\n  hosts: [\"*\"]\n",
			want: []string{e(8, "spec.servers[0].port.targetPort: targetPort has no impact on Gateways")}},
		{name: "bind not an IP", kind: KindGateway,
			spec: sel + "- port: {number: 80, name: http, protocol: HTTP}\n  hosts: [\"*\"]\n  bind: localhost\n",
			want: []string{e(10, `spec.servers[0].bind: "localhost" is not a valid IP address`)}},
	})
}
