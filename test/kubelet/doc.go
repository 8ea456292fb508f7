// Package kubelet verifies Lucid's app probes against the kubelet's own probe code
// (k8s.io/kubernetes/pkg/probe/{http,tcp,grpc}): for each app behaviour, the kubelet
// probing Lucid's rewritten /app-health URL reaches the same verdict as the kubelet
// probing the app directly. It is a separate module so that the main module does not
// depend on k8s.io/kubernetes; run it with `cd test/kubelet && go test ./...`.
package kubelet
