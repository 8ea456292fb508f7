package config

import "testing"

func TestValidateSidecar(t *testing.T) {
	e := func(line int, rest string) string {
		return "error t.yaml:" + itoa(line) + ": Sidecar default/x: " + rest
	}
	w := func(line int, rest string) string {
		return "warning t.yaml:" + itoa(line) + ": Sidecar default/x: " + rest
	}
	runValidationCases(t, []validationCase{
		{name: "egress and ingress", kind: KindSidecar, valid: true,
			spec: "ingress:\n- port: {number: 9080, protocol: HTTP, name: http}\n  defaultEndpoint: 127.0.0.1:8080\negress:\n- hosts: [\"./*\", \"istio-system/*\"]\n"},
		{name: "outbound policy only", kind: KindSidecar, valid: true, spec: "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"},
		{name: "defaultEndpoint on another host", kind: KindSidecar,
			spec: "ingress:\n- port: {number: 9080, protocol: HTTP, name: http}\n  defaultEndpoint: 10.0.0.1:8080\n",
			want: []string{e(8, "spec.ingress[0].defaultEndpoint: sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset")}},
		{name: "defaultEndpoint port not a number", kind: KindSidecar,
			spec: "ingress:\n- port: {number: 9080, protocol: HTTP, name: http}\n  defaultEndpoint: \"0.0.0.0:http\"\n",
			want: []string{e(8, `spec.ingress[0].defaultEndpoint: sidecar: defaultEndpoint port (http) is not a number`)}},
		{name: "unix endpoint accepted, not applied", kind: KindSidecar, valid: true,
			spec: "ingress:\n- port: {number: 9080, protocol: HTTP, name: http}\n  defaultEndpoint: unix:///var/run/app.sock\n",
			want: []string{w(8, "spec.ingress[0].defaultEndpoint: a unix domain socket endpoint is not applied by Lucid: the application is reached on its address")}},
		{name: "ingress tls san", kind: KindSidecar,
			spec: "ingress:\n- port: {number: 9080, protocol: HTTPS, name: https}\n  tls: {mode: SIMPLE, subjectAltNames: [a]}\n",
			want: []string{e(8, "spec.ingress[0].tls: sidecar: subjectAltNames is not supported in ingress tls"),
				e(8, "spec.ingress[0].tls.serverCertificate: SIMPLE TLS requires a server certificate (or credentialName)"),
				e(8, "spec.ingress[0].tls.privateKey: SIMPLE TLS requires a private key (or credentialName)")}},
		{name: "egress host without namespace", kind: KindSidecar, spec: "egress:\n- hosts: [\"reviews\"]\n",
			want: []string{e(7, `spec.egress[0].hosts[0]: host must be of form namespace/dnsName`)}},
	})
}

func FuzzDefaultEndpoint(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8080", ":80", "[::1]:9", "unix:///a", "unix://", "0.0.0.0:x", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(_ *testing.T, ep string) {
		v := &validator{}
		v.defaultEndpoint("spec.ingress[0].defaultEndpoint", ep) // must not panic
	})
}
