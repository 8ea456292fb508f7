// Package hardening tests the mesh against hostile clients, hostile neighbours and careless
// edits: raw bytes on a listener (what an attacker sends, not what a well-behaved client
// library would), another workload calling a proxy's admin API and status controls, and
// config edits that delete, truncate or duplicate files while requests flow. Every test
// runs a real mesh in the test process (control plane, a gateway, sidecars, an app) on
// 127.0.214.0/24 and asserts what a user would see: the exact status or a closed
// connection, the access-log line, and that nothing stays open at any hop afterwards.
//
// The raw-socket suite is written against the listener (bytes in, status or close out),
// not against the HTTP server behind it, so any implementation of the proxy's HTTP/1.1
// serving must pass it.
package hardening

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/agent"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// TestMain stops the shared mesh after the tests, then checks that no goroutine leaked.
func TestMain(m *testing.M) {
	code := meshtest.SharedMain(m).Run()
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// The mesh's addresses.
const (
	gwIP       = "127.0.214.1"   // the ingress gateway (router), HTTP on :8080
	appIP      = "127.0.214.2"   // the app workload's sidecar (inbound :9080)
	appAddr    = "127.0.214.3"   // the app itself
	otherIP    = "127.0.214.4"   // another workload (a client sidecar): the hostile neighbour
	selfieIP   = "127.0.214.20"  // a workload whose app address is its own address: a loop
	cpIP       = "127.0.214.10"  // the control plane
	appAdminIP = "127.0.214.102" // the app sidecar's admin API: a private address, as lucid up gives
	gwListen   = gwIP + ":8080"
	sidecarIn  = appIP + ":9080"
)

// meshFiles is the configuration: a gateway routing /api/, /echo, /h/ and /status/ to
// the app service, the app workload, a client workload.
func meshFiles() map[string]string {
	return map[string]string{
		"gateway.yaml": `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: gw
  namespace: istio-system
  annotations:
    lucid.dev/proxy: router
spec:
  address: ` + gwIP + `
  labels:
    istio: ingressgateway
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: default
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: front
  namespace: default
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - match:
    - uri: {prefix: /api/}
    - uri: {prefix: /echo}
    - uri: {prefix: /h/}
    - uri: {prefix: /status/}
    route:
    - destination: {host: app.default.svc.cluster.local, port: {number: 9080}}
`,
		"app.yaml": `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: app
  namespace: default
spec:
  hosts: [app.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 9080, name: http, protocol: HTTP}
  workloadSelector:
    labels: {app: app}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: app
  namespace: default
  annotations:
    lucid.dev/app-address: ` + appAddr + `
spec:
  address: ` + appIP + `
  labels: {app: app}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: other
  namespace: default
spec:
  address: ` + otherIP + `
  labels: {app: other}
`,
		"loops.yaml": `# selfie's app address is its own address: its inbound endpoint is its own listener.
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: selfie
  namespace: default
spec:
  hosts: [selfie.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 9080, name: http, protocol: HTTP}
  workloadSelector:
    labels: {app: selfie}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: selfie
  namespace: default
  annotations:
    lucid.dev/app-address: ` + selfieIP + `
spec:
  address: ` + selfieIP + `
  labels: {app: selfie}
---
# loop.example:8080 is the gateway: the gateway sends it to the other workload's explicit
# proxy (bounce.internal), which sends it back to the gateway. self.example goes from the
# gateway straight to the gateway.
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: loop-example
  namespace: default
spec:
  hosts: [loop.example]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 8080, name: http, protocol: HTTP}
  endpoints:
  - address: ` + gwIP + `
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: bounce
  namespace: default
spec:
  hosts: [bounce.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 15001, name: http, protocol: HTTP}
  endpoints:
  - address: ` + otherIP + `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: loops
  namespace: default
spec:
  hosts: [self.example, loop.example]
  gateways: [gw]
  http:
  - match:
    - authority: {prefix: self.example}
    route:
    - destination: {host: loop.example, port: {number: 8080}}
  - route:
    - destination: {host: bounce.internal, port: {number: 15001}}
`,
	}
}

// mesh is the running test mesh.
type mesh struct {
	*meshtest.Mesh
	logDir string // the proxies' access logs, one file per workload
	app    *app
}

var shared *mesh

// theMesh is the mesh the tests of the package share (started once; it stops when the
// package's tests end, before TestMain's goroutine check).
func theMesh(t *testing.T) *mesh {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a mesh (control plane, gateway, two sidecars, an app)")
	}
	meshtest.Shared(t, startMesh)
	return shared
}

