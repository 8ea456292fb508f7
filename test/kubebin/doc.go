// Package kubebin pins the Kubernetes binaries Lucid's Kubernetes tests run against:
// kube-apiserver, kube-controller-manager, kube-scheduler and kubelet of k8s.io/kubernetes
// v1.36.3, and the etcd server of the go.etcd.io/etcd release that k8s.io/kubernetes itself
// depends on. It is a separate module so that the main module never depends on
// k8s.io/kubernetes or the etcd server; scripts/kube-bins.sh (make kube-bins) builds them into
// a cache outside the repository; internal/testutil/kubetest and internal/testutil/kubenode
// start them.
package kubebin
