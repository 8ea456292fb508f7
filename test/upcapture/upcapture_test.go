// Package upcapture tests `lucid up --capture` end to end: examples/bookinfo-lite with every
// workload in a pod of its own, inside a private network (and mount) namespace created for
// the test, reached with `lucid exec` and unmodified clients (curl, getent, Go's net/http)
// that find services by name through the agents' DNS proxies; ratings keeps an address of
// its own outside the pod range, and a TCP ServiceEntry without an address (a server-first
// line protocol on the test's side of the bridge) is reached through its auto-allocated one.
package upcapture

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/lucid-mesh/lucid/internal/cli"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/netns"
	"github.com/lucid-mesh/lucid/internal/testutil/upstreamtest"
)

// lucidEnv makes the test binary run as `lucid` (TestMain): up, its children and `lucid
// exec` are this binary's processes.
const lucidEnv = "LUCID_UPCAPTURE_AS_LUCID"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == clientArg {
		os.Exit(client())
	}
	if len(os.Args) > 2 && os.Args[1] == linesArg {
		os.Exit(linesClient(os.Args[2]))
	}
	if os.Getenv(lucidEnv) == "1" {
		os.Exit(cli.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func TestUpCaptureNetns(t *testing.T) {
	netns.RunWithMounts(t, "TestUpCaptureChild", "iptables", "iptables-restore", "iptables-save", "curl", "env", "getent", "timeout")
}

// ratingsIP is ratings' own address in the test (outside the pod range).
const ratingsIP = "192.168.77.5"

// mesh is one running `lucid up --capture`.
type mesh struct {
	cmd     *exec.Cmd
	log     *testutil.Buffer
	release func()
	done    chan struct{}
}

func TestUpCaptureChild(t *testing.T) {
	netns.Child(t)
	dir := t.TempDir()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil { // the pods' uids read their files under it, as under /run/lucid
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "bookinfo-lite")
	netns.Sh(t, "cp -r ../../examples/bookinfo-lite "+cfg+" && rm -rf "+cfg+"/certs")
	// ratings keeps an address of its own, as a WorkloadEntry of a VM would have.
	ratings := filepath.Join(cfg, "ratings.yaml")
	b, err := os.ReadFile(ratings)
	if err != nil {
		t.Fatal(err)
	}
	b = regexp.MustCompile(`(?m)^  address: .*$`).ReplaceAll(b, []byte("  address: "+ratingsIP))
	if err := os.WriteFile(ratings, b, 0o644); err != nil {
		t.Fatal(err)
	}
	linesPort := startLines(t)
	if err := os.WriteFile(filepath.Join(cfg, "lines.yaml"), fmt.Appendf(nil, linesEntry, linesPort), 0o644); err != nil {
		t.Fatal(err)
	}
	// The machine's resolver (this namespace's): it knows one name outside the mesh.
	startMachineResolver(t)
	netns.Sh(t, "echo 'nameserver 127.0.0.1' > "+dir+"/resolv.conf && mount --bind "+dir+"/resolv.conf /etc/resolv.conf")
	t.Setenv("LUCID_RUN_DIR", filepath.Join(dir, "run"))
	for _, v := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"} {
		t.Setenv(v, "") // the clients have no proxy setting
	}

	t.Run("without root, up --capture says what it needs", func(t *testing.T) {
		exe := filepath.Join(dir, "lucid") // where nobody may run it
		netns.Sh(t, "cp "+self(t)+" "+exe+" && chmod 755 "+exe)
		cmd := exec.Command(exe, "up", "--capture", cfg)
		cmd.Env = append(os.Environ(), lucidEnv+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		b, err := cmd.CombinedOutput()
		out := string(b)
		if code := exitCode(err); code != 1 || !strings.Contains(out, "lucid up --capture needs root") || !strings.Contains(out, "CAP_NET_ADMIN") {
			t.Fatalf("exit %d, output:\n%s\nwant exit 1 and what it needs", code, out)
		}
	})

	m := startUp(t, cfg)
	t.Run("a WorkloadEntry's own address is its pod's", func(t *testing.T) {
		if !regexp.MustCompile(`ratings +` + regexp.QuoteMeta(ratingsIP) + ` +sidecar uid 1337`).MatchString(m.log.String()) {
			t.Fatalf("the pods listed by up:\n%s", m.log.String())
		}
		name := lookup(t, "ratings")
		out := execIn(t, "curl", "curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code} %{remote_ip}", "http://ratings:9080/")
		if out != "200 "+name {
			t.Fatalf("curl http://ratings:9080/ from the curl pod: %q, want 200 from ratings' name address %s", out, name)
		}
		if out := execIn(t, "ratings", "ip", "-4", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, ratingsIP+"/32") {
			t.Fatalf("ratings' eth0: %s", out)
		}
	})
	t.Run("names resolve in a pod through the agent's DNS proxy", func(t *testing.T) {
		// The pod's files name no service: the answers come from the name table.
		if hosts := execIn(t, "curl", "cat", "/etc/hosts"); strings.Contains(hosts, "reviews") || strings.Contains(hosts, "240.240.") {
			t.Fatalf("the curl pod's /etc/hosts lists services:\n%s", hosts)
		}
		resolv := execIn(t, "curl", "cat", "/etc/resolv.conf")
		for _, want := range []string{"search default.svc.cluster.local svc.cluster.local cluster.local\n", "nameserver 10.213.0.1\n", "options ndots:5\n"} {
			if !strings.Contains(resolv, want) {
				t.Fatalf("the curl pod's resolv.conf lacks %q:\n%s", want, resolv)
			}
		}
		short, full := lookup(t, "reviews"), lookup(t, "reviews.default.svc.cluster.local")
		if !strings.HasPrefix(short, "240.240.") || short != full {
			t.Fatalf("reviews is %s, reviews.default.svc.cluster.local %s: want one auto-allocated address", short, full)
		}
		if out := netns.Sh(t, "getent hosts reviews || true"); out != "" {
			t.Fatalf("the test's own namespace resolves reviews (%q): the pod's names leaked", out)
		}
	})
	t.Run("names outside the mesh go to the machine's resolver", func(t *testing.T) {
		if got := lookup(t, machineName); got != machineAddr {
			t.Fatalf("%s in the curl pod: %q, want the machine resolver's %s", machineName, got, machineAddr)
		}
		// Unknown everywhere: every search-path expansion and the name itself are answered
		// NXDOMAIN (getent exits 2), well before the resolver's 5 s timeout would (124).
		out, err := lucid(t, "exec", "curl", "--", "timeout", "4", "getent", "hosts", "nothing.example.test")
		if code := exitCode(err); code != 2 {
			t.Fatalf("getent hosts nothing.example.test: exit %d (%q), want 2 (not found) at once", code, out)
		}
	})
	t.Run("a TCP ServiceEntry without an address is reached by name", func(t *testing.T) {
		out := execIn(t, "curl", self(t), linesArg, "lines.example.test:"+linesPort)
		if !strings.Contains(out, "banner 220 lines ready\n") || !strings.Contains(out, "echo hello\n") {
			t.Fatalf("the line client in the curl pod:\n%s", out)
		}
		if remote := regexp.MustCompile(`remote (\S+)`).FindStringSubmatch(out); remote == nil || !strings.HasPrefix(remote[1], "240.240.") {
			t.Fatalf("the client dialled %v, want an auto-allocated address:\n%s", remote, out)
		}
	})
	t.Run("curl reaches http://reviews:9080/ through the sidecar, as nobody", func(t *testing.T) {
		out := execIn(t, "curl", "curl", "-s", "-m", "10", "-D", "-", "http://reviews:9080/")
		if !strings.Contains(out, "HTTP/1.1 200") || !strings.Contains(out, `"service": "reviews"`) || !strings.Contains(out, `"service": "ratings"`) {
			t.Fatalf("curl http://reviews:9080/ in the curl pod:\n%s", out)
		}
		// reviews' sidecar took it on 15006 as mutual TLS (the SNI of auto mTLS).
		inbound := regexp.MustCompile(`reviews-v[12] sidecar +\| .*"GET / HTTP/1.1" 200 .* inbound\|9080\|\| \S+ \S+:15006 \S+ outbound_\.9080_\.v[12]_\.reviews\.default\.svc\.cluster\.local `)
		testutil.Eventually(t, 5*time.Second, "reviews' sidecar logs the request it took by capture over mutual TLS", func() bool {
			return inbound.MatchString(m.log.String())
		})
		if id := execIn(t, "curl", "id", "-u"); strings.TrimSpace(id) != "65534" {
			t.Fatalf("lucid exec runs as uid %q, want 65534 (nobody)", id)
		}
	})
	t.Run("the empty subset gets 503 UH, explained, through capture", func(t *testing.T) {
		out := execIn(t, "curl", "curl", "-s", "-m", "10", "-i", "http://reviews:9080/v3")
		want := `X-Lucid-Error: UH: subset "v3" of reviews.default.svc.cluster.local selects 0 of 3 endpoints`
		if !strings.Contains(out, "HTTP/1.1 503") || !strings.Contains(out, want) || !strings.HasSuffix(out, "no healthy upstream") {
			t.Fatalf("curl http://reviews:9080/v3:\n%s\nwant 503, %q, no healthy upstream", out, want)
		}
		testutil.Eventually(t, 5*time.Second, "the curl sidecar's access log shows the captured request", func() bool {
			return strings.Contains(m.log.String(), `"GET /v3 HTTP/1.1" 503 UH`)
		})
	})
	t.Run("the 80/20 split holds for Go's net/http client", func(t *testing.T) {
		// This binary, from a directory nobody may enter: lucid exec runs it all the same.
		out := execIn(t, "curl", self(t), clientArg)
		var counts map[string]int
		for line := range strings.SplitSeq(out, "\n") {
			if js, ok := strings.CutPrefix(line, "versions "); ok {
				if err := json.Unmarshal([]byte(js), &counts); err != nil {
					t.Fatal(err)
				}
			}
		}
		if counts["v1"]+counts["v2"] != 200 || counts["v1"] < 140 || counts["v2"] < 20 {
			t.Fatalf("versions answering %v (client output:\n%s)\nwant about 160 v1 and 40 v2 of 200", counts, out)
		}
	})
	t.Run("lucid why and proxy-config listeners show the captured path", func(t *testing.T) {
		out, err := lucid(t, "why", "curl", "http://reviews:9080/v3")
		if err != nil || !strings.Contains(out, "0.0.0.0_9080 (outbound listener for port 9080)") || !strings.Contains(out, "503 UH") {
			t.Fatalf("lucid why: %v\n%s", err, out)
		}
		out, err = lucid(t, "proxy-config", "listeners", "curl")
		// Istio's addresses, as istioctl shows them: virtualOutbound and virtualInbound on
		// 0.0.0.0 too, not the pod's address.
		listed := func(port, dest string) bool {
			return regexp.MustCompile(`(?m)^0\.0\.0\.0\s+` + port + `\s+ALL\s+` + regexp.QuoteMeta(dest) + `$`).MatchString(out)
		}
		if err != nil || !listed("9080", "Route: 9080") || !listed("15001", "PassthroughCluster") || !listed("15006", "InboundPassthroughCluster") {
			t.Fatalf("lucid proxy-config listeners curl: %v\n%s", err, out)
		}
	})
	m.stop(t)
	t.Run("Ctrl-C leaves nothing behind", func(t *testing.T) { assertClean(t, dir) })

	t.Run("after a crash the next up cleans up and runs", func(t *testing.T) {
		crashed := startUp(t, cfg)
		_ = crashed.cmd.Process.Kill() // SIGKILL: no cleanup of its own
		<-crashed.done
		testutil.Eventually(t, 10*time.Second, "the pods die with up", func() bool {
			return !strings.Contains(netns.Sh(t, "ps -eo args"), "internal-pod-hold --hosts "+dir)
		})
		again := startUp(t, cfg)
		if !strings.Contains(again.log.String(), "removed lucidbr0") {
			t.Errorf("up did not say it removed the bridge left behind:\n%s", again.log.String())
		}
		if out := execIn(t, "curl", "curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", "http://productpage:9080/"); out != "200" {
			t.Errorf("productpage after the restart: %q", out)
		}
		again.stop(t)
		assertClean(t, dir)
	})
}

// linesEntry is a TCP service outside the mesh with no address, on port %[1]s: the agents'
// DNS proxies answer its name with an auto-allocated address, which the pods' rules capture.
// Its endpoint is the bridge's address, where startLines listens.
const linesEntry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: lines, namespace: default}
spec:
  hosts: [lines.example.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: %[1]s, name: tcp-lines, protocol: TCP}]
  endpoints: [{address: 10.213.0.1}]
