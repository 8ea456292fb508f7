// Package testutil is the test kit every package's tests share: golden files with one
// -update flag (Golden), waiting for a condition (Eventually; Poll where there is no
// testing.TB), a buffer safe for concurrent writers (Buffer), loopback backends
// (Backend), and the table of loopback subnets each package's tests own (Subnet,
// subnets.go). Its subpackages start bigger parts: meshtest (a whole mesh in one
// process), kubetest (etcd + kube-apiserver), telemetrytest (an OpenTelemetry Collector,
// Prometheus), catest (the mesh CA), netns (a private network namespace). Tests only:
// depguard keeps it out of production code.
package testutil
