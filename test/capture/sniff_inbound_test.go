package capture

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/netns"
	"github.com/lucid-mesh/lucid/internal/testutil/upstreamtest"
)

// Protocol sniffing on the inbound side: the pod's workload has three ports behind its
// captured sidecar, two without a protocol (a line protocol, and HTTP on 7080) and one
// declared TCP (a server-first protocol). Clients in the cluster's namespace reach
// each through virtualInbound: the HTTP port is served by the HTTP chain, the line
// protocol by the TCP chain (before sniffing, it was parsed as HTTP and refused), and the
// banner arrives at once on the declared port (nothing waits for the client's bytes). TLS
// the app terminates, on a third undeclared port, is passed through by the TCP chain even
// when its ALPN says http/1.1. The line and TLS ports are the servers' (lineServer, tlsServer).
const inboundSniffConfig = meshConfig + `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: tools, namespace: default}
spec:
  hosts: [tools.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: %[1]s, name: lines}, {number: 7080, name: web}, {number: %[2]s, name: tcp-banner, protocol: TCP}, {number: %[3]s, name: secure}]
  workloadSelector: {labels: {app: productpage}}
`

func TestInboundSniffingThroughCaptureNetns(t *testing.T) {
	netns.Run(t, "TestInboundSniffingThroughCaptureChild", "iptables", "nsenter", "curl")
}

func TestInboundSniffingThroughCaptureChild(t *testing.T) {
	netns.Child(t)
	dir := t.TempDir()
	cluster := clusterNamespace(t)
	applyRules(t, nil)
	peerServer(t, "0.0.0.0:7080")
	lines, banner, secure := lineServer(t, ""), lineServer(t, "220 banner"), tlsServer(t)
	_, sidecarLog := startPod(t, dir, fmt.Sprintf(inboundSniffConfig, lines, banner, secure))
	sidecarReady(t)
	inCluster := inNamespace(cluster)

	t.Run("HTTP on an undeclared port goes through the HTTP chain", func(t *testing.T) {
		out := inCluster(t, "curl", "-s", "-m", "5", "-D", "-", "http://"+podIP+":7080/page")
		if !strings.Contains(out, "HTTP/1.1 200") || !strings.Contains(strings.ToLower(out), "x-envoy-upstream-service-time") || !strings.Contains(out, podIP+":") {
			t.Fatalf("curl http://%s:7080/page from the cluster:\n%s\nwant 200 from the app through the sidecar's HTTP chain", podIP, out)
		}
		testutil.Eventually(t, 5*time.Second, "the access log has the HTTP request on inbound|7080||", func() bool {
			return hasLine(sidecarLog.String(), `"GET /page HTTP/1.1" 200`, "inbound|7080||")
		})
	})
	t.Run("a line protocol on an undeclared port goes through the TCP chain", func(t *testing.T) {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		out := inCluster(t, "env", lineClientEnv+"=1", exe, podIP+":"+lines, "client-first")
		if !strings.HasPrefix(out, "echo hello from "+podIP+":") {
			t.Fatalf("the line client from the cluster: %q, want the app's echo through the sidecar", out)
		}
		testutil.Eventually(t, 5*time.Second, "the access log has the TCP connection on the lines port", func() bool {
			return hasLine(sidecarLog.String(), `"- - -" 0`, "inbound|"+lines+"||")
		})
	})
	t.Run("a server-first protocol on a declared TCP port is not held", func(t *testing.T) {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		out := inCluster(t, "env", lineClientEnv+"=1", exe, podIP+":"+banner, "server-first")
		if !strings.HasPrefix(out, "banner 220 banner\necho hello from "+podIP+":") {
			t.Fatalf("the banner client from the cluster: %q, want the banner before it wrote, then its echo", out)
		}
	})
	t.Run("TLS the app terminates on an undeclared port goes through the TCP chain", func(t *testing.T) {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		out := inCluster(t, "env", lineClientEnv+"=1", exe, podIP+":"+secure, "tls")
		if !strings.HasPrefix(out, "echo hello from "+podIP+":") {
			t.Fatalf("the TLS client from the cluster: %q, want the app's echo over its own TLS", out)
		}
		testutil.Eventually(t, 5*time.Second, "the access log has the TCP connection on the TLS port", func() bool {
			return hasLine(sidecarLog.String(), `"- - -" 0`, "inbound|"+secure+"||")
		})
	})
	t.Run("the metrics count HTTP requests on 7080 and TCP connections on the lines port", func(t *testing.T) {
		var stats string
		testutil.EventuallyWhy(t, 5*time.Second, "inbound HTTP and TCP series", func() (bool, string) {
			_, stats, _ = get("http://" + podIP + ":15090/stats/prometheus")
			return hasLine(stats, `envoy_cluster_upstream_rq_2xx{cluster_name="inbound|7080||"} 1`) &&
				hasLine(stats, `envoy_cluster_upstream_cx_total{cluster_name="inbound|`+lines+`||"} 1`), linesWith(stats, "inbound|")
		})
		if hasLine(stats, `envoy_cluster_upstream_rq_total{cluster_name="inbound|`+lines+`||"} 1`) {
			t.Errorf("the line protocol was counted as an HTTP request:\n%s", linesWith(stats, "inbound|"+lines))
		}
	})
}

// linesWith are the lines of s that contain part.
func linesWith(s, part string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, part) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// hasLine reports whether a line of s contains every one of parts.
func hasLine(s string, parts ...string) bool {
	for line := range strings.SplitSeq(s, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// lineServer serves a line protocol on a port of every address (returned): banner first
// (if any), then each line echoed as "echo <line> from <peer>".
func lineServer(t *testing.T, banner string) string {
	t.Helper()
	addr := upstreamtest.Serve(t, "0.0.0.0", func(c net.Conn, _ int) {
		if banner != "" {
			_, _ = io.WriteString(c, banner+"\n")
		}
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			_, _ = fmt.Fprintf(c, "echo %s from %s\n", sc.Text(), c.RemoteAddr())
		}
	})
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// tlsServer is lineServer behind TLS the app terminates itself (a certificate of its own).
func tlsServer(t *testing.T) string {
	t.Helper()
	leaf := testutil.Issue(t, testutil.CA(t, "app"), false, "tools.default.svc.cluster.local")
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12}
	addr := upstreamtest.Serve(t, "0.0.0.0", func(c net.Conn, _ int) {
		tc := tls.Server(c, cfg)
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		sc := bufio.NewScanner(tc)
		for sc.Scan() {
			_, _ = fmt.Fprintf(tc, "echo %s from %s\n", sc.Text(), c.RemoteAddr())
		}
	})
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// lineClientEnv makes this binary the line client (TestMain): ADDR MODE, where MODE
// server-first reads the banner before it writes, and tls speaks TLS (ALPN http/1.1).
const lineClientEnv = "LUCID_CAPTURE_LINE_CLIENT"

func lineClient(args []string) int {
	var c net.Conn
	var err error
	if args[1] == "tls" {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", args[0],
			&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	} else {
		c, err = net.DialTimeout("tcp", args[0], 5*time.Second)
	}
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	if args[1] == "server-first" {
		banner, err := r.ReadString('\n')
		if err != nil {
			fmt.Println("banner:", err)
			return 1
		}
		fmt.Print("banner " + banner)
	}
	_, _ = io.WriteString(c, "hello\n")
	echo, err := r.ReadString('\n')
	if err != nil {
		fmt.Println("echo:", err)
		return 1
	}
	fmt.Print(echo)
	return 0
}
