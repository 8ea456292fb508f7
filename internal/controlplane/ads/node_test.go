package ads

import (
	"maps"
	"testing"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestNodeLabels(t *testing.T) {
	md, err := structpb.NewStruct(map[string]any{
		"NAMESPACE": "istio-system",
		"LABELS":    map[string]any{"istio": "ingressgateway", "app": "istio-ingressgateway", "replicas": 2.0},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := NodeLabels(&corepb.Node{Id: "router~10.0.0.1~gw.istio-system~istio-system.svc.cluster.local", Metadata: md})
	want := map[string]string{"istio": "ingressgateway", "app": "istio-ingressgateway"}
	if !maps.Equal(got, want) {
		t.Errorf("NodeLabels = %v, want %v (non-string values dropped)", got, want)
	}
	// lucid's own agent sends the flat "k=v,k2=v2" form.
	flat, _ := structpb.NewStruct(map[string]any{"LABELS": "istio=ingressgateway,app=istio-ingressgateway"})
	if got := NodeLabels(&corepb.Node{Metadata: flat}); !maps.Equal(got, want) {
		t.Errorf("NodeLabels(flat) = %v, want %v", got, want)
	}
	noLabels, _ := structpb.NewStruct(map[string]any{"LABELS": 1.0})
	for _, n := range []*corepb.Node{nil, {}, {Metadata: noLabels}} {
		if got := NodeLabels(n); got != nil {
			t.Errorf("NodeLabels(%v) = %v, want nil", n, got)
		}
	}
}
