package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lucid-mesh/lucid/internal/controlplane/ca"
)

// The Lucid pair: a client workload's sidecar (its explicit proxy on :15001, where the
// load goes) and web's sidecar (its inbound :8080, forwarding to the upstream as web's
// app), configured by one `lucid discovery`. With mutual TLS, discovery runs the mesh CA
// with its state kept for the whole run, each sidecar gets its own workload token on fd 3
// and its certificate over gRPC, as `lucid up` does, and auto mTLS makes the hop
// ISTIO_MUTUAL; in plaintext, discovery runs without the CA and the sidecars without
// identities.

// meshYAML is web's service and the two workloads; the DestinationRule asks for HTTP/2
// between the sidecars and/or one request per upstream connection.
func (e *env) meshYAML(h2, newConn bool) string {
	y := fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [%[1]s]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web, namespace: default, annotations: {lucid.dev/app-address: "%[2]s"}}
spec: {address: %[3]s, labels: {app: web}, serviceAccount: web-sa}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: default}
spec: {address: %[4]s, labels: {app: client}, serviceAccount: client-sa}
`, webHost, e.ip(upstreamHost), e.ip(webSidecarHost), e.ip(clientSidecarHost))
	var http []string
	if h2 {
		http = append(http, "h2UpgradePolicy: UPGRADE")
	}
	if newConn {
		http = append(http, "maxRequestsPerConnection: 1")
	}
	if len(http) > 0 {
		y += fmt.Sprintf(`---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: default}
spec:
  host: %s
  trafficPolicy: {connectionPool: {http: {%s}}}
`, webHost, strings.Join(http, ", "))
	}
	return y
}

// startLucid starts discovery and the two sidecars and waits until a request gets through.
func (e *env) startLucid(v variant, mtls bool, extraEnv []string) (*pair, error) {
	p := &pair{env: e}
	cfg, err := os.MkdirTemp(e.work, "mesh")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg, "mesh.yaml"), []byte(e.meshYAML(v.h2, v.newConn)), 0o600); err != nil {
		return nil, err
	}
	disc := []string{"discovery", "--config-dir", cfg, "--grpc-addr", e.addr(discoveryHost, 15010),
		"--debug-addr", e.addr(discoveryHost, 15014), "--log-level", "warn"}
	tokens := map[string]string{}
	if mtls {
		disc = append(disc, "--ca-addr", e.addr(discoveryHost, ca.DefaultPort), "--state-dir", e.state)
		for _, w := range []string{"web", "client"} {
			// A fresh token for each start, recorded by digest where discovery reads it.
			tok, err := ca.IssueLocalToken(filepath.Join(e.state, "workload-tokens.json"), "default/"+w, "default", w+"-sa")
			if err != nil {
				return nil, err
			}
			tokens[w] = tok
		}
	}
	if _, err := p.start("discovery", nil, nil, "", e.lucid, disc...); err != nil {
		return nil, err
	}
	if err := waitHTTP("http://"+e.addr(discoveryHost, 15014)+"/ready", 30*time.Second); err != nil {
		return nil, p.fail(err)
	}
	sidecar := func(name string, host byte) (int, error) {
		args := []string{"sidecar", "--ip", e.ip(host), "--workload", name, "--discovery-address", e.addr(discoveryHost, 15010), "--log-level", "warning"}
		if e.profile != "" {
			args = append(args, "--profiling")
		}
		if mtls {
			args = append(args, "--ca-address", e.addr(discoveryHost, ca.DefaultPort), "--ca-root-cert", filepath.Join(e.state, "root-cert.pem"),
				"--ca-token-fd", "3", "--service-account", name+"-sa")
		}
		env := append([]string{"GOMAXPROCS=1"}, extraEnv...)
		return p.start(name+"-sidecar", env, []byte(tokens[name]), "1", e.lucid, args...)
	}
	if p.server, err = sidecar("web", webSidecarHost); err != nil {
		return nil, p.fail(err)
	}
	if p.client, err = sidecar("client", clientSidecarHost); err != nil {
		return nil, p.fail(err)
	}
	for _, h := range []byte{webSidecarHost, clientSidecarHost} {
		if err := waitHTTP("http://"+e.addr(h, 15020)+"/healthz/ready", 30*time.Second); err != nil {
			return nil, p.fail(err)
		}
	}
	p.addr = e.addr(clientSidecarHost, 15001)
	p.head = "GET http://" + webHost + ":8080/ HTTP/1.1\r\nHost: " + webHost + ":8080\r\n"
	stats := "http://" + e.adminAddr(webSidecarHost) + "/stats"
	inbound := e.ip(webSidecarHost) + "_8080."
	p.serverConns = func() (int64, error) { return statSum(stats, inbound, "downstream_cx_total") }
	return p, p.ready()
}

// adminAddr is a loopback sidecar's admin address: 127.255.x.y:15000 for 127.0.x.y.
func (e *env) adminAddr(host byte) string {
	third := strings.Split(e.net, ".")[2]
	return "127.255." + third + "." + strconv.Itoa(int(host)) + ":15000"
}

// statSum adds the values of the /stats lines holding both parts.
func statSum(url, part, suffix string) (int64, error) {
	resp, err := http.Get(url) //nolint:gosec,noctx // a loopback admin address of the bench's own
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var n int64
	found := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ": ")
		if !ok || !strings.Contains(name, part) || !strings.HasSuffix(name, suffix) {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			continue
		}
		n += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("%s: no stat *%s*%s", url, part, suffix)
	}
	return n, sc.Err()
}