func startMesh(t testing.TB) *meshtest.Mesh {
	t.Helper()
	logDir := t.TempDir()
	a := newApp()
	workloads := []meshtest.Workload{
		{Name: "gw", IP: gwIP, Namespace: "istio-system", Labels: map[string]string{"istio": "ingressgateway"}, Router: true,
			// A short downstream idle timeout, to see it close keep-alive connections.
			Agent: agent.AgentOptions{ProxyConfig: `{"proxyMetadata": {"ISTIO_META_IDLE_TIMEOUT": "1500ms"}}`}},
		{Name: "app", IP: appIP, AppIP: appAddr, Ports: []int{9080}, App: a.srv, Labels: map[string]string{"app": "app"},
			Agent: agent.AgentOptions{AppAddress: netip.MustParseAddr(appAddr), AdminAddress: netip.MustParseAddr(appAdminIP),
				// The sidecar's limits raised through ProxyConfig, as Istio's runtimeValues do.
				ProxyConfig: `runtimeValues:
  "envoy.reloadable_features.max_request_headers_count": "150"
  "envoy.reloadable_features.max_request_headers_size_kb": "96"
`}},
		{Name: "other", IP: otherIP, Labels: map[string]string{"app": "other"}},
		{Name: "selfie", IP: selfieIP, Labels: map[string]string{"app": "selfie"},
			Agent: agent.AgentOptions{AppAddress: netip.MustParseAddr(selfieIP)}},
	}
	for i := range workloads {
		workloads[i].AccessLog = filepath.Join(logDir, workloads[i].Name+".log")
	}
	m := meshtest.StartWith(t, meshtest.Options{
		GRPCAddr: cpIP + ":0", DebugAddr: cpIP + ":15014",
		PollInterval: 50 * time.Millisecond, Debounce: 20 * time.Millisecond,
	}, meshFiles(), workloads)
	// Ready means listeners and clusters; the gateway's routes follow.
	if err := testutil.Poll(15*time.Second, func() error {
		st, _, err := rawGet(gwListen, "/echo/ready")
		if err == nil && st != http.StatusOK {
			err = fmt.Errorf("GET /echo/ready through the gateway: %d", st)
		}
		return err
	}); err != nil {
		t.Fatalf("%v\nlogs:\n%s", err, m.Logs.String())
	}
	shared = &mesh{Mesh: m, logDir: logDir, app: a}
	return m
}

// app is the application behind the app sidecar. It counts what is open on it: requests
// being handled and connections in the middle of a request (net/http's StateActive).
type app struct {
	srv      *http.Server
	inFlight atomic.Int64
	active   atomic.Int64
	mu       sync.Mutex
	seen     []string          // "METHOD path" of every request that reached it, in order
	headers  map[string]string // the x-envoy-*/x-lucid-* headers of the last request
	attempts map[string]int    // requests per x-request-id
}

// newApp is the app; the mesh serves it on the app's address.
func newApp() *app {
	a := &app{attempts: map[string]int{}}
	a.srv = &http.Server{Handler: http.HandlerFunc(a.serve), ReadHeaderTimeout: 10 * time.Second}
	a.srv.ConnState = a.connState()
	return a
}

// connState tracks, per connection, whether it is in the middle of a request.
func (a *app) connState() func(net.Conn, http.ConnState) {
	var mu sync.Mutex
	busy := map[net.Conn]bool{}
	return func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		was := busy[c]
		now := s == http.StateActive
		switch {
		case now && !was:
			a.active.Add(1)
		case !now && was:
			a.active.Add(-1)
		}
		if s == http.StateClosed || s == http.StateHijacked {
			delete(busy, c)
			return
		}
		busy[c] = now
	}
}

