package contract

import "time"

// xDS resource types by the short names istioctl proxy-status uses.
const (
	LDS = "LDS"
	RDS = "RDS"
	CDS = "CDS"
	EDS = "EDS"
	SDS = "SDS"
)

// Type URLs of the xDS resources Lucid serves (Envoy v3).
const (
	ListenerTypeURL = "type.googleapis.com/envoy.config.listener.v3.Listener"
	RouteTypeURL    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	ClusterTypeURL  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	EndpointTypeURL = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	SecretTypeURL   = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
)

// ShortType names a type URL the way proxy-status does ("LDS", ...); an unknown URL is
// named by its last dotted element.
func ShortType(typeURL string) string {
	switch typeURL {
	case ListenerTypeURL:
		return LDS
	case RouteTypeURL:
		return RDS
	case ClusterTypeURL:
		return CDS
	case EndpointTypeURL:
		return EDS
	case SecretTypeURL:
		return SDS
	}
	for i := len(typeURL) - 1; i >= 0; i-- {
		if typeURL[i] == '.' {
			return typeURL[i+1:]
		}
	}
	return typeURL
}

// Sync states, as `istioctl proxy-status` shows them.
const (
	StateSynced  = "SYNCED"   // the proxy acked the last response sent
	StateNotSent = "NOT SENT" // nothing of this type was sent
	StateStale   = "STALE"    // a response was sent and not (yet) acked
	StateError   = "ERROR"    // the proxy rejected (NACKed) the last response sent
)

// SyncPath is the control plane's debug endpoint that lists every proxy's ProxyStatus as a
// JSON array.
const SyncPath = "/debug/syncz"

// ProxyStatus is what the control plane knows about one proxy's configuration: one element
// of SyncPath's JSON array.
type ProxyStatus struct {
	ID          string
	Connected   bool
	ConnectedAt time.Time
	// Metadata holds node.metadata's string fields.
	Metadata map[string]string
	// Types by short type name: LDS, RDS, CDS, EDS.
	Types map[string]*TypeStatus
	// BehindSince is when the oldest configuration change the proxy has not acknowledged
	// yet happened; zero when it holds the newest configuration. Its lag is now minus this.
	BehindSince time.Time `json:",omitzero"`
}

// TypeStatus is the sync state of one proxy for one resource type.
type TypeStatus struct {
	SentVersion, SentNonce string
	SentAt                 time.Time

	AckedVersion, AckedNonce string
	AckedAt                  time.Time

	// NackedVersion is the version the proxy rejected (the one sent with NackNonce).
	NackedVersion, NackNonce, NackReason string
	NackedAt                             time.Time

	// State is StateError if the last response sent was NACKed, StateNotSent if nothing
	// was sent, StateSynced if the last response sent was acked, else StateStale.
	State string
}
