package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	goLine := "go:      " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	vcs := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}, {Key: "vcs.modified", Value: "true"},
	}}
	for _, c := range []struct {
		name                      string
		version, commit, modified string
		bi                        *debug.BuildInfo
		text, envoy               string
	}{
		{"go run: nothing known", "", "", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			"version: dev\ncommit:  unknown (built without version control information; `make build` records it)\n" + goLine,
			"unknown/dev/Clean/RELEASE/" + runtime.Version()},
		{"make build: linker flags", "v0.3.0", "fedcba9876543210fedcba9876543210fedcba98", "false", vcs,
			"version: v0.3.0\ncommit:  fedcba9876543210fedcba9876543210fedcba98\n" + goLine,
			"fedcba9876543210fedcba9876543210fedcba98/v0.3.0/Clean/RELEASE/" + runtime.Version()},
		{"go build in a checkout: VCS stamp", "", "", "", vcs,
			"version: dev\ncommit:  0123456789abcdef0123456789abcdef01234567 (with uncommitted changes)\n" + goLine,
			"0123456789abcdef0123456789abcdef01234567/dev/Modified/RELEASE/" + runtime.Version()},
		{"go install module@version", "", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}},
			"version: v1.2.3\n", "unknown/v1.2.3/Clean/RELEASE/" + runtime.Version()},
	} {
		t.Run(c.name, func(t *testing.T) {
			i := get(c.version, c.commit, c.modified, c.bi)
			if got := i.Text(); !strings.HasPrefix(got, c.text) {
				t.Errorf("Text() =\n%s\nwant it to start with\n%s", got, c.text)
			}
			if got := i.Envoy(); got != c.envoy {
				t.Errorf("Envoy() = %q, want %q", got, c.envoy)
			}
		})
	}
}
