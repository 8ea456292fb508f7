// Package version says which build of lucid is running: the version, the commit it was
// built from and the Go toolchain. `lucid version` prints it, the proxy reports it in the
// admin API's /server_info and in the bootstrap node of /config_dump, and `lucid install`
// picks the image tag from it.
//
// Version, Commit and Modified are set at link time (`make build` and the Dockerfile do):
//
//	-ldflags "-X github.com/lucid-mesh/lucid/internal/version.Version=v0.1.0
//	          -X github.com/lucid-mesh/lucid/internal/version.Commit=$(git rev-parse HEAD)
//	          -X github.com/lucid-mesh/lucid/internal/version.Modified=false"
//
// Without them the module's build information is read (`go install …@version` sets the
// version, `go build` in a Git checkout the commit); `go run` has neither.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
)

// Set by the linker; empty means "read the module build information".
var (
	Version  = ""
	Commit   = ""
	Modified = "" // "true" when the working tree had uncommitted changes
)

// Info describes this binary.
type Info struct {
	Version  string `json:"version"`            // "dev" for a build without a version
	Commit   string `json:"commit,omitempty"`   // full hash; "" when unknown
	Modified bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
	Go       string `json:"go"`                 // runtime.Version()
	Platform string `json:"platform"`           // GOOS/GOARCH
}

// Get returns this binary's Info.
func Get() Info {
	return get(Version, Commit, Modified, readBuildInfo())
}

func readBuildInfo() *debug.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return bi
}

func get(version, commit, modified string, bi *debug.BuildInfo) Info {
	i := Info{Version: version, Commit: commit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	i.Modified, _ = strconv.ParseBool(modified)
	if bi != nil {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		if i.Commit == "" {
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					i.Commit = s.Value
				case "vcs.modified":
					i.Modified = s.Value == "true"
				}
			}
		}
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	return i
}

// String returns this binary's version ("dev" when it has none).
func String() string { return Get().Version }

// Text is what `lucid version` prints: one "key: value" line each for the version, the
// commit and the Go toolchain.
func (i Info) Text() string {
	commit := "unknown (built without version control information; `make build` records it)"
	if i.Commit != "" {
		commit = i.Commit
		if i.Modified {
			commit += " (with uncommitted changes)"
		}
	}
	return fmt.Sprintf("version: %s\ncommit:  %s\ngo:      %s %s\n", i.Version, commit, i.Go, i.Platform)
}

// Envoy is the version in the shape Envoy reports in /server_info and its bootstrap node,
// commit/version/tree state/build type/TLS library:
// "f632b71…/dev/Modified/RELEASE/go1.26.8" (Envoy: "…/1.32.0/Clean/RELEASE/BoringSSL").
// Go's crypto/tls is the TLS library, so the last field names the Go toolchain.
func (i Info) Envoy() string {
	commit := i.Commit
	if commit == "" {
		commit = "unknown"
	}
	tree := "Clean"
	if i.Modified {
		tree = "Modified"
	}
	return commit + "/" + i.Version + "/" + tree + "/RELEASE/" + i.Go
}