`

// startLines serves a server-first line protocol on a port of this namespace (returned):
// a banner, then each line echoed.
func startLines(t *testing.T) string {
	t.Helper()
	addr := upstreamtest.Serve(t, "0.0.0.0", func(c net.Conn, _ int) {
		_, _ = io.WriteString(c, "220 lines ready\n")
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			_, _ = io.WriteString(c, "echo "+sc.Text()+"\n")
		}
	})
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// The machine's resolver knows machineName.
const (
	machineName = "db.example.test"
	machineAddr = "192.168.77.9"
)

// startMachineResolver serves DNS on 127.0.0.1:53 of this namespace (UDP): machineName, and
// NXDOMAIN for the rest.
func startMachineResolver(t *testing.T) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg)
		q := req.Question[0]
		if q.Name != machineName+"." {
			_ = w.WriteMsg(resp.SetRcode(req, dns.RcodeNameError))
			return
		}
		resp.SetReply(req)
		if q.Qtype == dns.TypeA {
			rr, _ := dns.NewRR(machineName + ". 60 IN A " + machineAddr)
			resp.Answer = append(resp.Answer, rr)
		}
		_ = w.WriteMsg(resp)
	})}
	started, done := make(chan struct{}), make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe(); close(done) }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown(); <-done })
}

// lookup resolves name in the curl pod (getent, as any libc program does) and returns its
// first address.
func lookup(t *testing.T, name string) string {
	t.Helper()
	f := strings.Fields(execIn(t, "curl", "getent", "ahostsv4", name))
	if len(f) == 0 {
		t.Fatalf("getent ahostsv4 %s in the curl pod: no address", name)
	}
	return f[0]
}

// linesArg makes this binary a client of the line protocol (TestMain): it dials the
// address by name, reads the banner before writing (server first), sends one line.
const linesArg = "upcapture-lines"

func linesClient(addr string) int {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Printf("remote %s\n", c.RemoteAddr().(*net.TCPAddr).IP)
	r := bufio.NewReader(c)
	banner, err := r.ReadString('\n')
	if err != nil {
		fmt.Println("banner:", err)
		return 1
	}
	fmt.Printf("banner %s", banner)
	_, _ = io.WriteString(c, "hello\n")
	echo, err := r.ReadString('\n')
	if err != nil {
		fmt.Println("echo:", err)
		return 1
	}
	fmt.Print(echo)
	return 0
}

// clientArg makes this binary the Go client (TestMain), run in the curl pod by lucid exec:
// an unmodified net/http client, no proxy, 200 requests by name; it prints which versions
// answered.
const clientArg = "upcapture-client"

func client() int {
	c := &http.Client{Timeout: 10 * time.Second}
	counts := map[string]int{}
	for range 200 {
		resp, err := c.Get("http://reviews:9080/")
		if err != nil {
			fmt.Println(err)
			return 1
		}
		var body struct{ Version string }
		err = json.NewDecoder(resp.Body).Decode(&body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			fmt.Printf("GET http://reviews:9080/: %d %v\n", resp.StatusCode, err)
			return 1
		}
		counts[body.Version]++
	}
	js, _ := json.Marshal(counts)
	fmt.Printf("versions %s\n", js)
	return 0
}

// startUp runs `lucid up --capture cfg` until its welcome says the mesh is up.
func startUp(t *testing.T, cfg string) *mesh {
	t.Helper()
	m := &mesh{log: &testutil.Buffer{}, done: make(chan struct{})}
	m.cmd = exec.Command(self(t), "up", "--capture", cfg)
	m.cmd.Env = append(os.Environ(), lucidEnv+"=1")
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	var err error
	if m.release, err = netns.StartTied(m.cmd); err != nil {
		t.Fatal(err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			_ = m.cmd.Process.Kill()
			<-m.done
			m.release()
		})
		if t.Failed() {
			t.Logf("lucid up --capture:\n%s", m.log.String())
		}
	})
	testutil.EventuallyWhy(t, 60*time.Second, "lucid up --capture ready", func() (bool, string) {
		select {
		case <-m.done:
			t.Fatalf("lucid up --capture exited:\n%s", m.log.String())
		default:
		}
		return strings.Contains(m.log.String(), "press Ctrl-C to stop"), lastLines(m.log.String(), 5)
	})
	return m
}

// stop is Ctrl-C: SIGINT, then up must exit 0 within its stop grace.
func (m *mesh) stop(t *testing.T) {
	t.Helper()
	_ = m.cmd.Process.Signal(os.Interrupt)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("lucid up --capture did not stop after SIGINT:\n%s", lastLines(m.log.String(), 20))
	}
	if err := m.cmd.ProcessState; !err.Success() {
		t.Fatalf("lucid up --capture exited %v after SIGINT:\n%s", m.cmd.ProcessState, lastLines(m.log.String(), 20))
	}
	m.release()
}

// assertClean checks that no pod, link, rule or pod file is left.
func assertClean(t *testing.T, dir string) {
	t.Helper()
	if links := netns.Sh(t, "ip -o link show"); strings.Contains(links, "lucid") {
		t.Errorf("links left:\n%s", links)
	}
	if addrs := netns.Sh(t, "ip -o -4 addr show"); strings.Contains(addrs, "10.213.") {
		t.Errorf("addresses left:\n%s", addrs)
	}
	if rules := netns.Sh(t, "iptables-save"); strings.Contains(rules, "ISTIO") {
		t.Errorf("rules left in this namespace:\n%s", rules)
	}
	for line := range strings.SplitSeq(netns.Sh(t, "ps -eo pid,ppid,etime,args"), "\n") {
		if strings.Contains(line, "internal-pod-") && strings.Contains(line, dir) {
			t.Errorf("a pod process is left: %s", line)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "run", "pods")); !os.IsNotExist(err) {
		t.Errorf("the pods' files are left in %s (%v)", filepath.Join(dir, "run", "pods"), err)
	}
}

// lucid runs this binary as lucid and returns its output.
func lucid(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(self(t), args...)
	cmd.Env = append(os.Environ(), lucidEnv+"=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// execIn is `lucid exec workload -- argv...`; it fails t if the command fails.
func execIn(t *testing.T, workload string, argv ...string) string {
	t.Helper()
	out, err := lucid(t, append([]string{"exec", workload, "--"}, argv...)...)
	if err != nil {
		t.Fatalf("lucid exec %s -- %s: %v\n%s", workload, strings.Join(argv, " "), err, out)
	}
	return out
}

func self(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func exitCode(err error) int {
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func TestExecSaysWhatIsWrong(t *testing.T) {
	t.Setenv("LUCID_RUN_DIR", t.TempDir())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"exec", "curl", "--", "true"}, "no pod \"curl\": is `lucid up --capture` running?"},
		{[]string{"exec", "curl", "true"}, "exec: give the command after --: lucid exec curl -- curl http://reviews:9080/"},
		{[]string{"exec"}, "exec needs a workload and a command"},
	} {
		out, err := lucid(t, tc.args...)
		if exitCode(err) != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("lucid %s: exit %d, %q; want exit 1 and %q", strings.Join(tc.args, " "), exitCode(err), out, tc.want)
		}
	}
}

func TestExecRefusesAPodWhoseHolderIsGone(t *testing.T) {
	run := t.TempDir()
	t.Setenv("LUCID_RUN_DIR", run)
	pod := filepath.Join(run, "pods", "curl")
	if err := os.MkdirAll(pod, 0o755); err != nil {
		t.Fatal(err)
	}
	// A pid that is running, but is no pod's holder (this test).
	if err := os.WriteFile(filepath.Join(pod, "holder.pid"), []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := lucid(t, "exec", "curl", "--", "true")
	if exitCode(err) != 1 || !strings.Contains(out, `pod "curl" is gone (its holder, pid `) {
		t.Fatalf("exit %d, %q", exitCode(err), out)
	}
}
