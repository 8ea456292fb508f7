package agent

import (
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/peermeta"
)

// peerMetadata is this workload's side of Istio's metadata exchange (the
// x-envoy-peer-metadata headers), which labels the source_* and destination_* of the
// peers' metrics.
func peerMetadata(o Options) forward.PeerMetadata {
	id, v, err := peermeta.Encode(peermeta.Workload{
		NodeID: nodeIDOf(o), Name: o.Workload, Namespace: o.Namespace, WorkloadName: o.Workload,
		ClusterID: "Kubernetes", MeshID: "cluster.local", ServiceAccount: "default", Labels: o.Labels,
	})
	if err != nil {
		return forward.PeerMetadata{} // labels only strings: Encode cannot fail; no exchange if it did
	}
	return forward.PeerMetadata{ID: id, Value: v}
}
