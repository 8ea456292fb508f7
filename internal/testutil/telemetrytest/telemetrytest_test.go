package telemetrytest

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestVersionsMatchModule keeps the cache directory's versions equal to what
// scripts/telemetry-bins.sh builds.
func TestVersionsMatchModule(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "test", "telemetrybin", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for mod, want := range map[string]string{
		`go\.opentelemetry\.io/collector/otelcol`: CollectorVersion,
		`github\.com/prometheus/prometheus`:       PrometheusVersion,
	} {
		m := regexp.MustCompile(`(?m)^\s*` + mod + ` (v\S+)`).FindSubmatch(b)
		if m == nil {
			t.Errorf("test/telemetrybin/go.mod does not require %s", mod)
			continue
		}
		if string(m[1]) != want {
			t.Errorf("test/telemetrybin builds %s %s, the constant says %s", mod, m[1], want)
		}
	}
}
