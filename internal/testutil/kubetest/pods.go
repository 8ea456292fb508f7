package kubetest

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Pods and Nodes, for the kubelet stand-in below.
var (
	Pods  = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	Nodes = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
)

// NodeName is the one Node RunPod binds Pods to.
const NodeName = "kubetest-node"

// RunPod does what the scheduler and kubelet would for an existing Pod: binds it to the
// Node NodeName (created on first use) and reports it Running with the given IP and
// Ready=True. Use SetPodReady to flip readiness afterwards.
func (c *Cluster) RunPod(ctx context.Context, ns, name, ip string) error {
	dyn, err := c.Dynamic()
	if err != nil {
		return err
	}
	node := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Node"}}
	node.SetName(NodeName)
	if _, err := dyn.Resource(Nodes).Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubetest: create node: %w", err)
	}
	binding := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Binding",
		"target": map[string]any{"apiVersion": "v1", "kind": "Node", "name": NodeName},
	}}
	binding.SetName(name)
	binding.SetNamespace(ns)
	if _, err := dyn.Resource(Pods).Namespace(ns).Create(ctx, binding, metav1.CreateOptions{}, "binding"); err != nil {
		return fmt.Errorf("kubetest: bind pod %s/%s: %w", ns, name, err)
	}
	return c.setPodStatus(ctx, ns, name, ip, true)
}

// SetPodReady sets a running Pod's Ready condition, as the kubelet does when its readiness
// probe passes or fails.
func (c *Cluster) SetPodReady(ctx context.Context, ns, name string, ready bool) error {
	return c.setPodStatus(ctx, ns, name, "", ready)
}

func (c *Cluster) setPodStatus(ctx context.Context, ns, name, ip string, ready bool) error {
	dyn, err := c.Dynamic()
	if err != nil {
		return err
	}
	pod, err := dyn.Resource(Pods).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("kubetest: pod %s/%s: %w", ns, name, err)
	}
	status, _, _ := unstructured.NestedMap(pod.Object, "status")
	if status == nil {
		status = map[string]any{}
	}
	now := time.Now().UTC().Format(time.RFC3339)
	readyStr := "False"
	if ready {
		readyStr = "True"
	}
	status["phase"] = "Running"
	if ip != "" {
		status["podIP"] = ip
		status["podIPs"] = []any{map[string]any{"ip": ip}}
		status["hostIP"] = ip
		status["hostIPs"] = []any{map[string]any{"ip": ip}}
		status["startTime"] = now
	}
	cond := func(typ, st string) map[string]any {
		return map[string]any{"type": typ, "status": st, "lastTransitionTime": now}
	}
	status["conditions"] = []any{
		cond("PodScheduled", "True"), cond("Initialized", "True"),
		cond("ContainersReady", readyStr), cond("Ready", readyStr),
	}
	pod.Object["status"] = status
	if _, err := dyn.Resource(Pods).Namespace(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("kubetest: pod %s/%s status: %w", ns, name, err)
	}
	return nil
}

// DeletePod removes a Pod at once, as the kubelet does once a bound Pod's containers have
// stopped (there is no kubelet here: a gracefully deleted bound Pod would stay Terminating).
func (c *Cluster) DeletePod(ctx context.Context, ns, name string) error {
	dyn, err := c.Dynamic()
	if err != nil {
		return err
	}
	zero := int64(0)
	if err := dyn.Resource(Pods).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		return fmt.Errorf("kubetest: delete pod %s/%s: %w", ns, name, err)
	}
	return nil
}
