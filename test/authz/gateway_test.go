package authz

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// The gateway's address in the sidecar test's subnet.
const scGateway = "127.0.187.30"

// frontGateway is a Gateway on :8080 of the istio: ingressgateway workloads routing
// everything to httpbin.
const frontGateway = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: foo}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front, namespace: foo}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - route:
    - destination: {host: httpbin.foo.svc.cluster.local, port: {number: 8000}}
`

// gatewayFiles: an ingress gateway routing everything to httpbin, and a DENY policy on the
// gateway for /admin, the policy Istio's security best practices use to show path
// normalisation.
func gatewayFiles(registry string) map[string]string {
	return map[string]string{
		"registry.yaml": registry,
		"gateway.yaml": `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: gw
  namespace: istio-system
  annotations: {lucid.dev/proxy: router}
spec:
  address: ` + scGateway + `
  labels: {istio: ingressgateway}
---
` + frontGateway + `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"]}}]
`,
	}
}

// TestGatewayPolicyAfterNormalisation: at a real gateway, a DENY policy on /admin cannot be
// bypassed with the path forms Istio's security best practices list, because the path is
// normalised (meshConfig.pathNormalization) before the policy sees it; "//admin" gets
// through under BASE, as in Istio, and not under MERGE_SLASHES. Refusals are Envoy's 403
// with Lucid's explanation naming the policy, and counted per policy in the gateway's stats.
func TestGatewayPolicyAfterNormalisation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a mesh")
	}
	registry := sidecarRegistry(t)
	denied := "ns[istio-system]-policy[deny-admin]-rule[0]"
	for _, mode := range []struct {
		name, mesh  string
		mergedAdmin int // the status of GET //admin
	}{
		{name: "BASE", mergedAdmin: 200},
		{name: "MERGE_SLASHES", mesh: "pathNormalization: {normalization: MERGE_SLASHES}\n", mergedAdmin: 403},
	} {
		t.Run(mode.name, func(t *testing.T) {
			var o meshtest.Options
			o.MeshConfig = mode.mesh
			m := meshtest.StartWith(t, o, gatewayFiles(registry), []meshtest.Workload{
				{Name: "httpbin", Namespace: "foo", IP: scHTTPBin, AppIP: scApp, Ports: []int{8000},
					Labels: map[string]string{"app": "httpbin", "version": "v1"}},
				{Name: "gw", Namespace: "istio-system", IP: scGateway, Router: true,
					Labels: map[string]string{"istio": "ingressgateway"}},
			})
			defer m.Stop()
			waitListening(t, scGateway+":8080", scHTTPBin+":8000")
			refusals := 0
			for _, c := range []struct {
				path   string
				status int
			}{
				{"/headers", 200},
				{"/admin", 403},
				{"/admin/users", 403},
				{"/api/../admin", 403},
				{"/api/%2e%2e/admin", 403},
				{"/api/.%2E/admin/x", 403},
				{"/%61dmin", 403},
				{"/./admin", 403},
				{"/api/..;/admin", 403},
				{"//admin", mode.mergedAdmin},
			} {
				req := &http.Request{Method: http.MethodGet, RequestURI: c.path, Host: "httpbin.example.com", Header: http.Header{}}
				status, header, body := rawRequest(t, dial(t, scGateway+":8080"), req)
				if status != c.status {
					t.Errorf("GET %s: %d %q (x-lucid-error %q), want %d", c.path, status, body, header.Get("X-Lucid-Error"), c.status)
					continue
				}
				if status == 403 {
					refusals++
					want := "-: RBAC access denied: DENY policy AuthorizationPolicy istio-system/deny-admin rules[0]: path"
					if body != "RBAC: access denied" || !strings.HasPrefix(header.Get("X-Lucid-Error"), want) {
						t.Errorf("GET %s: body %q x-lucid-error %q; want Envoy's body and %q...", c.path, body, header.Get("X-Lucid-Error"), want)
					}
				}
			}
			resp, err := http.Get("http://" + testutil.Admin(scGateway) + "/stats?filter=rbac")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			stats, _ := io.ReadAll(resp.Body)
			if want := "rbac.policy." + denied + ".denied: " + strconv.Itoa(refusals); !strings.Contains(string(stats), want) {
				t.Errorf("the gateway's /stats?filter=rbac:\n%s\nwant %q", stats, want)
			}
		})
	}
}
