package up

import (
	"fmt"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// proxyConfigEnv is the PROXY_CONFIG every proxy gets, as Istio's injector gives a pod the
// mesh's defaultConfig: from the directory's meshconfig.yaml (nothing without one). The
// proxies read their request limits, HTTP/1.0 acceptance and idle timeout from it.
func proxyConfigEnv(dir string) ([]string, error) {
	path := filepath.Join(dir, config.MeshConfigFile)
	if !fileExists(path) {
		return nil, nil
	}
	mc, err := config.LoadMeshConfig(path)
	if err != nil {
		return nil, err
	}
	js, err := protojson.Marshal(mc.GetDefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("%s: defaultConfig: %w", path, err)
	}
	return []string{"PROXY_CONFIG=" + string(js)}, nil
}
