package cli

import (
	"github.com/spf13/pflag"

	"github.com/lucid-mesh/lucid/internal/controlplane/ca"
	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
)

// addCAFlags adds the mesh CA's flags to `lucid discovery` (local mode and Kubernetes:
// the TLS port serves the CA and xDS).
func addCAFlags(f *pflag.FlagSet, o *discovery.CAOptions) {
	f.StringVar(&o.Addr, "ca-addr", "", "serve the mesh CA (istio.v1.auth.IstioCertificateService) and xDS over TLS here, e.g. 127.0.0.1:15012 (lucid up and lucid install set it); empty disables the CA and mutual TLS")
	f.StringVar(&o.StateDir, "state-dir", "", "where the CA is kept (istio-ca/ or a plugged-in cacerts/), with root-cert.pem and the workload tokens (default .<config dir>.lucid beside --config-dir)")
	f.StringVar(&o.TokensFile, "ca-tokens-file", "", "the local workload tokens the CA accepts (default <state-dir>/workload-tokens.json)")
	f.StringSliceVar(&o.Hosts, "ca-hosts", nil, "more DNS names or IPs for the TLS port's certificate, when sidecars dial it by another name than istiod/lucid-discovery.<namespace>.svc")
	f.DurationVar(&o.CertTTL, "workload-cert-ttl", ca.DefaultWorkloadTTL, "lifetime of a workload certificate when the request asks for none (DEFAULT_WORKLOAD_CERT_TTL)")
	f.DurationVar(&o.MaxCertTTL, "max-workload-cert-ttl", ca.DefaultMaxTTL, "the longest workload certificate the CA grants (MAX_WORKLOAD_CERT_TTL)")
}
