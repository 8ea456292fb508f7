package diag

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/diag/inspect"
	"github.com/lucid-mesh/lucid/internal/diag/simulate"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// TestKeepaliveVisible: after a POST from curl to ratings, curl's sidecar shows what its
// pool knows of ratings' idle timeout in /clusters (the demo app never closes idle
// connections: unknown, with the bound's reuse limit), and `lucid why -X POST` explains the
// connection a POST may use with the same limit.
func TestKeepaliveVisible(t *testing.T) {
	liveMesh(t)
	resp, err := client(curlIP).Post("http://ratings:9080/ratings/1", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	const cluster, host = "outbound|9080||ratings.default.svc.cluster.local", "127.0.94.15:9080"
	b, err := (&inspect.Client{}).Get(context.Background(), testutil.Admin(curlIP), "/clusters")
	if err != nil {
		t.Fatal(err)
	}
	var timeout, limit string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, cluster+"::"+host+"::idle_timeout::"); ok {
			timeout = v
		}
		if v, ok := strings.CutPrefix(l, cluster+"::"+host+"::idle_reuse_limit::"); ok {
			limit = v
		}
	}
	if timeout != "unknown" || limit == "" {
		t.Fatalf("/clusters: idle_timeout %q, idle_reuse_limit %q", timeout, limit)
	}

	out, code := lucid(t, "why", "curl", "http://ratings:9080/ratings/1", "-X", "POST", "-o", "json", "--discovery-debug", debugAddr)
	if code != 0 {
		t.Fatalf("why: exit %d\n%s", code, out)
	}
	var tr simulate.Trace
	if err := json.Unmarshal([]byte(out), &tr); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cs, err := (&inspect.Client{}).Clusters(context.Background(), testutil.Admin(curlIP))
	if err != nil {
		t.Fatal(err)
	}
	want := "one idle less than " + inspect.Host(cs, cluster, host).Idle.ReuseLimit.String() + " (" + host + "'s idle timeout is not learned yet"
	if !strings.Contains(tr.Outcome.Note, want) {
		t.Fatalf("why's note %q lacks %q", tr.Outcome.Note, want)
	}
}
