// Package proxyless runs examples/grpc-proxyless end to end: `lucid discovery` on the
// example's directory, the echo service's versions as plain grpc-go servers, and grpc-go
// clients that take their routing from the control plane over xDS with the example's
// bootstrap (node metadata GENERATOR "grpc"), with no sidecar anywhere.
package proxyless
