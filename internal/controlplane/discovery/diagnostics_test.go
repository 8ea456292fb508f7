package discovery

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/source/file"
)

// TestDiagnosticsLogTheTruthInOrder: a rejected change logs the rejection, then that the
// last good version keeps serving (with the version it came from), never "accepted".
func TestDiagnosticsLogTheTruthInOrder(t *testing.T) {
	var out bytes.Buffer
	d := &diagnostics{log: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))}
	subset := config.Diagnostic{Level: config.Warning, File: "reviews.yaml", Line: 70, Kind: "DestinationRule", Namespace: "default", Name: "reviews",
		Field: "spec.subsets[2].labels", Message: "subset \"v3\" selects 0 of 3 endpoints (IST0173)"}
	d.set([]config.Diagnostic{subset}, "v1")
	out.Reset()

	keep := config.Diagnostic{Level: config.Warning, File: "reviews.yaml", Line: 1, Kind: "VirtualService", Namespace: "default", Name: "reviews", Message: file.KeepingLastGood}
	rejected := config.Diagnostic{Level: config.Error, File: "reviews.yaml", Line: 12, Kind: "VirtualService", Namespace: "default", Name: "reviews",
		Field: "spec.http[0].route[0].weight", Message: "weights sum to 150, want 100"}
	for i := 0; i < 20; i++ { // map order must not matter
		d.set(nil, "v1")
		d.set([]config.Diagnostic{subset}, "v1")
		out.Reset()
		d.set([]config.Diagnostic{subset, keep, rejected}, "v2")
		want := `level=ERROR msg="config rejected" problem="reviews.yaml:12: VirtualService default/reviews: spec.http[0].route[0].weight: weights sum to 150, want 100"` + "\n" +
			`level=WARN msg="still serving the last good version" object="VirtualService default/reviews" file=reviews.yaml from_version=v1` + "\n"
		if got := out.String(); got != want {
			t.Fatalf("log after a rejected change:\n%s\nwant\n%s", got, want)
		}
	}
	out.Reset()
	d.set([]config.Diagnostic{subset}, "v3")
	if got, want := out.String(), `level=INFO msg="config problem resolved" problem="reviews.yaml:12: VirtualService default/reviews: spec.http[0].route[0].weight: weights sum to 150, want 100"`+"\n"; got != want {
		t.Errorf("log after the fix:\n%s\nwant\n%s", got, want)
	}
}

// The debug port's root lists what the port serves (the URL `lucid up` prints).
func TestDebugIndex(t *testing.T) {
	w := httptest.NewRecorder()
	debugIndex(w, httptest.NewRequest(http.MethodGet, "/", nil))
	body := w.Body.String()
	for _, want := range []string{`href="/ready"`, `href="/debug/syncz"`, `href="/debug/diagnostics"`, `href="/debug/analyze"`, "/debug/config_dump?proxyID="} {
		if w.Code != 200 || !strings.Contains(body, want) {
			t.Errorf("index: %d, lacks %s:\n%s", w.Code, want, body)
		}
	}
}
