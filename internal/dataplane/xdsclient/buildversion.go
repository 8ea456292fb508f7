package xdsclient

import (
	"strconv"
	"strings"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typepb "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// setUserAgentVersion sets the node's version as Envoy sends it, user_agent_build_version: the
// semantic version and the build's metadata (revision.sha, revision.status, build.type,
// ssl.version, and build.label for a pre-release or a version that is not a number), read
// from the build string in Envoy's /server_info form
// "<commit>/<version>/<Clean|Modified>/<build type>/<TLS library>". istioctl's bootstrap
// summary prints it as "Envoy Version: 1.2.3/Clean/RELEASE/go1.26". A version "dev"
// becomes 0.0.0 with build.label "dev"; a string of another form is kept as
// user_agent_version.
func setUserAgentVersion(n *corepb.Node, build string) {
	parts := strings.Split(build, "/")
	if len(parts) != 5 {
		n.UserAgentVersionType = &corepb.Node_UserAgentVersion{UserAgentVersion: build}
		return
	}
	sem, label := semanticVersion(parts[1])
	md := map[string]*structpb.Value{
		"revision.sha":    structpb.NewStringValue(parts[0]),
		"revision.status": structpb.NewStringValue(parts[2]),
		"build.type":      structpb.NewStringValue(parts[3]),
		"ssl.version":     structpb.NewStringValue(parts[4]),
	}
	if label != "" {
		md["build.label"] = structpb.NewStringValue(label)
	}
	n.UserAgentVersionType = &corepb.Node_UserAgentBuildVersion{UserAgentBuildVersion: &corepb.BuildVersion{
		Version: sem, Metadata: &structpb.Struct{Fields: md},
	}}
}

// semanticVersion splits "v1.2.3-rc.1" into 1.2.3 and the label "rc.1"; a version that
// does not start with three numbers is 0.0.0 labelled with the whole string.
func semanticVersion(v string) (*typepb.SemanticVersion, string) {
	core, label, _ := strings.Cut(strings.TrimPrefix(v, "v"), "-")
	nums := strings.Split(core, ".")
	if len(nums) != 3 {
		return &typepb.SemanticVersion{}, v
	}
	var n [3]uint32
	for i, s := range nums {
		x, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return &typepb.SemanticVersion{}, v
		}
		n[i] = uint32(x)
	}
	return &typepb.SemanticVersion{MajorNumber: n[0], MinorNumber: n[1], Patch: n[2]}, label
}
