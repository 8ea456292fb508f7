package capture

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/cli"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/netns"
)

// The mesh through capture: a pod (this test's network namespace, with Istio's rules from
// iptables.Apply) whose sidecar runs as uid 1337 (`lucid sidecar` with
// ISTIO_META_INTERCEPTION_MODE=REDIRECT, as the injector starts it), the control plane
// beside it, and the rest of the cluster in a second namespace behind a veth pair:
//
//	pod 10.10.0.2 (this process = the app, root) ── veth ── cluster: reviews-v1 10.10.0.11:9080,
//	                                                        reviews-v2 10.10.0.12:9080,
//	                                                        external.example.com 10.10.0.50:80, :9080
//
// reviews' ServiceEntry has the address 10.96.0.20; names resolve from the pod's own
// /etc/hosts. The app is an unmodified net/http client with no proxy setting.

// lucidEnv makes the test binary run as `lucid` (TestMain): the sidecar and the control
// plane of the mesh test are this binary's processes.
const lucidEnv = "LUCID_CAPTURE_AS_LUCID"

func TestMain(m *testing.M) {
	if os.Getenv(lucidEnv) == "1" {
		os.Exit(cli.Main(os.Args[1:]))
	}
	if os.Getenv(lineClientEnv) == "1" && len(os.Args) == 3 {
		os.Exit(lineClient(os.Args[1:])) // sniff_inbound_test.go
	}
	os.Exit(m.Run())
}

const (
	podIP      = "10.10.0.2"
	reviewsVIP = "10.96.0.20"
	externalIP = "10.10.0.50"
)

