package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/admin"
	"github.com/lucid-mesh/lucid/internal/dataplane/logging"
)

// runMain runs the CLI as main does and returns stdout, stderr and the exit code.
func runMain(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := execute(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// `lucid up` without its directory says what the argument is and what to try; exit 1.
func TestUpWithoutDirectory(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"up"}, "lucid: up needs the directory of Istio YAML to run (its WorkloadEntries become sidecars and apps); try: lucid up examples/bookinfo-lite\n"},
		{[]string{"up", "a", "b"}, "lucid: up takes one directory, got 2 arguments (a b); try: lucid up examples/bookinfo-lite\n"},
	} {
		out, errOut, code := runMain(t, c.args...)
		if code != 1 || errOut != c.want || out != "" {
			t.Errorf("lucid %s: exit %d, stdout %q, stderr %q; want exit 1 and\n%s", strings.Join(c.args, " "), code, out, errOut, c.want)
		}
	}
}

// `lucid version` and `lucid --version` print the version, the commit and the Go version.
func TestVersion(t *testing.T) {
	want := "version: dev\ncommit:  unknown (built without version control information; `make build` records it)\n" +
		"go:      " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, errOut, code := runMain(t, args...)
		if code != 0 || out != want || errOut != "" {
			t.Errorf("lucid %s: exit %d, stderr %q, stdout\n%s\nwant\n%s", args[0], code, errOut, out, want)
		}
	}
	out, _, code := runMain(t, "version", "-o", "json")
	var v struct{ Version, Go, Platform string }
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.Version != "dev" || v.Go != runtime.Version() {
		t.Errorf("lucid version -o json: exit %d, %v:\n%s", code, err, out)
	}
	if _, errOut, code := runMain(t, "version", "-o", "yaml"); code != 1 || !strings.Contains(errOut, `-o "yaml": want json`) {
		t.Errorf("lucid version -o yaml: exit %d, %q", code, errOut)
	}
}

// A second timed log-level change does not cancel the first one's revert, and
// `proxy-config log` shows what is still to revert.
func TestProxyConfigLogShowsPendingReverts(t *testing.T) {
	srv := httptest.NewServer(admin.New(admin.Options{Logging: logging.NewRegistry(io.Discard, logging.Info, false)}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	out, errOut, code := runMain(t, "proxy-config", "log", "--admin", addr, "--level", "router:debug", "--for", "5m")
	if code != 0 || !strings.Contains(out, "  router: debug\n") || !strings.Contains(out, "pending reverts:\n  router: info at ") ||
		!strings.Contains(out, "These levels revert by themselves in 5m0s") || !strings.Contains(out, "To revert now: lucid proxy-config log --admin "+addr+" --level info\n") {
		t.Fatalf("first change: exit %d %s\n%s", code, errOut, out)
	}
	if _, errOut, code := runMain(t, "proxy-config", "log", "--admin", addr, "--level", "http:debug,router:trace", "--for", "1m"); code != 0 {
		t.Fatalf("second change: exit %d %s", code, errOut)
	}
	out, _, code = runMain(t, "proxy-config", "log", "--admin", addr)
	if code != 0 || !strings.Contains(out, "  http: info at ") || !strings.Contains(out, "  router: debug at ") || !strings.Contains(out, ", then info at ") {
		t.Errorf("proxy-config log after two timed changes: exit %d\n%s", code, out)
	}
	if _, errOut, code := runMain(t, "proxy-config", "log", "--admin", addr, "--level", "nosuch:debug"); code != 1 || errOut != "lucid: unrecognized logger name: nosuch\n" {
		t.Errorf("unknown logger: exit %d %q", code, errOut)
	}
}
