package diag

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/diag/inspect"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

func TestProxyStatusLive(t *testing.T) {
	liveMesh(t)
	out, code := lucid(t, "proxy-status", "--discovery-debug", debugAddr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1+len(workloads) || !strings.HasPrefix(lines[0], "NAME") || !strings.HasSuffix(lines[0], "LAG") {
		t.Fatalf("want a header ending in LAG and %d proxies:\n%s", len(workloads), out)
	}
	for _, l := range lines[1:] {
		if strings.Count(l, "SYNCED (") != 4 || !strings.HasSuffix(l, " 0s") {
			t.Errorf("not SYNCED on all four types with no lag: %s", l)
		}
	}
	out, code = lucid(t, "proxy-status", "reviews-v1", "--discovery-debug", debugAddr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, s := range []string{"Clusters Match", "Listeners Match", "Routes Match", "Endpoints Match"} {
		if !strings.Contains(out, s) {
			t.Errorf("proxy-status reviews-v1 lacks %q:\n%s", s, out)
		}
	}
	if _, code := lucid(t, "proxy-status", "nobody", "--discovery-debug", debugAddr); code == 0 {
		t.Error("proxy-status of an unknown workload succeeded")
	}
}

// TestLogLevelsForRevertByThemselves: --for makes the sidecar itself put the levels back.
func TestLogLevelsForRevertByThemselves(t *testing.T) {
	liveMesh(t)
	admin := testutil.Admin("127.0.94.15") // ratings
	level := func(name string) string {
		b, err := (&inspect.Client{}).Get(context.Background(), admin, "/logging")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if n, v, ok := strings.Cut(strings.TrimSpace(l), ": "); ok && n == name {
				return v
			}
		}
		t.Fatalf("no logger %s", name)
		return ""
	}
	before := level("router")
	out, code := lucid(t, "proxy-config", "log", "ratings", "--level", "router:trace,pool:debug", "--for", "300ms", "--discovery-debug", debugAddr)
	if code != 0 || !strings.Contains(out, "revert by themselves") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if got := level("router"); got != "trace" {
		t.Fatalf("router is %s right after the change, want trace", got)
	}
	testutil.EventuallyWhy(t, 5*time.Second, "router and pool back at "+before, func() (bool, string) {
		router, pool := level("router"), level("pool")
		return router == before && pool == before, "router " + router + ", pool " + pool
	})
	out, code = lucid(t, "proxy-config", "log", "ratings", "--level", "nosuch:debug", "--discovery-debug", debugAddr)
	if code == 0 || !strings.Contains(out, "unrecognized logger name: nosuch") {
		t.Errorf("unknown logger: exit %d\n%s", code, out)
	}
}
