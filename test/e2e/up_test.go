// Package e2e runs the built lucid binary as a user would. The tests build cmd/lucid into
// a temporary directory, start `lucid up` on an example and talk to the mesh over loopback.
package e2e

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// repoRoot is the module root, two directories up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// buildLucid builds cmd/lucid into a temporary directory, with make build's compiler flags
// (-trimpath), so the two share the build cache.
func buildLucid(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lucid")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/lucid")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/lucid: %v\n%s", err, out)
	}
	return bin
}

// The addresses examples/bookinfo-lite listens on: discovery, the gateway, every sidecar's
// admin (on its private address), outbound, status and inbound ports, and every app.
var bookinfoAddrs = []string{
	"127.0.0.1:15010", "127.0.0.1:15014",
	"127.255.0.1:15000", "127.0.0.1:15021", "127.0.0.1:8080", "127.0.0.1:8443",
	"127.255.10.9:15000", "127.0.10.9:15001", "127.0.10.9:15020",
	"127.255.10.1:15000", "127.0.10.1:15001", "127.0.10.1:15020", "127.0.10.1:9080",
	"127.0.10.2:15001", "127.0.10.2:9080", "127.0.10.3:9080", "127.0.10.4:9080", "127.0.10.5:9080",
	"127.0.20.1:9080", "127.0.20.2:9080", "127.0.20.3:9080", "127.0.20.4:9080", "127.0.20.5:9080",
}

func TestUpBookinfo(t *testing.T) {
	if !begin(t, "builds lucid and runs `lucid up examples/bookinfo-lite`") {
		return
	}
	bin := buildLucid(t)
	run := startUp(t, bin, "bookinfo-lite")
	work, out, exited := run.dir, run.out, run.exited
	// As a user does: the summary, printed once every app serves. Before it, productpage
	// may answer while a reviews app does not listen yet (its call then gets 503 UF).
	out.WaitFor(t, "press Ctrl-C to stop", time.Minute)

	// A request through the client workload's sidecar, as the README's tour shows.
	proxy, _ := url.Parse("http://127.0.10.9:15001")
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{Proxy: http.ProxyURL(proxy), DisableKeepAlives: true},
	}
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, b, err := fetch(client, "http://productpage:9080/")
		if err == nil && status == http.StatusOK {
			body = b
			break
		}
		select {
		case err := <-exited:
			run.stopped = true
			t.Fatalf("lucid up exited early (%v):\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 200 from productpage through 127.0.10.9:15001 within 30 s (last: %d %q %v); lucid up said:\n%s", status, b, err, out.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, want := range []string{`"service": "productpage"`, `"service": "reviews"`} {
		if !strings.Contains(body, want) {
			t.Errorf("productpage's answer lacks %s:\n%s", want, body)
		}
	}

	checkGateway(t, filepath.Join(work, "bookinfo-lite", "certs", "ca.crt"))

	// Ctrl-C with a request in flight at the gateway (its headers half sent): the gateway
	// lets it finish, and lucid up says what it waits for.
	inflight, err := net.Dial("tcp", "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer inflight.Close()
	if _, err := io.WriteString(inflight, "GET /productpage HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the gateway has read the first bytes: the connection is active
	if err := run.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	const waiting = "waiting for istio-ingressgateway to drain its open connections"
	out.WaitFor(t, waiting, 5*time.Second) // with a request in flight
	if _, err := io.WriteString(inflight, "\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = inflight.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(inflight), nil)
	if err != nil {
		t.Fatalf("the request in flight at Ctrl-C got no answer: %v\n%s", err, out.String())
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("the request in flight at Ctrl-C: %s (Connection: close %v), want 200 and the connection closed", resp.Status, resp.Close)
	}
	select {
	case err := <-exited:
		run.stopped = true
		if err != nil {
			t.Errorf("lucid up after Ctrl-C: %v, want exit status 0\n%s", err, out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("lucid up did not exit within 15 s of SIGINT:\n%s", out.String())
	}

	// Nothing left: no listener, no process of the group.
	for _, a := range bookinfoAddrs {
		if c, err := net.DialTimeout("tcp", a, 200*time.Millisecond); err == nil {
			_ = c.Close()
			t.Errorf("%s still listening after lucid up exited", a)
		}
	}
	if left := processesOf(bin); len(left) > 0 {
		t.Errorf("processes still running from %s: %v", bin, left)
	}
	if err := syscall.Kill(-run.pgid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still exists (kill -0: %v)", run.pgid, err)
	}
	if t.Failed() {
		t.Logf("lucid up said:\n%s", out.String())
	}
}

// upRun is one `lucid up` started by a test.
type upRun struct {
	dir     string // the working directory, holding a copy of the example
	out     *testutil.Buffer
	cmd     *exec.Cmd
	pgid    int
	exited  chan error
	stopped bool // exited was read
}

// startUp runs `lucid up <example>` on a copy of examples/<example> (so the certificates it
// generates stay out of the tree); the cleanup kills whatever is left.
func startUp(t *testing.T, bin, example string) *upRun {
	t.Helper()
	r := &upRun{dir: t.TempDir(), out: &testutil.Buffer{}, exited: make(chan error, 1)}
	if err := os.CopyFS(filepath.Join(r.dir, example), os.DirFS(filepath.Join(repoRoot(t), "examples", example))); err != nil {
		t.Fatal(err)
	}
	_ = os.RemoveAll(filepath.Join(r.dir, example, "certs"))
	r.cmd = exec.Command(bin, "up", example)
	r.cmd.Dir = r.dir
	r.cmd.Stdout = r.out
	r.cmd.Stderr = r.out
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so the test can find stragglers
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.pgid = r.cmd.Process.Pid
	go func() { r.exited <- r.cmd.Wait() }()
	t.Cleanup(func() {
		if !r.stopped {
			_ = syscall.Kill(-r.pgid, syscall.SIGKILL)
			if err := <-r.exited; err != nil {
				t.Logf("lucid up killed: %v", err)
			}
		}
		killStragglers(bin)
	})
	return r
}

func fetch(c *http.Client, u string) (int, string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// processesOf lists live (non-zombie) processes whose executable is bin. Children run in
// their own process groups, so the group check alone would miss them.
func processesOf(bin string) []string {
	entries, _ := os.ReadDir("/proc")
	var left []string
	for _, e := range entries {
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || exe != bin {
			continue
		}
		if st, err := os.Open(filepath.Join("/proc", e.Name(), "status")); err == nil {
			sc := bufio.NewScanner(st)
			zombie := false
			for sc.Scan() {
				if line := sc.Text(); strings.HasPrefix(line, "State:") {
					zombie = strings.Contains(line, "Z") || strings.Contains(line, "X")
				}
			}
			_ = st.Close()
			if zombie {
				continue
			}
		}
		left = append(left, e.Name())
	}
	return left
}

// killStragglers kills any process of bin left by a failed run, so one failure does not
// break the next run.
func killStragglers(bin string) {
	for _, p := range processesOf(bin) {
		if pid, err := strconv.Atoi(p); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
