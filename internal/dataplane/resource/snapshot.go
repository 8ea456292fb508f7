package resource

// Snapshot is the whole configuration a proxy runs, as of one set of accepted xDS
// versions. The proxy applies a Snapshot atomically.
type Snapshot struct {
	Listeners map[string]*Listener    // by name
	Routes    map[string]*RouteConfig // by name
	Clusters  map[string]*Cluster     // by name
	Endpoints map[string]*Endpoints   // by cluster (service) name
	// Versions holds the accepted version_info per type URL.
	Versions map[string]string
}
