// Package version reports the build's version, set at link time with
// -ldflags "-X github.com/lucid-mesh/lucid/internal/version.Version=...".
package version

import "runtime/debug"

// Version is set by the linker; empty means "read the module build info".
var Version = ""

// String returns the version of this binary.
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
