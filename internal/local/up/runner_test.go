package up

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// The test binary doubles as a fake lucid (discovery, sidecar, demo-app) when
// LUCID_UP_FAKE is set, so the supervisor is tested with real processes, process groups
// and signals, without needing the real control and data planes.
func TestMain(m *testing.M) {
	if os.Getenv("LUCID_UP_FAKE") != "" {
		os.Exit(fakeLucid(os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func fakeLucid(args []string) int {
	fmt.Printf("pid=%d\n", os.Getpid())
	if len(args) == 0 {
		return 2
	}
	if os.Getenv("LUCID_UP_FAKE_FAIL") == args[0] {
		fmt.Fprintln(os.Stderr, "boom: failing on purpose")
		return 1
	}
	// serve answers path on addr; the channel closes when path is first asked for.
	serve := func(addr, path string) <-chan struct{} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Println("listen:", err)
			os.Exit(1)
		}
		asked := make(chan struct{})
		var once sync.Once
		mux := http.NewServeMux()
		mux.HandleFunc(path, func(http.ResponseWriter, *http.Request) { once.Do(func() { close(asked) }) })
		go func() { _ = (&http.Server{Handler: mux, ReadHeaderTimeout: time.Second}).Serve(ln) }()
		return asked
	}
	switch args[0] {
	case "discovery":
		serve(flagValue(args, "--debug-addr"), "/ready")
	case "sidecar":
		ready := serve(net.JoinHostPort(flagValue(args, "--ip"), "15020"), "/healthz/ready")
		if os.Getenv("LUCID_UP_FAKE_CRASH") == "sidecar" && flagValue(args, "--workload") == "web" {
			// Crash once up has seen the sidecar ready, however slow the machine is.
			select {
			case <-ready:
			case <-time.After(30 * time.Second):
			}
			time.Sleep(300 * time.Millisecond)
			fmt.Println("crashing")
			return 3
		}
	case "demo-app":
		switch flagValue(args, "--name") {
		case "crasher":
			time.Sleep(300 * time.Millisecond)
			fmt.Println("crashing")
			return 3
		case "stubborn":
			signal.Ignore(syscall.SIGTERM)
		case "late": // listens a while after it started
			time.Sleep(1500 * time.Millisecond)
		case "silent": // never listens
			time.Sleep(time.Hour)
			return 0
		case "tree":
			gc := exec.Command(os.Args[0], "sleep")
			if err := gc.Start(); err != nil {
				fmt.Println("grandchild:", err)
				return 1
			}
			fmt.Printf("grandchild=%d\n", gc.Process.Pid)
		}
		serve(flagValue(args, "--listen"), "/")
		fmt.Println("app ready")
	}
	time.Sleep(time.Hour)
	return 0
}

const meshTemplate = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web}
spec:
  hosts: [web.default.svc.cluster.local]
  ports: [{number: 8080, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: web
  annotations:
    lucid.dev/app-address: 127.0.88.2
    lucid.dev/app: lucid demo-app --listen $LUCID_APP_ADDRESS:8080 --name MODE
spec:
  address: 127.0.87.2
  labels: {app: web}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client}
spec:
  address: 127.0.87.3
  labels: {app: client}
`

func writeConfig(t *testing.T, dir, yaml string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "mesh.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runFake runs Run on a fake mesh whose app is mode; it returns the output, Run's
// result channel and the cancel function.
func runFake(t *testing.T, mode string) (*testutil.Buffer, <-chan error, context.CancelFunc) {
	t.Helper()
	return runFakeWithin(t, mode, 10*time.Second)
}

// runFakeWithin is runFake with Options.ReadyTimeout ready.
func runFakeWithin(t *testing.T, mode string, ready time.Duration) (*testutil.Buffer, <-chan error, context.CancelFunc) {
	t.Helper()
	return runFakeMesh(t, strings.ReplaceAll(meshTemplate, "MODE", mode), ready)
}

// runFakeMesh runs Run on the fake mesh yaml describes.
func runFakeMesh(t *testing.T, yaml string, ready time.Duration) (*testutil.Buffer, <-chan error, context.CancelFunc) {
	t.Helper()
	t.Setenv("LUCID_UP_FAKE", "1")
	dir := t.TempDir()
	writeConfig(t, dir, yaml)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := &testutil.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			Dir: dir, Load: config.LoadDir, Executable: exe, Out: out,
			GRPCAddr: "127.0.87.1:15010", DebugAddr: "127.0.87.1:15014",
			ReadyTimeout: ready, StopGrace: 2 * time.Second,
		})
	}()
	t.Cleanup(cancel)
	return out, done, cancel
}

func waitRun(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

var pidLine = regexp.MustCompile(`(?m)(?:pid|grandchild)=(\d+)$`)

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return false
	}
	return data[i+2] != 'Z' && data[i+2] != 'X'
}

// assertAllGone checks that every process named in out has exited and that nothing
// listens on the fake mesh's addresses.
func assertAllGone(t *testing.T, out string, wantProcs int) {
	t.Helper()
	ms := pidLine.FindAllStringSubmatch(out, -1)
	if len(ms) < wantProcs {
		t.Errorf("found %d pids in the output, want at least %d:\n%s", len(ms), wantProcs, out)
	}
	for _, m := range ms {
		pid, _ := strconv.Atoi(m[1])
		if alive(pid) {
			t.Errorf("process %d (%s) still running", pid, m[0])
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, addr := range []string{"127.0.87.1:15014", "127.0.87.2:15020", "127.0.87.3:15020", "127.0.88.2:8080"} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			t.Errorf("%s still listening", addr)
		}
	}
}

func TestRunStopsEverythingOnCancel(t *testing.T) {
	out, done, cancel := runFake(t, "tree")
	out.WaitFor(t, "press Ctrl-C to stop", 15*time.Second)
	out.WaitFor(t, "app ready", 15*time.Second)
	cancel()
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run after cancel = %v, want nil (exit status 0)", err)
	}
	s := out.String()
	// discovery, 2 sidecars, the app and its grandchild
	assertAllGone(t, s, 5)
	for _, want := range []string{
		"discovery      | pid=",
		"client sidecar | pid=",
		"web sidecar    | pid=",
		"web app        | app ready",
		"up             |   curl -x http://127.0.87.3:15001 http://web:8080/",
		"up             | stopped",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

// An app dying is the workload failing, not the mesh: lucid up says so and keeps running.
func TestRunKeepsRunningWhenAnAppDies(t *testing.T) {
	out, done, cancel := runFake(t, "crasher")
	out.WaitFor(t, "web app exited: exit status 3; the mesh keeps running without it", 15*time.Second)
	select {
	case err := <-done:
		t.Fatalf("Run returned after an app died: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	assertAllGone(t, out.String(), 3)
}

// lucid up says the mesh is up once the apps listen: a request right after it reaches
// them rather than a 503 from a sidecar whose app is still starting.
func TestRunWaitsForTheAppsToListen(t *testing.T) {
	out, done, cancel := runFake(t, "late")
	out.WaitFor(t, "press Ctrl-C to stop", 15*time.Second)
	c, err := net.DialTimeout("tcp", "127.0.88.2:8080", time.Second)
	if err != nil {
		t.Errorf("lucid up said the mesh is up, but the app does not listen: %v\n%s", err, out.String())
	} else {
		_ = c.Close()
	}
	cancel()
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	assertAllGone(t, out.String(), 3)
}

// An app that never listens does not hold the mesh back past the readiness timeout:
// lucid up says which address and goes on.
func TestRunSaysWhenAnAppDoesNotListen(t *testing.T) {
	out, done, cancel := runFakeWithin(t, "silent", 3*time.Second)
	out.WaitFor(t, "web app does not listen on 127.0.88.2:8080 after 3s", 15*time.Second)
	out.WaitFor(t, "press Ctrl-C to stop", 5*time.Second)
	cancel()
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	assertAllGone(t, out.String(), 3)
}

// The apps share one bound: two apps that never listen are both named once the
// readiness timeout has passed, not one timeout after the other.
func TestRunBoundsTheAppsTogether(t *testing.T) {
	web2 := strings.NewReplacer("{name: web}", "{name: web2}", "name: web\n", "name: web2\n", "{app: web}", "{app: web2}",
		"web.default", "web2.default", "127.0.88.2", "127.0.88.3", "127.0.87.2", "127.0.87.4")
	app, _, _ := strings.Cut(meshTemplate, "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: client}")
	yaml := strings.ReplaceAll(web2.Replace(app)+"---\n"+meshTemplate, "MODE", "silent")
	out, done, cancel := runFakeMesh(t, yaml, 3*time.Second)
	out.WaitFor(t, "does not listen on", 15*time.Second)
	// Were the bound per app, the second would come 3 s after the first.
	out.WaitFor(t, "web2 app does not listen on 127.0.88.3:8080 after 3s", time.Second)
	out.WaitFor(t, "web app does not listen on 127.0.88.2:8080 after 3s", time.Second)
	cancel()
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
}

func TestRunStopsEverythingWhenASidecarDies(t *testing.T) {
	t.Setenv("LUCID_UP_FAKE_CRASH", "sidecar")
	out, done, _ := runFake(t, "tree")
	err := waitRun(t, done)
	if err == nil || err.Error() != "web sidecar exited: exit status 3" {
		t.Fatalf("Run = %v, want %q", err, "web sidecar exited: exit status 3")
	}
	assertAllGone(t, out.String(), 5)
}

func TestRunFailsWhenDiscoveryFailsAtStart(t *testing.T) {
	t.Setenv("LUCID_UP_FAKE_FAIL", "discovery")
	out, done, _ := runFake(t, "tree")
	err := waitRun(t, done)
	if err == nil || !strings.Contains(err.Error(), "discovery failed to start: discovery exited: exit status 1") {
		t.Fatalf("Run = %v, want discovery failed to start", err)
	}
	if s := out.String(); !strings.Contains(s, "discovery      | boom: failing on purpose") {
		t.Errorf("output lacks discovery's own message:\n%s", s)
	}
	if strings.Contains(out.String(), "sidecar |") {
		t.Errorf("sidecars started although discovery failed:\n%s", out.String())
	}
}

func TestRunAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.87.2:15001")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, done, _ := runFake(t, "tree")
	err = waitRun(t, done)
	if err == nil || !strings.Contains(err.Error(), "web sidecar needs 127.0.87.2:15001, which is not free") {
		t.Fatalf("Run = %v, want an error naming 127.0.87.2:15001", err)
	}
}

func TestStopAllEscalatesToSIGKILL(t *testing.T) {
	t.Setenv("LUCID_UP_FAKE", "1")
	var buf testutil.Buffer
	out := NewOutput(&buf, 8, false)
	c, err := Start(Process{Name: "stubborn", Path: os.Args[0], Args: []string{"demo-app", "--name", "stubborn", "--listen", "127.0.87.9:8080"}}, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf.WaitFor(t, "app ready", 15*time.Second)
	start := time.Now()
	var said []string
	StopAll([][]*Child{{c}}, 800*time.Millisecond, func(left []*Child, kill time.Duration) {
		if kill <= 0 || kill >= 800*time.Millisecond {
			t.Errorf("waiting: SIGKILL in %v, want within the grace", kill)
		}
		said = append(said, waitingFor(left))
	})
	if d := time.Since(start); d < 800*time.Millisecond || d > 5*time.Second {
		t.Errorf("StopAll took %v, want SIGKILL right after the 800ms grace", d)
	}
	if len(said) != 1 || said[0] != "stubborn to exit" {
		t.Errorf("StopAll said %q, want what it waits for once, half a second in", said)
	}
	if alive(c.Pid()) {
		t.Fatal("stubborn child survived StopAll")
	}
	var ee *exec.ExitError
	if !errors.As(c.Err(), &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("child ended with %v, want killed by SIGKILL", c.Err())
	}
}

func TestOutputPrefixesLines(t *testing.T) {
	var buf bytes.Buffer
	out := NewOutput(&buf, 9, false)
	a, b := out.Writer("discovery"), out.Writer("web app")
	_, _ = a.Write([]byte("one\ntw"))
	_, _ = b.Write([]byte("x\r\n"))
	_, _ = a.Write([]byte("o\nthree"))
	_ = a.Close()
	want := "discovery | one\nweb app   | x\ndiscovery | two\ndiscovery | three\n"
	if buf.String() != want {
		t.Errorf("output:\n%q\nwant\n%q", buf.String(), want)
	}

	buf.Reset()
	colored := NewOutput(&buf, 3, true)
	colored.Printf("up", "hi")
	if want := "\x1b[36mup  |\x1b[0m hi\n"; buf.String() != want {
		t.Errorf("colored output %q, want %q", buf.String(), want)
	}
}
