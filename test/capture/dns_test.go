package capture

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/kube/iptables"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/netns"
)

// DNS through the mesh: the same pod as TestMeshThroughCaptureNetns, but with a pod's own
// resolv.conf (the cluster resolver 10.96.0.10, Kubernetes' search domains, ndots:5) and
// no host names anywhere: the capture rules send the app's port-53 queries to the agent's
// DNS proxy (ISTIO_META_DNS_CAPTURE), which answers from the control plane's name table,
// and ServiceEntries without an address get one from 240.240.0.0/16
// (ISTIO_META_DNS_AUTO_ALLOCATE). The cluster resolver does not exist: every name the test
// uses must come from the mesh.

const clusterDNS = "10.96.0.10"

const dnsMeshConfig = meshConfig + `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: smtp, namespace: default}
spec:
  hosts: [smtp.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 2525, name: tcp-smtp, protocol: TCP}]
  endpoints: [{address: 10.10.0.11}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: smtp2, namespace: default}
spec:
  hosts: [smtp2.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 2525, name: tcp-smtp, protocol: TCP}]
  endpoints: [{address: 10.10.0.12}]
` + sniffMeshConfig

// smtpBanner is what the server-first backend host says before the client says anything.
func smtpBanner(host string) string { return "220 " + host + " ESMTP ready" }

func TestDNSThroughCaptureNetns(t *testing.T) {
	netns.RunWithMounts(t, "TestDNSThroughCaptureChild", "iptables", "curl")
}

func TestDNSThroughCaptureChild(t *testing.T) {
	netns.Child(t)
	for _, v := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"} {
		t.Setenv(v, "")
	}
	dir := t.TempDir()
	// The pod's /etc: its resolver and search path as the kubelet writes them, no host
	// names but localhost, and name lookups through files then DNS only.
	for name, body := range map[string]string{
		"resolv.conf":   "nameserver " + clusterDNS + "\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
		"hosts":         "127.0.0.1 localhost\n",
		"nsswitch.conf": "hosts: files dns\n",
	} {
		writeFile(t, filepath.Join(dir, name), body)
		netns.Sh(t, "mount --bind "+filepath.Join(dir, name)+" /etc/"+name)
	}

	cluster := clusterNamespace(t)
	netns.Sh(t, "ip route add default dev pod0") // a pod has a default route: 240.240.0.0/16 is routable
	startBackends(t, cluster)

	// istio-init with DNS capture: the resolver of the pod's resolv.conf.
	applyRules(t, func(c *iptables.Config) {
		c.RedirectDNS, c.DNSServers = true, []netip.Addr{netip.MustParseAddr(clusterDNS)}
	})

	_, sidecarLog := startPod(t, dir, dnsMeshConfig, "ISTIO_META_DNS_CAPTURE=true", "ISTIO_META_DNS_AUTO_ALLOCATE=true")
	sidecarReady(t)
	testutil.Eventually(t, 10*time.Second, "the DNS proxy has its name table", func() bool {
		return strings.Contains(sidecarLog.String(), "name table received")
	})

	t.Run("an unmodified net/http client reaches http://reviews:9080/ by name", func(t *testing.T) {
		addrs, err := net.LookupHost("reviews")
		if err != nil || len(addrs) != 1 || addrs[0] != reviewsVIP {
			t.Fatalf("reviews resolves to %v (%v), want the ServiceEntry's address %s", addrs, err, reviewsVIP)
		}
		counts := map[string]int{}
		for range 50 {
			code, body, _ := get("http://reviews:9080/")
			if code != 200 {
				t.Fatalf("GET http://reviews:9080/: %d %q", code, body)
			}
			counts[strings.Fields(body)[0]]++
		}
		if counts["reviews-v1"]+counts["reviews-v2"] != 50 || counts["reviews-v2"] == 0 {
			t.Fatalf("answers %v, want the VirtualService's split of reviews-v1 and reviews-v2", counts)
		}
	})
	t.Run("curl reaches http://reviews:9080/ by name", func(t *testing.T) {
		out := netns.Sh(t, "curl -s -m 5 -w ' %{http_code}' http://reviews:9080/")
		if !strings.HasPrefix(out, "reviews-v") || !strings.HasSuffix(out, " 200") {
			t.Fatalf("curl: %q, want a reviews answer and 200", out)
		}
		out = netns.Sh(t, "curl -s -m 5 -o /dev/null -w '%{http_code}' http://reviews.default.svc.cluster.local:9080/v3")
		if out != "503" {
			t.Fatalf("curl /v3 (the empty subset): %q, want 503", out)
		}
	})
	sniffingSubtests(t, sidecarLog) // sniff_test.go
	t.Run("a TCP ServiceEntry without an address works through its auto-allocated one", func(t *testing.T) {
		addrs, err := net.LookupHost("smtp.example.com")
		if err != nil || len(addrs) != 1 || !strings.HasPrefix(addrs[0], "240.240.") {
			t.Fatalf("smtp.example.com resolves to %v (%v), want an address from 240.240.0.0/16", addrs, err)
		}
		// A server-first protocol on a declared TCP port: the banner arrives before the
		// client writes anything (nothing waits to sniff the client's first bytes).
		conn, err := net.DialTimeout("tcp", "smtp.example.com:2525", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(conn)
		banner, err := r.ReadString('\n')
		if err != nil || strings.TrimSpace(banner) != smtpBanner("smtp.example.com") {
			t.Fatalf("banner %q (%v), want %q", banner, err, smtpBanner("smtp.example.com"))
		}
		fmt.Fprintf(conn, "EHLO pod\r\n")
		if line, err := r.ReadString('\n'); err != nil || strings.TrimSpace(line) != "250 hello pod from "+podIP {
			t.Fatalf("reply %q (%v)", line, err)
		}
		conn.Close() // a TCP connection's access log line is written when it ends
		testutil.Eventually(t, 5*time.Second, "the access log shows the connection through the service's cluster", func() bool {
			return strings.Contains(sidecarLog.String(), "outbound|2525||smtp.example.com")
		})
	})
	t.Run("two TCP ServiceEntries on one port are told apart by their addresses", func(t *testing.T) {
		for _, host := range []string{"smtp.example.com", "smtp2.example.com"} {
			conn, err := net.DialTimeout("tcp", host+":2525", 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			banner, err := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if err != nil || strings.TrimSpace(banner) != smtpBanner(host) {
				t.Fatalf("%s: banner %q (%v), want %q", host, banner, err, smtpBanner(host))
			}
		}
	})
}

// smtpServer speaks first (its banner), then answers each line with the peer's address.
func smtpServer(t *testing.T, addr, host string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	serveEach(ln, func(c net.Conn) {
		peer, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		fmt.Fprintf(c, "%s\r\n", smtpBanner(host))
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			fmt.Fprintf(c, "250 hello %s from %s\r\n", strings.TrimPrefix(sc.Text(), "EHLO "), peer)
		}
	})
}

// serveEach runs serve for each connection ln accepts (closing it after), until ln closes.
func serveEach(ln net.Listener, serve func(net.Conn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
}
