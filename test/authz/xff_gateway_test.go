package authz

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// Three gateways in the sidecar test's subnet, one per numTrustedProxies the cases use.
var trustedHopsGateway = map[uint32]string{
	0: "127.0.187.31", // proxy.istio.io/config sets 0 over the mesh's default
	1: "127.0.187.32", // proxy.istio.io/config sets 1
	2: "127.0.187.33", // meshConfig.defaultConfig.gatewayTopology.numTrustedProxies
}

// xffGatewayFiles: the three gateways (their proxy configuration from the mesh and their
// annotations), one Gateway and route to httpbin, and the suite's policy moved to the
// gateways (a policy in istio-system selecting istio: ingressgateway).
func xffGatewayFiles(registry, policy string) map[string]string {
	var b strings.Builder
	for _, hops := range []uint32{0, 1, 2} {
		ann := ""
		if hops < 2 {
			ann = fmt.Sprintf(`, proxy.istio.io/config: '{"gatewayTopology": {"numTrustedProxies": %d}}'`, hops)
		}
		fmt.Fprintf(&b, `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: gw%d
  namespace: istio-system
  annotations: {lucid.dev/proxy: router%s}
spec: {address: %s, labels: {istio: ingressgateway}}
---
`, hops, ann, trustedHopsGateway[hops])
	}
	b.WriteString(frontGateway)
	policy = strings.Replace(policy, "namespace: foo}", "namespace: istio-system}\n", 1)
	policy = strings.Replace(policy, "spec:\n", "spec:\n  selector: {matchLabels: {istio: ingressgateway}}\n", 1)
	return map[string]string{"registry.yaml": registry, "gateways.yaml": b.String(), "policy.yaml": policy}
}

// TestRemoteIPThroughGateway plays the cases of gateways that trust x-forwarded-for hops
// through real gateways: the client's socket is bound to its (loopback stand-in) address,
// it sends the case's x-forwarded-for, and the gateway's numTrustedProxies (from the
// mesh's defaultConfig or the gateway's proxy.istio.io/config annotation) decides which
// address is remote.ip, which the remoteIpBlocks policy judges.
func TestRemoteIPThroughGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a mesh")
	}
	var s suite
	var cases []tcase
	for _, su := range loadSuites(t) {
		for _, c := range su.Cases {
			if c.Request.UseRemoteAddress {
				s = su
				cases = append(cases, c)
			}
		}
	}
	if len(cases) < 3 {
		t.Fatalf("%d gateway cases in testdata/cases.yaml; want the 3 of remoteIpBlocks", len(cases))
	}
	o := meshtest.Options{MeshConfig: "defaultConfig: {gatewayTopology: {numTrustedProxies: 2}}\n"}
	workloads := []meshtest.Workload{{Name: "httpbin", Namespace: "foo", IP: scHTTPBin, AppIP: scApp, Ports: []int{8000},
		Labels: map[string]string{"app": "httpbin", "version": "v1"}, Version: "v1"}}
	for hops, ip := range trustedHopsGateway {
		workloads = append(workloads, meshtest.Workload{Name: fmt.Sprintf("gw%d", hops), Namespace: "istio-system", IP: ip, Router: true,
			Labels: map[string]string{"istio": "ingressgateway"}})
	}
	m := meshtest.StartWith(t, o, xffGatewayFiles(sidecarRegistry(t), toLoopback(s.Config)), workloads)
	defer m.Stop()
	for _, ip := range trustedHopsGateway {
		waitListening(t, ip+":8080")
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := c.Request
			gw, ok := trustedHopsGateway[r.TrustedHops]
			if !ok {
				t.Fatalf("no gateway trusts %d hops", r.TrustedHops)
			}
			r.SourceIP = toLoopback(or(r.SourceIP, defaultSource))
			req := &http.Request{Method: http.MethodGet, RequestURI: "/headers", Host: "httpbin.example.com",
				Header: http.Header{"X-Forwarded-For": {toLoopback(r.XFF)}}}
			status, header, body := rawRequest(t, (&issuer{}).dialer(r)(t, gw+":8080"), req)
			x := header.Get("X-Lucid-Error")
			if status != c.Want.Status {
				t.Fatalf("through the gateway trusting %d hops, XFF %q from %s: %d %q (x-lucid-error %q), want %d",
					r.TrustedHops, toLoopback(r.XFF), r.SourceIP, status, body, x, c.Want.Status)
			}
			if status == 200 {
				var e meshtest.Echo
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Service != "httpbin" {
					t.Fatalf("the answer is not httpbin's: %q", body)
				}
				return
			}
			if want := toLoopback(c.Want.Explain); body != "RBAC: access denied" || !strings.Contains(x, "remote.ip") || !strings.Contains(x, want) {
				t.Errorf("body %q x-lucid-error %q; want RBAC: access denied and the remote.ip that decided (%q)", body, x, want)
			}
		})
	}
}
