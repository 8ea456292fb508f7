// Package grpcxds is the agent of a proxyless gRPC workload (Istio's grpc-agent): it writes
// the xDS bootstrap a gRPC application reads (GRPC_XDS_BOOTSTRAP) and, with a mesh CA,
// keeps the workload certificate files that bootstrap's certificate provider names fresh.
// It sits beside the application, as the sidecar agent sits beside a proxy:
//
//	mesh CA (15012) ─► identity.Manager ─► cert-chain.pem, key.pem, root-cert.pem ─► gRPC's file_watcher
//	lucid discovery (15010) ◄─ ADS ─ gRPC's xDS client, node metadata GENERATOR "grpc" (bootstrap.json)
package grpcxds

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"
)

// The files Lucid writes in the output directory, Istio's names.
const (
	BootstrapFile = "bootstrap.json"
	CertChainFile = "cert-chain.pem"
	KeyFile       = "key.pem"
	RootCertFile  = "root-cert.pem"
)

// ServerListenerNameTemplate names a gRPC server's listener (Istio's
// grpcxds.ServerListenerNameTemplate; gRPC puts its listening address for %s).
const ServerListenerNameTemplate = "xds.istio.io/grpc/lds/inbound/%s"

// CertProviderInstance is the certificate provider the control plane's TLS contexts name.
const CertProviderInstance = "default"

// DefaultRefresh is how often gRPC rereads the certificate files (Istio: 15 minutes; a
// renewal is due at half the certificate's lifetime, hours ahead).
const DefaultRefresh = 15 * time.Minute

// BootstrapOptions describe the workload a bootstrap is for.
type BootstrapOptions struct {
	// Discovery is the control plane's plaintext ADS address (127.0.0.1:15010).
	Discovery string
	// Workload, Namespace and IP make the node id "sidecar~<ip>~<workload>.<namespace>~<namespace>.svc.cluster.local".
	Workload, Namespace string
	IP                  netip.Addr
	// CertDir is where the certificate files are; "" leaves certificate_providers out
	// (no mutual TLS: the application's xds credentials fall back).
	CertDir string
	// Refresh is the certificate provider's refresh interval (default DefaultRefresh).
	Refresh time.Duration
	// Labels are the workload's labels, sent as node metadata LABELS.
	Labels map[string]string
}

// NodeID is the workload's xDS node id, Istio's form.
func (o BootstrapOptions) NodeID() string {
	return fmt.Sprintf("sidecar~%s~%s.%s~%s.svc.cluster.local", o.IP, o.Workload, o.Namespace, o.Namespace)
}

type bootstrap struct {
	XDSServers           []xdsServer                    `json:"xds_servers"`
	Node                 node                           `json:"node"`
	CertificateProviders map[string]certificateProvider `json:"certificate_providers,omitempty"`
	ServerListenerName   string                         `json:"server_listener_resource_name_template"`
}

type xdsServer struct {
	ServerURI      string              `json:"server_uri"`
	ChannelCreds   []map[string]string `json:"channel_creds"`
	ServerFeatures []string            `json:"server_features"`
}

type node struct {
	ID       string         `json:"id"`
	Cluster  string         `json:"cluster"`
	Metadata map[string]any `json:"metadata"`
	Locality struct{}       `json:"locality"`
}

type certificateProvider struct {
	PluginName string            `json:"plugin_name"`
	Config     fileWatcherConfig `json:"config"`
}

type fileWatcherConfig struct {
	CertificateFile   string `json:"certificate_file"`
	PrivateKeyFile    string `json:"private_key_file"`
	CACertificateFile string `json:"ca_certificate_file"`
	RefreshInterval   string `json:"refresh_interval"`
}

// Bootstrap is the gRPC xDS bootstrap (JSON) for o: the control plane over plaintext
// ADS, the node metadata GENERATOR "grpc" that selects gRPC's form of the configuration,
// Istio's server listener template, and the file_watcher certificate provider "default"
// over the certificate files in CertDir.
func Bootstrap(o BootstrapOptions) ([]byte, error) {
	if _, _, err := net.SplitHostPort(o.Discovery); err != nil {
		return nil, fmt.Errorf("discovery address %q: %w", o.Discovery, err)
	}
	if o.Workload == "" || o.Namespace == "" {
		return nil, errors.New("the workload's name and namespace are required")
	}
	if !o.IP.IsValid() {
		return nil, errors.New("the workload's IP is required (the node id carries it)")
	}
	md := map[string]any{"GENERATOR": "grpc", "NAMESPACE": o.Namespace, "INSTANCE_IPS": o.IP.String()}
	if len(o.Labels) > 0 {
		md["LABELS"] = o.Labels
	}
	b := bootstrap{
		XDSServers: []xdsServer{{
			ServerURI:      o.Discovery,
			ChannelCreds:   []map[string]string{{"type": "insecure"}},
			ServerFeatures: []string{"xds_v3"},
		}},
		Node:               node{ID: o.NodeID(), Cluster: o.Workload + "." + o.Namespace, Metadata: md},
		ServerListenerName: ServerListenerNameTemplate,
	}
	if o.CertDir != "" {
		refresh := o.Refresh
		if refresh <= 0 {
			refresh = DefaultRefresh
		}
		b.CertificateProviders = map[string]certificateProvider{CertProviderInstance: {
			PluginName: "file_watcher",
			Config: fileWatcherConfig{
				CertificateFile:   filepath.Join(o.CertDir, CertChainFile),
				PrivateKeyFile:    filepath.Join(o.CertDir, KeyFile),
				CACertificateFile: filepath.Join(o.CertDir, RootCertFile),
				RefreshInterval:   fmt.Sprintf("%gs", refresh.Seconds()),
			},
		}}
	}
	return json.MarshalIndent(b, "", "  ")
}