const meshConfig = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: productpage}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: productpage, namespace: default}
spec: {address: ` + podIP + `, labels: {app: productpage, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  addresses: [` + reviewsVIP + `]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec: {address: 10.10.0.11, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, namespace: default}
spec: {address: 10.10.0.12, labels: {app: reviews, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: v3
    match: [{uri: {prefix: /v3}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - name: split
    route:
    - {destination: {host: reviews, subset: v1}, weight: 80}
    - {destination: {host: reviews, subset: v2}, weight: 20}
`

const registryOnly = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress: [{hosts: ["*/*"]}]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`

func TestMeshThroughCaptureNetns(t *testing.T) {
	netns.RunWithMounts(t, "TestMeshThroughCaptureChild", "iptables", "nsenter", "curl")
}

func TestMeshThroughCaptureChild(t *testing.T) {
	netns.Child(t)
	for _, v := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"} {
		t.Setenv(v, "") // the app has no proxy setting
	}
	dir := t.TempDir()
	hosts := filepath.Join(dir, "hosts")
	writeFile(t, hosts, "127.0.0.1 localhost\n"+reviewsVIP+" reviews reviews.default.svc.cluster.local\n"+externalIP+" external.example.com\n")
	netns.Sh(t, "mount --bind "+hosts+" /etc/hosts")

	cluster := clusterNamespace(t)
	startBackends(t, cluster)

	applyRules(t, nil) // istio-init: the injector's rules

	// The app's own ports: 9080 (declared: productpage) and 7777 (undeclared). Each
	// answers with the peer address it sees.
	for _, port := range []string{"9080", "7777"} {
		peerServer(t, "0.0.0.0:"+port)
	}

	configDir, sidecarLog := startPod(t, dir, meshConfig)
	// The sidecar's readiness goes through its own listener 15021 to the agent at
	// 127.0.0.1:15020, with the capture rules in place.
	sidecarReady(t)

	t.Run("the VirtualService's 80/20 split holds for http://reviews:9080/", func(t *testing.T) {
		counts := map[string]int{}
		for range 100 {
			code, body, _ := get("http://reviews:9080/")
			if code != 200 {
				t.Fatalf("GET http://reviews:9080/: %d %q", code, body)
			}
			counts[strings.Fields(body)[0]]++
		}
		if counts["reviews-v1"]+counts["reviews-v2"] != 100 || counts["reviews-v1"] < 60 || counts["reviews-v2"] < 5 {
			t.Fatalf("answers %v, want about 80 reviews-v1 and 20 reviews-v2", counts)
		}
	})
	t.Run("the empty subset gets 503 UH, explained", func(t *testing.T) {
		code, body, h := get("http://reviews:9080/v3")
		want := `UH: subset "v3" of reviews.default.svc.cluster.local selects 0 of 2 endpoints`
		if code != 503 || body != "no healthy upstream" || !strings.HasPrefix(h.Get("x-lucid-error"), want) {
			t.Fatalf("got %d %q, x-lucid-error %q; want 503, no healthy upstream, %q…", code, body, h.Get("x-lucid-error"), want)
		}
	})
	t.Run("a host in no registry passes through under ALLOW_ANY", func(t *testing.T) {
		if code, body, _ := get("http://external.example.com/x"); code != 200 || body != "external /x from "+podIP {
			t.Fatalf("got %d %q", code, body)
		}
	})
	t.Run("inbound to a declared port goes through the sidecar", func(t *testing.T) {
		out := netns.Sh(t, fmt.Sprintf("nsenter -t %d -n curl -s -m 5 http://%s:9080/", cluster, podIP))
		if !strings.HasPrefix(out, podIP+":") {
			t.Fatalf("the app saw %q, want the sidecar's connection from %s", out, podIP)
		}
	})
	t.Run("inbound to an undeclared port passes through from 127.0.0.6", func(t *testing.T) {
		out := netns.Sh(t, fmt.Sprintf("nsenter -t %d -n curl -s -m 5 http://%s:7777/", cluster, podIP))
		if !strings.HasPrefix(out, "127.0.0.6:") {
			t.Fatalf("the app saw %q, want InboundPassthroughCluster's 127.0.0.6", out)
		}
	})
	t.Run("the sidecar's own traffic (uid 1337) is not captured", func(t *testing.T) {
		conn, err := asUID(proxyUID, func() (net.Conn, error) { return net.DialTimeout("tcp", externalIP+":80", 5*time.Second) })
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(conn, "GET /own HTTP/1.1\r\nHost: external.example.com\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.Header.Get("server") == "istio-envoy" || resp.Header.Get("x-envoy-upstream-service-time") != "" || string(b) != "external /own from "+podIP {
			t.Fatalf("got %q (headers %v): want the external host's own answer, not the sidecar's", b, resp.Header)
		}
	})

	writeFile(t, filepath.Join(configDir, "sidecar.yaml"), registryOnly)
	t.Run("REGISTRY_ONLY refuses a host in no registry, explained", func(t *testing.T) {
		testutil.EventuallyWhy(t, 20*time.Second, "REGISTRY_ONLY in force", func() (bool, string) {
			code, body, h := get("http://external.example.com:9080/")
			return code == 502, fmt.Sprintf("%d %.100q x-lucid-error %q", code, body, h.Get("x-lucid-error"))
		})
		code, _, h := get("http://external.example.com:9080/")
		want := `NR: authority "external.example.com:9080" is not a service in the registry and the outbound traffic policy is REGISTRY_ONLY (route block_all)`
		if code != 502 || h.Get("x-lucid-error") != want {
			t.Fatalf("HTTP port: %d, x-lucid-error %q; want 502, %q", code, h.Get("x-lucid-error"), want)
		}
		// A port with no listener: virtualOutbound's default chain, BlackHoleCluster; a new
		// connection is closed and the access log says why (one opened under ALLOW_ANY
		// stays a passthrough, as in Envoy).
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		if code, body, _ := get("http://external.example.com/"); code != 0 {
			t.Fatalf("port 80: %d %q, want the connection closed", code, body)
		}
		testutil.Eventually(t, 5*time.Second, "the access log explains the refused connection", func() bool {
			return strings.Contains(sidecarLog.String(), "no listener for "+externalIP+":80 and the outbound traffic policy is REGISTRY_ONLY (BlackHoleCluster)")
		})
		// reviews is in the registry: still served.
		if code, _, _ := get("http://reviews:9080/"); code != 200 {
			t.Fatalf("reviews under REGISTRY_ONLY: %d", code)
		}
	})
}

// sidecarReady waits for the pod's sidecar to be ready (its own listener 15021, through
// the capture rules, to the agent).
func sidecarReady(t *testing.T) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, "the sidecar ready on :15021", func() bool {
		code, _, _ := get("http://" + podIP + ":15021/healthz/ready")
		return code == 200
	})
}

// inNamespace runs a shell command line (args joined) in the network namespace of pid.
func inNamespace(pid int) func(t *testing.T, args ...string) string {
	return func(t *testing.T, args ...string) string {
		t.Helper()
		return netns.Sh(t, fmt.Sprintf("nsenter -t %d -n ", pid)+strings.Join(args, " "))
	}
}

// get is the app's request: net/http's default client, no proxy.
func get(url string) (int, string, http.Header) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// startPod starts the pod's control plane (discovery on config, in dir/config) and its
// sidecar as uid 1337 with ISTIO_META_INTERCEPTION_MODE=REDIRECT and env, and logs both
// if the test fails. It returns the config directory and the sidecar's log.
func startPod(t *testing.T, dir, config string, env ...string) (string, *testutil.Buffer) {
	t.Helper()
	configDir := filepath.Join(dir, "config")
	if err := os.Mkdir(configDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(configDir, "mesh.yaml"), config)
	exe := executableFor(t, dir)
	cpLog := &testutil.Buffer{}
	start(t, exec.Command(exe, "discovery", "--config-dir", configDir, "--grpc-addr", "127.0.0.1:15010", "--debug-addr", "127.0.0.1:15014"), cpLog, 0)
	sidecarLog := &testutil.Buffer{}
	sidecar := exec.Command(exe, "sidecar", "--ip", podIP, "--workload", "productpage", "--namespace", "default",
		"--discovery-address", "127.0.0.1:15010", "--access-log", "/dev/stdout", "--drain-duration", "1s")
	sidecar.Env = append(append(os.Environ(), "ISTIO_META_INTERCEPTION_MODE=REDIRECT"), env...)
	uid := proxyUID
	if slices.Contains(env, "ISTIO_META_INTERCEPTION_MODE=TPROXY") {
		// IP_TRANSPARENT sockets need NET_ADMIN: as the injector (and Istio's) does, the
		// proxy runs as root in group 1337, which the rules' --gid-owner rules let out.
		sidecar.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: proxyUID}}
		uid = 0
	}
	start(t, sidecar, sidecarLog, uid)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("control plane:\n%s\nsidecar:\n%s", cpLog.String(), sidecarLog.String())
		}
	})
	return configDir, sidecarLog
}

