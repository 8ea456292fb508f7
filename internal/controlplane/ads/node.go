package ads

import (
	"strings"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// NodeLabels returns the workload labels a proxy sends in its node metadata, Istio's
// "LABELS" (a Struct of strings), or nil when it sends none. On Kubernetes a gateway has
// no WorkloadEntry: the control plane takes its labels from here to find the Gateways
// whose selector matches it (the caller puts them in model.Proxy.Labels before
// Mesh.ResolveProxy, which keeps them when no WorkloadEntry matches).
func NodeLabels(node *corepb.Node) map[string]string {
	v := node.GetMetadata().GetFields()["LABELS"]
	if str, ok := v.GetKind().(*structpb.Value_StringValue); ok {
		return parseLabelList(str.StringValue) // lucid's agent: "k=v,k2=v2"
	}
	s, ok := v.GetKind().(*structpb.Value_StructValue)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for k, f := range s.StructValue.GetFields() {
		if str, ok := f.GetKind().(*structpb.Value_StringValue); ok {
			out[k] = str.StringValue
		}
	}
	return out
}

// parseLabelList reads "k=v,k2=v2"; pieces without "=" are skipped.
func parseLabelList(s string) map[string]string {
	if s == "" {
		return nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			out[k] = v
		}
	}
	return out
}

// NodeInterceptionMode is the capture mode a sidecar reports in its node metadata, Istio's
// "INTERCEPTION_MODE" (REDIRECT, TPROXY, NONE) in upper case, or "".
func NodeInterceptionMode(node *corepb.Node) string {
	return strings.ToUpper(node.GetMetadata().GetFields()["INTERCEPTION_MODE"].GetStringValue())
}

// NodeGenerator is the generator a client asks for in its node metadata, Istio's
// "GENERATOR" ("grpc" for proxyless gRPC), or "".
func NodeGenerator(node *corepb.Node) string {
	return node.GetMetadata().GetFields()["GENERATOR"].GetStringValue()
}
