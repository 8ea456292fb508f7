package analyze

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// FuzzAnalyze: the analyzers read objects that failed validation and Kubernetes objects
// as written, so no input may make them panic, and every message names its code.
func FuzzAnalyze(f *testing.F) {
	for _, dir := range []string{filepath.Join("testdata", "all"), filepath.Join("..", "..", "..", "examples", "bookinfo-lite")} {
		files, _ := config.ReadDir(dir)
		for _, file := range files {
			f.Add(file.Data)
		}
	}
	if b, err := os.ReadFile(filepath.Join("..", "..", "cli", "testdata", "analyze", "reviews.yaml")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  http: [null, {route: [null, {destination: null}]}]\n"))
	f.Add([]byte("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: a}\nspec: {servers: [null, {port: null, tls: {credentialName: x}}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, diags := config.ParseWith("fuzz.yaml", data, config.Analysis)
		for _, m := range Run(objs, diags, Options{Offline: true}).Messages {
			if m.Code == "" || m.Text == "" {
				t.Fatalf("message without code or text: %+v", m)
			}
			_ = m.String()
		}
	})
}