// clusterNamespace creates the cluster's network namespace (a process holding it) joined to
// this one by a veth pair, and returns the holder's pid (for nsenter).
func clusterNamespace(t *testing.T) int {
	t.Helper()
	pid := netns.Peer(t)
	netns.Sh(t, fmt.Sprintf(`ip link add pod0 type veth peer name peer0 && ip link set peer0 netns %d &&
ip addr add %s/24 dev pod0 && ip link set pod0 up && ip route add 10.96.0.0/16 dev pod0 &&
nsenter -t %d -n sh -c 'ip link set lo up && ip link set peer0 up && ip addr add 10.10.0.11/24 dev peer0 && ip addr add 10.10.0.12/24 dev peer0 && ip addr add %s/24 dev peer0'`,
		pid, podIP, pid, externalIP))
	return pid
}

// startBackends runs TestCaptureBackendsChild in the cluster namespace until the test ends.
func startBackends(t *testing.T, cluster int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "-t", fmt.Sprint(cluster), "-n", exe, "-test.run", "^TestCaptureBackendsChild$", "-test.v")
	cmd.Env = append(os.Environ(), netns.ChildEnv+"=TestCaptureBackendsChild")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	release, err := netns.StartTied(cmd) // killed with the test, not with a thread a uid test ends
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); release() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "backends ready" {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("the cluster's backends did not start")
	}
}

// TestCaptureBackendsChild is the cluster's side, started by startBackends: reviews-v1,
// reviews-v2 and an external host, each answering "<name> <path> from <peer ip>".
func TestCaptureBackendsChild(t *testing.T) {
	netns.Child(t)
	for addr, name := range map[string]string{"10.10.0.11:9080": "reviews-v1", "10.10.0.12:9080": "reviews-v2", externalIP + ":80": "external", externalIP + ":9080": "external", "10.10.0.11:8080": "web"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			_, _ = io.WriteString(w, name+" "+r.URL.Path+" from "+host)
		})}
		go func() { _ = srv.Serve(ln) }()
	}
	smtpServer(t, "10.10.0.11:2525", "smtp.example.com") // dns_test.go: server-first
	smtpServer(t, "10.10.0.12:2525", "smtp2.example.com")
	sniffBackends(t) // sniff_test.go
	fmt.Println("backends ready")
	select {} // until the parent kills it
}

// peerServer answers every request with the peer address it sees.
func peerServer(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.RemoteAddr)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// executableFor makes this test binary runnable by the sidecar's uid (a hard link, else a
// copy, in a directory every user may enter).
func executableFor(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil { // the sidecar's uid must enter the test's directories
			t.Fatal(err)
		}
	}
	exe := filepath.Join(bin, "lucid")
	if err := os.Link(self, exe); err != nil {
		b, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		writeFileMode(t, exe, string(b), 0o755)
	}
	return exe
}

// start runs cmd as `lucid` (as uid unless 0) with its output in log, stopped with SIGTERM
// at the end of the test.
func start(t *testing.T, cmd *exec.Cmd, log io.Writer, uid int) {
	t.Helper()
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, lucidEnv+"=1")
	cmd.Stdout, cmd.Stderr = log, log
	if uid != 0 {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}
	}
	release, err := netns.StartTied(cmd) // nothing left if the test dies
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

func writeFile(t *testing.T, path, body string) { t.Helper(); writeFileMode(t, path, body, 0o644) }

func writeFileMode(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
}
