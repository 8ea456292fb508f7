// Package model is the mesh as the control plane understands it: services, their ports and
// endpoints, workloads, and the VirtualServices and DestinationRules that apply to them, with
// Istio's host resolution and visibility rules. It sits between config and translate:
//
//	config (validated Istio objects) → model (Build) → translate (per-proxy Envoy protos)
//
// A Mesh is immutable once built; translate reads it from many goroutines at once.
package model
