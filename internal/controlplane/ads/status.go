package ads

import (
	"context"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	xdsserverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/lucid-mesh/lucid/internal/contract"
)

// nodeState is the sync state of one node. Guarded by Server.mu.
type nodeState struct {
	node           *corepb.Node
	streams        int
	connectedAt    time.Time
	disconnectedAt time.Time
	types          map[string]*typeState // by short type name
}

type typeState struct {
	contract.TypeStatus
	sentStream   int64  // the stream SentNonce belongs to (nonces are per stream)
	loggedReason string // the NACK reason last logged, so each distinct reason logs once
}

func (t *typeState) state() string {
	switch {
	case t.SentNonce == "":
		return contract.StateNotSent
	case t.NackNonce == t.SentNonce:
		return contract.StateError
	case t.AckedNonce == t.SentNonce:
		return contract.StateSynced
	default:
		return contract.StateStale
	}
}

// shortType names a type URL the way proxy-status does.
func shortType(typeURL string) string { return contract.ShortType(typeURL) }

// callbacks are go-control-plane's hooks into every stream. They run concurrently, on the
// streams' goroutines.
func (s *Server) callbacks() xdsserverv3.Callbacks {
	return xdsserverv3.CallbackFuncs{
		StreamClosedFunc:   s.onStreamClosed,
		StreamRequestFunc:  s.onStreamRequest,
		StreamResponseFunc: s.onStreamResponse,
	}
}

// onStreamRequest registers a stream's node on its first request (and publishes the node's
// snapshot at once), then records ACKs and NACKs.
func (s *Server) onStreamRequest(streamID int64, req *discoverygrpc.DiscoveryRequest) error {
	node := req.GetNode()
	id := node.GetId()
	if id == "" {
		return status.Error(codes.InvalidArgument, "node.id is required on the first request of a stream")
	}
	now := s.now()

	s.mu.Lock()
	_, known := s.streams[streamID]
	if !known {
		s.streams[streamID] = id
		n := s.nodes[id]
		if n == nil || n.streams == 0 {
			// A fresh connection: what an earlier connection was sent does not count.
			n = &nodeState{connectedAt: now, types: map[string]*typeState{}}
			s.nodes[id] = n
		}
		n.node = node
		n.streams++
	}
	s.recordRequestLocked(streamID, id, req, now)
	s.mu.Unlock()

	if !known {
		s.log.Info("proxy connected", "proxy", id, "stream", streamID)
		// Publish before the server creates the watch for this request, so the very
		// first request is answered from a snapshot made for this node.
		s.genMu.Lock()
		s.pruneLocked()
		s.publishLocked(node)
		s.genMu.Unlock()
	}
	return nil
}

// recordRequestLocked turns a request that answers the last response sent on this stream
// into an ACK or a NACK. Callers hold mu.
func (s *Server) recordRequestLocked(streamID int64, id string, req *discoverygrpc.DiscoveryRequest, now time.Time) {
	nonce := req.GetResponseNonce()
	if nonce == "" {
		return
	}
	n := s.nodes[id]
	if n == nil {
		return
	}
	short := shortType(req.GetTypeUrl())
	t := n.types[short]
	if t == nil || t.sentStream != streamID || t.SentNonce != nonce {
		return // answers an older response; the server ignores it too
	}
	if detail := req.GetErrorDetail(); detail != nil {
		t.NackedVersion, t.NackNonce, t.NackReason, t.NackedAt = t.SentVersion, nonce, detail.GetMessage(), now
		// A NACK carries the last version the proxy accepted. Left as is, the snapshot
		// cache would see an old version and resend the rejected response at once, and
		// the proxy would reject it again, forever. Telling the cache the proxy holds the
		// rejected version parks the request until the configuration changes, as Istio
		// does. (The server hands this same request to the cache after this callback.)
		req.VersionInfo = t.SentVersion
		if t.loggedReason != t.NackReason {
			t.loggedReason = t.NackReason
			s.log.Warn("proxy rejected configuration (NACK)", "proxy", id, "type", short,
				"version", t.SentVersion, "error", t.NackReason)
		}
		return
	}
	t.AckedVersion, t.AckedNonce, t.AckedAt = req.GetVersionInfo(), nonce, now
	t.loggedReason = ""
}

// onStreamResponse records what is about to be sent.
func (s *Server) onStreamResponse(_ context.Context, streamID int64, req *discoverygrpc.DiscoveryRequest, resp *discoverygrpc.DiscoveryResponse) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.streams[streamID]
	if !ok {
		id = req.GetNode().GetId()
	}
	n := s.nodes[id]
	if n == nil {
		return
	}
	typeURL := resp.GetTypeUrl()
	if typeURL == "" {
		typeURL = req.GetTypeUrl()
	}
	short := shortType(typeURL)
	t := n.types[short]
	if t == nil {
		t = &typeState{}
		n.types[short] = t
	}
	t.SentVersion, t.SentNonce, t.SentAt, t.sentStream = resp.GetVersionInfo(), resp.GetNonce(), now, streamID
}

func (s *Server) onStreamClosed(streamID int64, _ *corepb.Node) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.streams[streamID]
	if !ok {
		return // closed before its first request
	}
	delete(s.streams, streamID)
	n := s.nodes[id]
	if n == nil {
		return
	}
	n.streams--
	if n.streams == 0 {
		n.disconnectedAt = now
		s.log.Info("proxy disconnected", "proxy", id, "stream", streamID)
	}
}

// expired reports whether a node has been disconnected longer than forgetAfter.
func (s *Server) expired(n *nodeState, now time.Time) bool {
	return n.streams == 0 && now.Sub(n.disconnectedAt) > s.forgetAfter
}

// pruneLocked forgets nodes disconnected longer than forgetAfter: their status and their
// snapshot. Callers hold genMu.
func (s *Server) pruneLocked() {
	now := s.now()
	s.mu.Lock()
	var gone []string
	for id, n := range s.nodes {
		if s.expired(n, now) {
			delete(s.nodes, id)
			gone = append(gone, id)
		}
	}
	s.mu.Unlock()
	for _, id := range gone {
		delete(s.published, id)
		s.cache.ClearSnapshot(id)
		s.log.Debug("forgot disconnected proxy", "proxy", id)
	}
}

// SyncStatus reports every known proxy's sync state per type, sorted by proxy ID. A
// disconnected proxy is reported for ten minutes after it left.
func (s *Server) SyncStatus() []contract.ProxyStatus {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]contract.ProxyStatus, 0, len(s.nodes))
	for id, n := range s.nodes {
		if s.expired(n, now) {
			continue
		}
		ps := contract.ProxyStatus{
			ID:          id,
			Connected:   n.streams > 0,
			ConnectedAt: n.connectedAt,
			Metadata:    stringMetadata(n.node),
			Types:       map[string]*contract.TypeStatus{},
		}
		for _, short := range []string{contract.LDS, contract.RDS, contract.CDS, contract.EDS} {
			ps.Types[short] = &contract.TypeStatus{State: contract.StateNotSent}
		}
		for short, t := range n.types {
			ts := t.TypeStatus
			ts.State = t.state()
			ps.Types[short] = &ts
		}
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b contract.ProxyStatus) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func stringMetadata(node *corepb.Node) map[string]string {
	out := map[string]string{}
	for k, v := range node.GetMetadata().GetFields() {
		if _, ok := v.GetKind().(*structpb.Value_StringValue); ok {
			out[k] = v.GetStringValue()
		}
	}
	return out
}
