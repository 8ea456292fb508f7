package kube

import (
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// FuzzProtocol: any port, name and appProtocol give one of the protocols the model knows.
func FuzzProtocol(f *testing.F) {
	for _, s := range []string{"http", "grpc-web", "tcp-x", "", "kubernetes.io/h2c", "HTTP2-a", "mongo"} {
		f.Add(int32(9080), s, "", false, false)
		f.Add(int32(3306), "x", s, true, false)
	}
	known := map[string]bool{"": true}
	for _, p := range []string{"HTTP", "HTTP2", "HTTPS", "GRPC", "GRPC-WEB", "TCP", "TLS", "UDP", "MONGO", "REDIS", "MYSQL", "HTTP_PROXY"} {
		known[p] = true
	}
	f.Fuzz(func(t *testing.T, port int32, name, app string, hasApp, udp bool) {
		proto := corev1.ProtocolTCP
		if udp {
			proto = corev1.ProtocolUDP
		}
		var ap *string
		if hasApp {
			ap = &app
		}
		if got := Protocol(port, name, proto, ap); !known[got] {
			t.Errorf("Protocol(%d, %q, %s, %q) = %q: not a protocol the model knows", port, name, proto, app, got)
		}
	})
}

// FuzzIstioObject: any JSON object from the API server is parsed without a panic, and
// a rejected object's messages name it and never a file.
func FuzzIstioObject(f *testing.F) {
	f.Add(`{"apiVersion":"networking.istio.io/v1","kind":"VirtualService","metadata":{"name":"a","namespace":"default"},"spec":{"hosts":["a"],"http":[{"route":[{"destination":{"host":"a"}}],"timeout":"x"}]}}`)
	f.Add(`{"apiVersion":"networking.istio.io/v1","kind":"DestinationRule","metadata":{"name":"a","namespace":"ns"},"spec":{"host":"a","subsets":[{"name":"v1","labels":{"version":"v1"}},{"name":"v1"}]}}`)
	f.Add(`{"apiVersion":"v1","kind":"VirtualService","metadata":{"name":"a"},"spec":"\u003cx\u003e"}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var u unstructured.Unstructured
		if err := json.Unmarshal([]byte(doc), &u.Object); err != nil || u.Object == nil {
			return
		}
		p := newParser()
		kind := u.GetKind()
		key := kind + " " + u.GetNamespace() + "/" + u.GetName()
		_, diags, _ := p.istioObjects(map[string]istioItem{key: {kind: kind, obj: &u}})
		for _, d := range diags {
			if d.File != "" || d.Line != 0 {
				t.Errorf("diagnostic %q has a place in a file", d.String())
			}
			if d.Level == config.Error && d.Kind != "" && !strings.HasPrefix(d.String(), d.Kind+" ") {
				t.Errorf("diagnostic %q does not start with the object", d.String())
			}
		}
	})
}
