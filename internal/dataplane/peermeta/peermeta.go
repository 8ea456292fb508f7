// Package peermeta is Istio's HTTP metadata exchange: a sidecar tells the next hop who it
// is in the x-envoy-peer-metadata and x-envoy-peer-metadata-id headers, so the server side
// can label its metrics with the source workload (and the client side with the
// destination, from the same headers on the response). The value is a base64
// protobuf google.protobuf.Struct holding the workload's node metadata with Istio's keys
// (NAME, NAMESPACE, CLUSTER_ID, MESH_ID, WORKLOAD_NAME, SERVICE_ACCOUNT, LABELS).
//
// forward adds the headers to requests it sends to a mesh peer and to responses it
// returns to one, reads them from what it receives, and strips them before the
// application or an outside client sees them. A header from outside the mesh is not
// trusted (the edge strips it), as Istio's proxies do.
package peermeta

import (
	"encoding/base64"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// The exchange headers.
const (
	HeaderID       = "X-Envoy-Peer-Metadata-Id"
	HeaderMetadata = "X-Envoy-Peer-Metadata"
)

// Canonical label names Istio reads for canonical_service/revision.
const (
	LabelCanonicalName     = "service.istio.io/canonical-name"
	LabelCanonicalRevision = "service.istio.io/canonical-revision"
)

// maxEncoded bounds what Decode accepts (a hostile peer cannot make it allocate much).
const maxEncoded = 8 << 10

// Workload is what a proxy says about itself.
type Workload struct {
	NodeID         string // sent as the -id header
	Name           string // pod or WorkloadEntry name
	Namespace      string
	WorkloadName   string
	ClusterID      string
	MeshID         string
	ServiceAccount string
	Labels         map[string]string
}

// Encode renders w as the two header values (id, metadata). The result can be computed
// once per proxy and reused on every request.
func Encode(w Workload) (id, metadata string, err error) {
	labels := make(map[string]any, len(w.Labels))
	for k, v := range w.Labels {
		labels[k] = v
	}
	s, err := structpb.NewStruct(map[string]any{
		"NAME": w.Name, "NAMESPACE": w.Namespace, "WORKLOAD_NAME": w.WorkloadName,
		"CLUSTER_ID": w.ClusterID, "MESH_ID": w.MeshID, "SERVICE_ACCOUNT": w.ServiceAccount,
		"LABELS": labels,
	})
	if err != nil {
		return "", "", fmt.Errorf("peermeta: %w", err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(s)
	if err != nil {
		return "", "", fmt.Errorf("peermeta: %w", err)
	}
	return w.NodeID, base64.StdEncoding.EncodeToString(b), nil
}

// ErrTooLarge is Decode's error for a header over the bound.
var ErrTooLarge = errors.New("peermeta: x-envoy-peer-metadata too large")

// Decode reads a peer's x-envoy-peer-metadata into the metric labels it gives: workload,
// namespace, app, version, canonical service and revision, cluster.
func Decode(metadata string) (streaminfo.Peer, error) {
	if len(metadata) > maxEncoded {
		return streaminfo.Peer{}, ErrTooLarge
	}
	b, err := base64.StdEncoding.DecodeString(metadata)
	if err != nil {
		return streaminfo.Peer{}, fmt.Errorf("peermeta: not base64: %w", err)
	}
	var s structpb.Struct
	if err := proto.Unmarshal(b, &s); err != nil {
		return streaminfo.Peer{}, fmt.Errorf("peermeta: not a google.protobuf.Struct: %w", err)
	}
	str := func(st *structpb.Struct, k string) string { return st.GetFields()[k].GetStringValue() }
	labels := s.GetFields()["LABELS"].GetStructValue()
	p := streaminfo.Peer{
		Workload:          str(&s, "WORKLOAD_NAME"),
		Namespace:         str(&s, "NAMESPACE"),
		Cluster:           str(&s, "CLUSTER_ID"),
		App:               str(labels, "app"),
		Version:           str(labels, "version"),
		CanonicalService:  str(labels, LabelCanonicalName),
		CanonicalRevision: str(labels, LabelCanonicalRevision),
	}
	if p.Workload == "" {
		p.Workload = str(&s, "NAME")
	}
	// Istio's defaults when the canonical labels are missing: the app label (else the
	// workload name) and the version label (else "latest").
	if p.CanonicalService == "" {
		p.CanonicalService = p.App
		if p.CanonicalService == "" {
			p.CanonicalService = p.Workload
		}
	}
	if p.CanonicalRevision == "" {
		p.CanonicalRevision = p.Version
		if p.CanonicalRevision == "" {
			p.CanonicalRevision = "latest"
		}
	}
	return p, nil
}
