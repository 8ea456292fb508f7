package diag

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/cli"
	"github.com/lucid-mesh/lucid/internal/controlplane/analyze"
	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// lucid runs the CLI in-process and returns its output (stdout and stderr) and exit code.
func lucid(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := cli.NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	code := 0
	var ec interface{ ExitCode() int }
	switch {
	case errors.As(err, &ec):
		code = ec.ExitCode()
	case err != nil:
		code = 1
		out.WriteString("error: " + err.Error())
	}
	return out.String(), code
}

// explanationOf returns the text after "x-lucid-error" on a line of out.
func explanationOf(t *testing.T, out string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if _, v, ok := strings.Cut(l, "x-lucid-error "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no x-lucid-error line in:\n%s", out)
	return ""
}

// TestEmptySubsetScenario is scenario 3 of docs/scenarios.md on a bookinfo-lite mesh: reviews-v3 lost its
// version label, so subset v3 selects nothing. analyze finds it before any traffic, why
// explains a request's path to it, proxy-config endpoints shows the empty cluster with
// the reason, and the live 503 carries the same explanation in x-lucid-error and in the
// access log: all the texts are identical.
func TestEmptySubsetScenario(t *testing.T) {
	// 1. Before any traffic: offline analysis of the files.
	dir := t.TempDir()
	for name, body := range bookinfoFiles(t) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, code := lucid(t, "analyze", "-f", dir)
	if code != 79 || !strings.Contains(out, "Error [IST0173] (DestinationRule default/reviews "+filepath.ToSlash(filepath.Join(dir, "reviews.yaml"))+":") ||
		!strings.Contains(out, "WorkloadEntry reviews-v3 has app=reviews but no version label") {
		t.Fatalf("analyze -f: exit %d, want 79 and IST0173 naming reviews-v3:\n%s", code, out)
	}

	m := liveMesh(t)
	// 2. Online analysis through the control plane finds the same.
	out, code = lucid(t, "analyze", "--online", "--discovery-debug", debugAddr)
	if code != 79 || !strings.Contains(out, "WorkloadEntry reviews-v3 has app=reviews but no version label") {
		t.Fatalf("analyze --online: exit %d:\n%s", code, out)
	}

	// 3. why: the path of GET /v3 from curl, through the proxy's real config.
	why, code := lucid(t, "why", "curl", "http://reviews:9080/v3", "--discovery-debug", debugAddr)
	if code != 0 {
		t.Fatalf("why: exit %d:\n%s", code, why)
	}
	for _, s := range []string{`1. "v3" (prefix "/v3"): matched`, "cluster       outbound|9080|v3|reviews.default.svc.cluster.local", "outcome       503 UH"} {
		if !strings.Contains(why, s) {
			t.Errorf("why lacks %q:\n%s", s, why)
		}
	}
	whyErr := explanationOf(t, why)

	// 4. proxy-config endpoints: the empty cluster, with the reason.
	eps, code := lucid(t, "proxy-config", "endpoints", "curl", "--discovery-debug", debugAddr)
	if code != 0 {
		t.Fatalf("proxy-config endpoints: exit %d:\n%s", code, eps)
	}
	reason := strings.TrimPrefix(whyErr, "UH: ")
	if !strings.Contains(eps, "outbound|9080|v3|reviews.default.svc.cluster.local\n      "+reason+"\n") {
		t.Errorf("proxy-config endpoints does not show the v3 cluster with the reason %q:\n%s", reason, eps)
	}

	// 5. The live request: Envoy's 503 UH, and the very same explanation.
	resp, err := client(curlIP).Get("http://reviews:9080/v3")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || string(body) != "no healthy upstream" {
		t.Fatalf("live: %d %q, want 503 no healthy upstream", resp.StatusCode, body)
	}
	live := resp.Header.Get("X-Lucid-Error")
	if live != whyErr {
		t.Errorf("x-lucid-error differs from why:\nlive: %s\nwhy:  %s", live, whyErr)
	}
	// The access log carries it too (TEXT: a trailing quoted field, escaped as Go quotes).
	logged := `"lucid=` + strconv.Quote(live)[1:]
	testutil.EventuallyWhy(t, 5*time.Second, "curl's access log with "+logged, func() (bool, string) {
		l := m.accessLog(t, "curl")
		return strings.Contains(l, logged), "the log:\n" + l
	})
	if !strings.Contains(m.accessLog(t, "curl"), `"GET /v3 HTTP/1.1" 503 UH no_healthy_upstream`) {
		t.Errorf("access log line is not Envoy's:\n%s", m.accessLog(t, "curl"))
	}

	// 6. The same story from the analyzer's structured output: the subset and the label.
	objs, diags := config.LoadDir(dir)
	var found bool
	for _, msg := range analyze.Analyze(objs, diags, nil) {
		found = found || (msg.Code == "IST0173" && msg.Field == "spec.subsets[2].labels")
	}
	if !found {
		t.Error("IST0173 not on spec.subsets[2].labels")
	}
}

// TestWhyAgreesWithLiveRequests sends requests and checks `why` predicts each outcome:
// the status, and for local replies the x-lucid-error, word for word.
func TestWhyAgreesWithLiveRequests(t *testing.T) {
	liveMesh(t)
	cases := []struct {
		url     string
		headers []string
		status  int
	}{
		{"http://reviews:9080/v3", nil, 503},
		{"http://reviews:9080/", []string{"end-user: jason"}, 503},
		{"http://ratings:9080/ratings", nil, 200},
		{"http://productpage:9080/", nil, 200},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			args := []string{"why", "curl", tc.url, "--discovery-debug", debugAddr}
			req, _ := http.NewRequest("GET", tc.url, nil)
			for _, h := range tc.headers {
				args = append(args, "-H", h)
				k, v, _ := strings.Cut(h, ":")
				req.Header.Set(k, strings.TrimSpace(v))
			}
			why, code := lucid(t, args...)
			if code != 0 {
				t.Fatalf("why: exit %d\n%s", code, why)
			}
			resp, err := client(curlIP).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("live status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 200 {
				if !strings.Contains(why, "forwarded to") {
					t.Errorf("why does not predict forwarding:\n%s", why)
				}
				return
			}
			if got, want := resp.Header.Get("X-Lucid-Error"), explanationOf(t, why); got != want {
				t.Errorf("live x-lucid-error %q\nwhy predicts      %q", got, want)
			}
		})
	}
}
