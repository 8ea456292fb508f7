package diag

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// emittedInCode lists the streaminfo flag constants forward's (non-test) code refers to.
func emittedInCode(t *testing.T) map[string]bool {
	t.Helper()
	dir := filepath.Join("..", "..", "internal", "dataplane", "forward")
	fset := token.NewFileSet()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") || name == "flags.go" {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "streaminfo" {
				switch sel.Sel.Name {
				case "Info", "Flag", "Peer", "AllFlags":
				default:
					out[sel.Sel.Name] = true
				}
			}
			return true
		})
	}
	return out
}

// TestErrorCatalogueCoversEveryFlag: docs/errors.md has a section for every flag forward
// can emit, and forward.EmittedFlags lists every flag forward's code sets.
func TestErrorCatalogueCoversEveryFlag(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "errors.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (.+)$`).FindAllStringSubmatch(string(doc), -1) {
		for _, part := range strings.Split(m[1], ",") {
			if code, _, ok := strings.Cut(strings.TrimSpace(part), " — "); ok {
				sections[code] = true
			}
		}
	}
	emitted := map[string]bool{}
	for _, f := range forward.EmittedFlags {
		emitted[f.String()] = true
		if !sections[f.String()] {
			t.Errorf("docs/errors.md has no section \"## %s — ...\" for a flag forward emits", f)
		}
	}
	// Every flag constant forward's code uses must be in EmittedFlags.
	names := map[streaminfo.Flag]string{}
	for _, f := range streaminfo.AllFlags() {
		names[f] = f.String()
	}
	consts := map[string]streaminfo.Flag{
		"NoRouteFound": streaminfo.NoRouteFound, "NoClusterFound": streaminfo.NoClusterFound,
		"NoHealthyUpstream": streaminfo.NoHealthyUpstream, "UpstreamConnectionFailure": streaminfo.UpstreamConnectionFailure,
		"UpstreamConnectionTermination": streaminfo.UpstreamConnectionTermination, "UpstreamRemoteReset": streaminfo.UpstreamRemoteReset,
		"UpstreamProtocolError": streaminfo.UpstreamProtocolError, "UpstreamRequestTimeout": streaminfo.UpstreamRequestTimeout,
		"UpstreamRetryLimitExceeded": streaminfo.UpstreamRetryLimitExceeded, "DownstreamConnectionTermination": streaminfo.DownstreamConnectionTermination,
		"FaultInjected": streaminfo.FaultInjected, "DelayInjected": streaminfo.DelayInjected, "LocalReset": streaminfo.LocalReset,
		"UpstreamOverflow": streaminfo.UpstreamOverflow, "RateLimited": streaminfo.RateLimited, "StreamIdleTimeout": streaminfo.StreamIdleTimeout,
		"DurationTimeout": streaminfo.DurationTimeout, "DownstreamProtocolError": streaminfo.DownstreamProtocolError,
		"UpstreamMaxStreamDurationReached": streaminfo.UpstreamMaxStreamDurationReached, "DownstreamRemoteReset": streaminfo.DownstreamRemoteReset,
		"InvalidEnvoyRequestHeaders": streaminfo.InvalidEnvoyRequestHeaders, "FailedLocalHealthCheck": streaminfo.FailedLocalHealthCheck,
		"UnauthorizedExternalService": streaminfo.UnauthorizedExternalService, "RateLimitServiceError": streaminfo.RateLimitServiceError,
		"NoFilterConfigFound": streaminfo.NoFilterConfigFound, "OverloadManager": streaminfo.OverloadManager, "DNSResolutionFailed": streaminfo.DNSResolutionFailed,
	}
	for name := range emittedInCode(t) {
		f, ok := consts[name]
		if !ok {
			continue // not a flag (a type or function of streaminfo)
		}
		if !emitted[names[f]] {
			t.Errorf("internal/dataplane/forward sets streaminfo.%s (%s) but forward.EmittedFlags does not list it", name, names[f])
		}
	}
	if len(consts) != len(streaminfo.AllFlags()) {
		t.Errorf("the test knows %d flag constants, streaminfo has %d: add the new ones", len(consts), len(streaminfo.AllFlags()))
	}
}
