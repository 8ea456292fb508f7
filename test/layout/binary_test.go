package layout

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The lucid binary stays lean by rule, not by luck: every module it links is named here with
// the reason it is worth its weight. A new dependency of cmd/lucid fails this test until
// someone writes down why it is needed (and looks at what it costs: docs/architecture.md,
// "What the binary links", shows how to measure); a module that is no longer linked must
// leave the table, so the table stays the true list.
//
// Modules that only a test, a benchmark or a separate test module needs do not appear: they
// are not in the binary.
var binaryModules = map[string]string{
	module: "Lucid itself",

	// xDS: the protocol between control plane and proxies.
	"github.com/envoyproxy/go-control-plane":       "Envoy's xDS protocol types (root module)",
	"github.com/envoyproxy/go-control-plane/envoy": "Envoy's xDS resources: what the control plane sends and the proxy decodes",
	"github.com/envoyproxy/protoc-gen-validate":    "validation rules the xDS types carry",
	"github.com/cncf/xds/go":                       "xDS core types (TypedStruct, matchers) referenced by Envoy's resources",
	"cel.dev/expr":                                 "CEL expression types referenced by cncf/xds matchers",
	"google.golang.org/grpc":                       "ADS, the CA's certificate service and proxyless gRPC clients",
	"google.golang.org/protobuf":                   "protobuf encoding of xDS and Istio's APIs",
	"github.com/golang/protobuf":                   "jsonpb: Istio's own MeshConfig decoding (durations, Struct fields)",
	"google.golang.org/genproto/googleapis/api":    "annotations referenced by Istio's and Envoy's protos",
	"google.golang.org/genproto/googleapis/rpc":    "gRPC status details",
	"istio.io/api":                                 "Istio's APIs: the configuration users bring, the CA's protocol",
	"go.opentelemetry.io/proto/otlp":               "OTLP: spans exported to the tracing provider",
	"golang.org/x/net":                             "HTTP/2 framing and h2c",
	"golang.org/x/text":                            "IDNA and Unicode tables for host names (x/net)",
	"golang.org/x/sys":                             "socket options: SO_ORIGINAL_DST, TPROXY, keep-alive probes",
	"github.com/miekg/dns":                         "the DNS proxy and `lucid` DNS answers",
	"github.com/go-jose/go-jose/v4":                "JWT verification for RequestAuthentication",
	"github.com/vishvananda/netlink":               "capture: interfaces and routes in the pod's network namespace",
	"github.com/vishvananda/netns":                 "capture: entering network namespaces (netlink)",
	"github.com/prometheus/client_golang":          "the agent's merged /stats/prometheus endpoint",
	"github.com/prometheus/client_model":           "Prometheus exposition (client_golang)",
	"github.com/prometheus/common":                 "Prometheus text format (client_golang)",
	"github.com/prometheus/procfs":                 "process metrics (client_golang)",
	"github.com/beorn7/perks":                      "quantile streams (client_golang)",
	"github.com/cespare/xxhash/v2":                 "hashing (client_golang)",
	"github.com/munnerz/goautoneg":                 "content negotiation (prometheus/common, client-go)",
	"go.yaml.in/yaml/v3":                           "the configuration parser: YAML nodes with line numbers",
	"go.yaml.in/yaml/v4":                           "YAML syntax errors with line and column",
	"github.com/spf13/cobra":                       "the CLI",
	"github.com/spf13/pflag":                       "the CLI's flags",
	"k8s.io/client-go":                             "Kubernetes mode: informers, the webhook, install, TokenReview",
	"k8s.io/api":                                   "Kubernetes object types",
	"k8s.io/apimachinery":                          "Kubernetes object machinery (client-go)",
	"k8s.io/klog/v2":                               "client-go's logging, routed into Lucid's logger",
	"k8s.io/utils":                                 "client-go helpers",
	"k8s.io/kube-openapi":                          "client-go's apply configurations",
	"sigs.k8s.io/json":                             "Kubernetes JSON decoding (apimachinery)",
	"sigs.k8s.io/yaml":                             "Kubernetes YAML decoding (apimachinery)",
	"sigs.k8s.io/structured-merge-diff/v6":         "server-side apply types (apimachinery)",
	"sigs.k8s.io/randfill":                         "apimachinery's fuzzing helpers, linked by its API types",
	"go.yaml.in/yaml/v2":                           "sigs.k8s.io/yaml's decoder",
	"github.com/fxamacker/cbor/v2":                 "Kubernetes CBOR encoding (apimachinery)",
	"github.com/x448/float16":                      "CBOR floats (fxamacker/cbor)",
	"github.com/json-iterator/go":                  "Kubernetes JSON (apimachinery)",
	"github.com/modern-go/concurrent":              "json-iterator",
	"github.com/modern-go/reflect2":                "json-iterator",
	"github.com/go-logr/logr":                      "klog's logger interface",
	"golang.org/x/oauth2":                          "client-go's token sources",
	"golang.org/x/term":                            "client-go's exec credential plugins",
	"golang.org/x/time":                            "client-go's rate limiters",
	"gopkg.in/inf.v0":                              "Kubernetes resource quantities",
	"github.com/pmezard/go-difflib":                "apimachinery's diff helpers",
	"github.com/davecgh/go-spew":                   "k8s.io/utils' dump helpers",
}

func TestBinaryModules(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}", module+"/cmd/lucid").Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/lucid: %v", err)
	}
	linked := map[string]bool{}
	for _, m := range strings.Fields(string(out)) {
		linked[m] = true
	}
	var added, gone []string
	for m := range linked {
		if _, ok := binaryModules[m]; !ok {
			added = append(added, m)
		}
	}
	for m := range binaryModules {
		if !linked[m] {
			gone = append(gone, m)
		}
	}
	slices.Sort(added)
	slices.Sort(gone)
	for _, m := range added {
		t.Errorf("cmd/lucid now links %s: add it to binaryModules with the reason it is worth its weight "+
			"(see `go mod why -m %s` and docs/architecture.md \"What the binary links\")", m, m)
	}
	for _, m := range gone {
		t.Errorf("cmd/lucid no longer links %s: remove its row from binaryModules", m)
	}
}
