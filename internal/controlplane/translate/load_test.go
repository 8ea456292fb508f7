package translate

import (
	"testing"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// loadObjects parses a test case with config.Parse, as discovery does; the cases hold
// valid config only, so any error diagnostic fails the test.
func loadObjects(t testing.TB, file string, data []byte) []*config.Object {
	t.Helper()
	objs, diags := config.Parse(file, data)
	for _, d := range diags {
		if d.Level == config.Error {
			t.Fatalf("%s", d)
		}
	}
	return objs
}
