package kubenode_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lucid-mesh/lucid/internal/testutil/kubenode"
	"github.com/lucid-mesh/lucid/internal/testutil/kubetest"
)

func TestMain(m *testing.M) { os.Exit(kubenode.SharedMain(m).Run()) }

// TestPodRuns is the harness's own check: a pod from an image built from the working tree
// is scheduled, started and probed by the kubelet, reachable at its IP from the host, and
// its log readable through the API server (apiserver → kubelet).
func TestPodRuns(t *testing.T) {
	n := kubenode.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := n.Apply(ctx, `
apiVersion: v1
kind: Pod
metadata: {name: hello, namespace: default}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: `+kubenode.DemoImage+`
    args: [--listen, "0.0.0.0:8080", --name, hello]
    readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1}
`)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := n.Dynamic()
	if err != nil {
		t.Fatal(err)
	}
	var ip string
	deadline := time.Now().Add(90 * time.Second)
	for {
		p, err := dyn.Resource(kubetest.Pods).Namespace("default").Get(ctx, "hello", metav1.GetOptions{})
		if err == nil {
			ip, _, _ = unstructured.NestedString(p.Object, "status", "podIP")
			conds, _, _ := unstructured.NestedSlice(p.Object, "status", "conditions")
			ready := false
			for _, c := range conds {
				if m := c.(map[string]any); m["type"] == "Ready" && m["status"] == "True" {
					ready = true
				}
			}
			if ready {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod not Ready: %v\n%s", err, n.Logs(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
	resp, err := http.Get(fmt.Sprintf("http://%s:8080/x", ip))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"service": "hello"`) {
		t.Fatalf("answer %q", body)
	}
	t.Logf("pod IP %s answered: %s", ip, body)
}