func (a *app) serve(w http.ResponseWriter, r *http.Request) {
	a.inFlight.Add(1)
	defer a.inFlight.Add(-1)
	a.mu.Lock()
	a.seen = append(a.seen, r.Method+" "+r.URL.RequestURI())
	a.headers = map[string]string{}
	for k, vv := range r.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-envoy-") || strings.HasPrefix(lk, "x-lucid-") {
			a.headers[lk] = strings.Join(vv, ",")
		}
	}
	id := r.Header.Get("X-Request-Id")
	a.attempts[id]++
	a.mu.Unlock()
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		return // the body broke: nothing to answer
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/status/"):
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		w.WriteHeader(code)
	case strings.HasPrefix(r.URL.Path, "/echo/slow"):
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(w, "app %s %s %d", r.Method, r.URL.RequestURI(), n)
}

// saw reports whether a request with "METHOD path" reached the app.
func (a *app) saw(req string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.seen {
		if s == req {
			return true
		}
	}
	return false
}

func (a *app) attemptsOf(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.attempts[id]
}

func (a *app) lastHeaders() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.headers
}

// stat reads the sum of the admin API's stats whose name matches re.
func stat(admin, re string) (int64, error) {
	resp, err := http.Get("http://" + admin + "/stats?filter=" + re)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s /stats: %d %s", admin, resp.StatusCode, b)
	}
	var sum int64
	for line := range strings.SplitSeq(string(b), "\n") {
		_, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		sum += n
	}
	return sum, nil
}

// settled waits until nothing stays open at any hop: no connection on the gateway's
// listener (the client closed its own), no upstream request in flight at the gateway or
// the sidecar, no request being handled by the app and no app connection in the middle
// of one.
func (m *mesh) settled(t *testing.T, what string) {
	t.Helper()
	var last string
	err := testutil.Poll(5*time.Second, func() error {
		gwConns, err1 := stat(testutil.Admin(gwIP), regexp.QuoteMeta("listener."+strings.ReplaceAll(gwListen, ":", "_")+".downstream_cx_active"))
		gwReqs, err2 := stat(testutil.Admin(gwIP), "upstream_rq_active$")
		scReqs, err3 := stat(appAdminIP+":15000", "upstream_rq_active$")
		for _, err := range []error{err1, err2, err3} {
			if err != nil {
				return err
			}
		}
		inFlight, active := m.app.inFlight.Load(), m.app.active.Load()
		last = fmt.Sprintf("gateway: %d connections on %s, %d upstream requests; sidecar: %d upstream requests; app: %d requests handled, %d connections mid-request",
			gwConns, gwListen, gwReqs, scReqs, inFlight, active)
		if gwConns != 0 || gwReqs != 0 || scReqs != 0 || inFlight != 0 || active != 0 {
			return fmt.Errorf("%s", last)
		}
		return nil
	})
	if err != nil {
		t.Errorf("%s: something stayed open: %v", what, err)
	}
}

// accessLog waits for a line of proxy's access log that contains want.
func (m *mesh) accessLog(t *testing.T, proxy, want string) {
	t.Helper()
	path := filepath.Join(m.logDir, proxy+".log")
	err := testutil.Poll(3*time.Second, func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), want) {
			return fmt.Errorf("no line with %q in %s's access log", want, proxy)
		}
		return nil
	})
	if err != nil {
		b, _ := os.ReadFile(path)
		t.Errorf("%v:\n%s", err, lastLines(string(b), 5))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// rawGet sends one GET over a fresh connection and returns the status and body.
func rawGet(addr, path string) (int, string, error) {
	r := send(addr, []string{"GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"}, nil)
	return r.status, r.body, r.err
}

// result is what the client saw on its connection.
type result struct {
	status int
	header http.Header
	body   string
	closed bool // the server closed the connection after the answer (or without one)
	err    error
}

// send writes parts on a new connection to addr (between parts, between() runs, e.g. to
// wait until the app has the request), reads one response (none if the connection
// closes first), and whether the server then closes the connection.
func send(addr string, parts []string, between func()) result {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return result{err: err}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	for i, p := range parts {
		if i > 0 && between != nil {
			between()
		}
		if _, err := io.WriteString(c, p); err != nil {
			break // the server may already have answered and closed
		}
	}
	br := bufio.NewReader(c)
	return readResult(c, br)
}

func readResult(c net.Conn, br *bufio.Reader) result {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "connection reset") {
			return result{closed: true}
		}
		return result{err: err}
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := result{status: resp.StatusCode, header: resp.Header, body: string(b), err: err}
	// Closed: the next read ends (EOF or reset) within a second; open: it times out.
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, rerr := br.ReadByte()
	r.closed = rerr != nil && !isTimeout(rerr)
	return r
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
