package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/cli"
	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// lucid runs the CLI in this process with ctx and returns its output.
func lucid(ctx context.Context, args ...string) (string, error) {
	var out testutil.Buffer
	root := cli.NewRoot()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// bounded gives a CLI run at most d (a stuck stream fails the test instead of hanging it).
func bounded(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func jsonEvents(t *testing.T, out string) []contract.TapEvent {
	t.Helper()
	var evs []contract.TapEvent
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var ev contract.TapEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestTapAndTop(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs bookinfo-lite (drop -short to run)")
	}
	mesh := startBookinfo(t)
	tr := startTraffic(t, 20)
	tr.startV3()
	debug := "--discovery-debug=" + mesh.Debug()

	t.Run("filters through the control plane", func(t *testing.T) {
		out, err := lucid(bounded(t, 20*time.Second), "tap", "curl", debug, "--to", "reviews", "--flags", "UH", "--status", "5xx", "--count", "5", "-o", "json")
		if err != nil {
			t.Fatalf("lucid tap: %v\n%s", err, out)
		}
		evs := jsonEvents(t, out)
		if len(evs) != 5 {
			t.Fatalf("%d events, want 5:\n%s", len(evs), out)
		}
		for _, ev := range evs {
			if ev.Proxy != "curl.default" || ev.Direction != "outbound" || ev.Status != 503 || ev.Flags != "UH" ||
				!strings.HasPrefix(ev.Path, "/v3") || !strings.Contains(ev.Error, `subset "v3"`) {
				t.Errorf("event does not match the filter or lacks the cause: %+v", ev)
			}
		}

		out, err = lucid(bounded(t, 20*time.Second), "tap", "productpage", debug, "--direction", "inbound", "--path", "/productpage", "--method", "GET", "--count", "3", "-o", "json")
		if err != nil {
			t.Fatalf("lucid tap: %v\n%s", err, out)
		}
		for _, ev := range jsonEvents(t, out) {
			if ev.Direction != "inbound" || ev.Path != "/productpage" || ev.Status != 200 || ev.Proxy != "productpage.default" {
				t.Errorf("event does not match --direction inbound --path /productpage: %+v", ev)
			}
		}
	})

	t.Run("lines", func(t *testing.T) {
		out, err := lucid(bounded(t, 20*time.Second), "tap", "curl", debug, "--count", "2")
		if err != nil {
			t.Fatalf("lucid tap: %v\n%s", err, out)
		}
		for _, want := range []string{"outbound GET    reviews:9080/v3/reviews 503 UH ", `UH: subset "v3" of reviews.default.svc.cluster.local selects 0 of 3 endpoints`} {
			if !strings.Contains(out, want) {
				t.Errorf("lucid tap curl lacks %q:\n%s", want, out)
			}
		}
		out, err = lucid(bounded(t, 20*time.Second), "tap", "productpage", "--admin", testutil.Admin(productpageSide), "--direction", "outbound", "--count", "1", "-o", "wide")
		if err != nil || !strings.Contains(out, "cluster=outbound|9080|v") || !strings.Contains(out, "productpage→reviews-v") {
			t.Errorf("lucid tap --admin -o wide: %v\n%s", err, out)
		}
	})

	t.Run("refusals name the mistake", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"tap", "nope", debug}, `no proxy named "nope.default"; the control plane knows: curl.default, istio-ingressgateway.istio-system, productpage.default`},
			{[]string{"tap", "productpage", debug, "--status", "9xx"}, `tap refused (400): tap: status "9xx": "9xx" is neither a status code`},
			{[]string{"tap", "productpage", debug, "--flags", "XY"}, `"XY" is not an Envoy response flag`},
			{[]string{"tap", "productpage", debug, "-o", "yaml"}, `-o "yaml": want wide or json`},
			{[]string{"tap", "productpage", "--discovery-debug", "127.0.124.100:1"}, "open the tap through the control plane at 127.0.124.100:1"},
		} {
			out, err := lucid(bounded(t, 10*time.Second), tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("lucid %s = %v (output %q), want an error containing %q", strings.Join(tc.args, " "), err, out, tc.want)
			}
		}
	})

	t.Run("stops cleanly", func(t *testing.T) {
		// Ctrl-C (the command's context ends) while requests stream: no error, and the
		// command returns.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := &testutil.Buffer{}
		root := cli.NewRoot()
		root.SetArgs([]string{"tap", "productpage", debug})
		root.SetOut(out)
		root.SetErr(out)
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(ctx) }()
		out.WaitFor(t, " GET ", 20*time.Second) // a request shown
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("lucid tap after Ctrl-C: %v\n%s", err, out)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("lucid tap did not stop after its context ended")
		}
	})

	t.Run("top", func(t *testing.T) {
		out, err := lucid(bounded(t, 30*time.Second), "top", "productpage", debug, "--direction", "inbound", "--duration", "3s", "--interval", "1s")
		if err != nil {
			t.Fatalf("lucid top: %v\n%s", err, out)
		}
		tables := strings.Split(out, "METHOD  PATH")
		last := tables[len(tables)-1]
		if len(tables) < 3 || !strings.Contains(last, "GET     /productpage") || !strings.Contains(last, "100.0%") {
			t.Errorf("lucid top: want tables each second and a /productpage row at 100%%:\n%s", out)
		}
		out, err = lucid(bounded(t, 30*time.Second), "top", "curl", debug, "--duration", "2s", "--interval", "1s")
		if err != nil || !strings.Contains(out, "0.0%") || !strings.Contains(out, "UH:") || !strings.Contains(out, `UH: subset "v3"`) {
			t.Errorf("lucid top curl: %v; want /v3 failing with UH and its cause:\n%s", err, out)
		}
	})
}

// TestDashboardAddr: with --dashboard-addr the dashboard has its own address and the
// debug port keeps the tap relay; a busy address is refused naming the flag.
func TestDashboardAddr(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- discovery.Run(ctx, discovery.Options{ConfigDir: dir, GRPCAddr: "127.0.124.101:0",
			DebugAddr: "127.0.124.101:15014", DashboardAddr: "127.0.124.101:15016", Ready: func(string) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("discovery: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("discovery did not start")
	}
	for _, tc := range []struct {
		url  string
		code int
		want string
	}{
		{"http://127.0.124.101:15016/dashboard/", 200, "<title>Lucid dashboard</title>"},
		{"http://127.0.124.101:15014/dashboard/", 404, ""},
		{"http://127.0.124.101:15014/debug/tap?workload=x", 404, `no proxy named "x.default"`},
	} {
		resp, err := http.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.want) {
			t.Errorf("GET %s: %d %.100q, want %d with %q", tc.url, resp.StatusCode, b, tc.code, tc.want)
		}
	}
	// A second control plane whose dashboard address is taken.
	err := discovery.Run(ctx, discovery.Options{ConfigDir: dir, GRPCAddr: "127.0.124.102:0",
		DebugAddr: "127.0.124.102:15014", DashboardAddr: "127.0.124.101:15016"})
	if err == nil || !strings.Contains(err.Error(), "dashboard listener (--dashboard-addr)") {
		t.Errorf("busy --dashboard-addr: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("discovery: %v", err)
	}
}
