package diag

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/lucid-mesh/lucid/internal/diag/inspect"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

var capture = flag.String("capture", "", "write admin/debug fixtures of the live mesh into this directory")

// TestCaptureFixtures refreshes the admin and debug API fixtures the CLI's golden tests
// read (go test ./test/diag -run CaptureFixtures -capture ../../internal/cli/testdata/fixtures).
func TestCaptureFixtures(t *testing.T) {
	if *capture == "" {
		t.Skip("-capture not set")
	}
	liveMesh(t)
	ctx := context.Background()
	c := &inspect.Client{}
	get := func(addr, path, file string) {
		b, err := c.Get(ctx, addr, path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(*capture, file), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(*capture, 0o755); err != nil {
		t.Fatal(err)
	}
	get(testutil.Admin(curlIP), "/config_dump?include_eds", "curl.config_dump.json")
	get(testutil.Admin(curlIP), "/clusters?format=json", "curl.clusters.json")
	get(testutil.Admin(curlIP), "/logging", "curl.logging.txt")
	get(debugAddr, "/debug/syncz", "syncz.json")
	get(debugAddr, "/debug/config_dump?proxyID=sidecar~"+curlIP+"~curl.default~default.svc.cluster.local", "curl.cp_config_dump.json")
}
