package ads

import (
	"maps"
	"slices"
	"strings"
	"time"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// nodeState is the sync state of one node (over all its streams). Guarded by Server.mu.
type nodeState struct {
	node           *corepb.Node
	streams        int
	connectedAt    time.Time
	disconnectedAt time.Time
	types          map[string]*typeState // by short type name

	// The newest resources generated for the node, for /debug/config_dump.
	cur      map[string]view
	versions map[string]string
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

func (s *Server) typeStateLocked(c *conn, typeURL string) *typeState {
	n := s.nodes[c.nodeID]
	if n == nil {
		return nil
	}
	short := shortType(typeURL)
	t := n.types[short]
	if t == nil {
		t = &typeState{}
		n.types[short] = t
	}
	return t
}

func (s *Server) recordSent(c *conn, typeURL, version, nonce string) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.typeStateLocked(c, typeURL); t != nil {
		t.SentVersion, t.SentNonce, t.SentAt, t.sentStream = version, nonce, now, c.id
	}
}

// heldNonce stands for the nonce of a type a reconnecting delta client already held at
// the current version (nothing was sent, nothing is awaited): SYNCED in proxy-status.
const heldNonce = "held"

// recordHeld records that c's client already holds version of typeURL.
func (s *Server) recordHeld(c *conn, typeURL, version string) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.typeStateLocked(c, typeURL); t != nil {
		t.SentVersion, t.SentNonce, t.SentAt, t.sentStream = version, heldNonce, now, c.id
		t.AckedVersion, t.AckedNonce, t.AckedAt = version, heldNonce, now
	}
}

func (s *Server) recordAck(c *conn, typeURL, version string) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.typeStateLocked(c, typeURL)
	if t == nil || t.sentStream != c.id {
		return
	}
	if version == "" {
		version = t.SentVersion // delta requests carry no version
	}
	t.AckedVersion, t.AckedNonce, t.AckedAt = version, t.SentNonce, now
	t.loggedReason = ""
}

func (s *Server) recordNack(c *conn, typeURL, reason string) {
	now := s.now()
	s.mu.Lock()
	t := s.typeStateLocked(c, typeURL)
	if t == nil || t.sentStream != c.id {
		s.mu.Unlock()
		return
	}
	t.NackedVersion, t.NackNonce, t.NackReason, t.NackedAt = t.SentVersion, t.SentNonce, reason, now
	logIt := t.loggedReason != reason
	t.loggedReason = reason
	version := t.SentVersion
	s.mu.Unlock()
	if logIt {
		s.log.Warn("proxy rejected configuration (NACK)", "proxy", c.nodeID, "type", shortType(typeURL),
			"version", version, "error", reason)
	}
	if m := s.Metrics; m != nil {
		m.rejected(typeURL)
	}
}

func (s *Server) recordGenerated(id string, cur map[string]view, versions map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.nodes[id]; n != nil {
		n.cur, n.versions = cur, maps.Clone(versions)
	}
}

// expired reports whether a node has been disconnected longer than forgetAfter.
func (s *Server) expired(n *nodeState, now time.Time) bool {
	return n.streams == 0 && now.Sub(n.disconnectedAt) > s.forgetAfter
}

// pruneLocked forgets nodes disconnected longer than forgetAfter. Callers hold mu.
func (s *Server) pruneLocked() {
	now := s.now()
	for id, n := range s.nodes {
		if s.expired(n, now) {
			delete(s.nodes, id)
			s.log.Debug("forgot disconnected proxy", "proxy", id)
		}
	}
}

// SyncStatus reports every known proxy's sync state per type, sorted by proxy ID. A
// disconnected proxy is reported for ten minutes after it left.
func (s *Server) SyncStatus() []contract.ProxyStatus {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	lag := map[string]time.Time{}
	for _, c := range s.conns {
		if l := c.lagSince; !l.IsZero() && (lag[c.nodeID].IsZero() || l.Before(lag[c.nodeID])) {
			lag[c.nodeID] = l
		}
	}
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
			BehindSince: lag[id],
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
