package kubenode

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Images the node has (imported before the kubelet starts; pods use them with the default
// pull policy, which for a tag other than :latest never pulls a present image).
const (
	// LucidImage is the Dockerfile's result: lucid at /usr/local/bin/lucid plus iptables
	// (the injected istio-init runs `lucid iptables`, which applies the rules with it).
	LucidImage = "localhost/lucid/lucid:kubenode"
	// DemoImage is `lucid demo-app` alone (the same binary layer, no iptables).
	DemoImage = "localhost/lucid/demo-app:kubenode"
	// PauseImage is the pod sandbox's image (containerd's sandbox_image).
	PauseImage = "localhost/lucid/pause:kubenode"
)

// File is one entry of an image layer.
type File struct {
	Path string // in the image, without the leading slash
	Src  string // host file copied (symlinks followed); empty for a directory or Link
	Link string // symlink target
	Mode int64  // permission bits of a file; 0: the host file's (directories are 0755)
}

// Image is an image packed without a Docker daemon or a registry.
type Image struct {
	Name       string
	Layers     [][]File
	Entrypoint []string
}

var imageEnv = []string{"PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

// writeImage packs img as a docker-save tarball (what `ctr images import` reads).
func writeImage(img Image, path string) error {
	var layers []v1.Layer
	for i, files := range img.Layers {
		data, err := tarFiles(files)
		if err != nil {
			return fmt.Errorf("kubenode: image %s layer %d: %w", img.Name, i, err)
		}
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}, tarball.WithCompressionLevel(gzip.BestSpeed))
		if err != nil {
			return fmt.Errorf("kubenode: image %s layer %d: %w", img.Name, i, err)
		}
		layers = append(layers, l)
	}
	im, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return fmt.Errorf("kubenode: image %s: %w", img.Name, err)
	}
	cfg, err := im.ConfigFile()
	if err != nil {
		return fmt.Errorf("kubenode: image %s: %w", img.Name, err)
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.Config.Entrypoint = img.Entrypoint
	cfg.Config.Env = imageEnv
	if im, err = mutate.ConfigFile(im, cfg); err != nil {
		return fmt.Errorf("kubenode: image %s: %w", img.Name, err)
	}
	tag, err := name.NewTag(img.Name)
	if err != nil {
		return fmt.Errorf("kubenode: image %s: %w", img.Name, err)
	}
	if err := tarball.WriteToFile(path, tag, im); err != nil {
		return fmt.Errorf("kubenode: image %s: %w", img.Name, err)
	}
	return nil
}

// tarFiles is a layer: files owned by root, parents created as directories.
func tarFiles(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	var mkdirs func(string) error
	mkdirs = func(dir string) error {
		if dir == "." || dir == "" || dirs[dir] {
			return nil
		}
		if err := mkdirs(filepath.Dir(dir)); err != nil {
			return err
		}
		dirs[dir] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, Format: tar.FormatPAX})
	}
	for _, f := range files {
		if err := mkdirs(filepath.Dir(f.Path)); err != nil {
			return nil, err
		}
		switch {
		case f.Link != "":
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: f.Path, Linkname: f.Link, Mode: 0o777, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
		case f.Src == "":
			if err := mkdirs(f.Path); err != nil {
				return nil, err
			}
		default:
			data, err := os.ReadFile(f.Src)
			if err != nil {
				return nil, err
			}
			mode := f.Mode
			if mode == 0 {
				st, err := os.Stat(f.Src)
				if err != nil {
					return nil, err
				}
				mode = int64(st.Mode().Perm())
			}
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.Path, Mode: mode, Size: int64(len(data)), Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
			if _, err := tw.Write(data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// IptablesLayer is the host's iptables (Debian's xtables-nft-multi and xtables-legacy-multi,
// their shared libraries and the extension modules) as an image layer, with the command
// names istio-iptables (and `lucid iptables`) run. It is the lightest image that applies
// rules with both backends: about 3 MiB, glibc included.
func IptablesLayer() ([]File, error) {
	var files []File
	libs := map[string]bool{}
	var addLibs func(bin string) error
	addLibs = func(bin string) error {
		f, err := elf.Open(bin)
		if err != nil {
			return err
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				b, _ := io.ReadAll(p.Open())
				interp := strings.TrimRight(string(b), "\x00")
				if !libs[interp] {
					libs[interp] = true
					files = append(files, File{Path: strings.TrimPrefix(interp, "/"), Src: interp})
				}
			}
		}
		needed, err := f.ImportedLibraries()
		if err != nil {
			return err
		}
		for _, lib := range needed {
			if libs[lib] {
				continue
			}
			libs[lib] = true
			src := findLib(lib)
			if src == "" {
				return fmt.Errorf("%s needs %s, not found on this machine", bin, lib)
			}
			files = append(files, File{Path: strings.TrimPrefix(src, "/"), Src: src})
			if err := addLibs(src); err != nil {
				return err
			}
		}
		return nil
	}
	for _, multi := range []struct{ bin, variant string }{{"xtables-nft-multi", "nft"}, {"xtables-legacy-multi", "legacy"}} {
		src, err := exec.LookPath(multi.bin)
		if err != nil {
			return nil, fmt.Errorf("iptables for the image: %w (apt-get install iptables)", err)
		}
		files = append(files, File{Path: "usr/sbin/" + multi.bin, Src: src})
		if err := addLibs(src); err != nil {
			return nil, err
		}
		for _, cmd := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"} {
			v := strings.Replace(cmd, "tables", "tables-"+multi.variant, 1)
			files = append(files, File{Path: "usr/sbin/" + v, Link: multi.bin})
			if multi.variant == "nft" { // Debian's default alternative
				files = append(files, File{Path: "usr/sbin/" + cmd, Link: multi.bin})
			}
		}
	}
	exts, _ := filepath.Glob("/usr/lib/x86_64-linux-gnu/xtables/*.so")
	if len(exts) == 0 {
		return nil, fmt.Errorf("iptables for the image: no extensions in /usr/lib/x86_64-linux-gnu/xtables")
	}
	for _, ext := range exts {
		if err := addLibs(ext); err != nil {
			continue // an extension whose library is missing here is not needed
		}
		files = append(files, File{Path: strings.TrimPrefix(ext, "/"), Src: ext})
	}
	// iptables-legacy takes its lock in /run (the init container's root file system is writable).
	files = append(files, File{Path: "run"})
	slices.SortStableFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

func findLib(lib string) string {
	for _, dir := range []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"} {
		p := filepath.Join(dir, lib)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}
