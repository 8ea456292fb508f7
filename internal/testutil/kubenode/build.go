package kubenode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// buildImages builds lucid (as the Dockerfile does: static, trimmed) and the pause program
// from the working tree, and packs the node's three images into docker-save tarballs in dir.
func buildImages(ctx context.Context, dir string) ([]string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(gomod)), "go.mod") {
		return nil, fmt.Errorf("kubenode: find the module to build lucid from (go env GOMOD: %q): %w", gomod, err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	bin := filepath.Join(dir, "bin")
	build := func(out, pkg string) error {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
			"-ldflags", "-s -w -X github.com/lucid-mesh/lucid/internal/version.Version=kubenode",
			"-o", filepath.Join(bin, out), pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("kubenode: go build %s: %w: %s", pkg, err, b)
		}
		return nil
	}
	if err := build("lucid", "./cmd/lucid"); err != nil {
		return nil, err
	}
	if err := build("pause", "./internal/testutil/kubenode/pause"); err != nil {
		return nil, err
	}
	ipt, err := IptablesLayer()
	if err != nil {
		return nil, fmt.Errorf("kubenode: %w", err)
	}
	lucid := []File{{Path: "usr/local/bin/lucid", Src: filepath.Join(bin, "lucid"), Mode: 0o755}}
	images := []Image{
		{Name: LucidImage, Layers: [][]File{lucid, ipt}, Entrypoint: []string{"/usr/local/bin/lucid"}},
		{Name: DemoImage, Layers: [][]File{lucid}, Entrypoint: []string{"/usr/local/bin/lucid", "demo-app"}},
		{Name: PauseImage, Layers: [][]File{{{Path: "pause", Src: filepath.Join(bin, "pause"), Mode: 0o755}}}, Entrypoint: []string{"/pause"}},
	}
	tars := make([]string, len(images))
	errs := make([]error, len(images))
	var wg sync.WaitGroup
	for i, img := range images {
		tars[i] = filepath.Join(dir, "images", strings.NewReplacer("/", "_", ":", "_").Replace(img.Name)+".tar")
		wg.Go(func() {
			if err := os.MkdirAll(filepath.Dir(tars[i]), 0o750); err != nil {
				errs[i] = err
				return
			}
			errs[i] = writeImage(img, tars[i])
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return tars, nil
}
