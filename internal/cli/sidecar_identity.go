package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/agent"
	"github.com/lucid-mesh/lucid/internal/agent/identity"
)

// addIdentityFlags adds the workload identity's flags (the CA client) to `lucid sidecar`;
// defaults from Istio's agent variables.
func addIdentityFlags(cmd *cobra.Command, o *agent.IdentityOptions) {
	f := cmd.Flags()
	f.StringVar(&o.CAAddress, "ca-address", os.Getenv("CA_ADDR"), "the mesh CA's TLS address, e.g. 127.0.0.1:15012; empty: no workload certificate, no mutual TLS (default $CA_ADDR)")
	f.StringVar(&o.CARootCert, "ca-root-cert", "/var/run/secrets/istio/root-cert.pem", "PEM roots that verify the CA's certificate")
	f.StringVar(&o.CATokenFile, "ca-token-file", "", "file holding the workload's credential, read at each request (Kubernetes: /var/run/secrets/tokens/istio-token)")
	f.IntVar(&o.CATokenFD, "ca-token-fd", 0, "file descriptor to read the workload's credential from once at start (lucid up: 3)")
	f.StringVar(&o.TrustDomain, "trust-domain", cmpEnv("TRUST_DOMAIN", "cluster.local"), "the mesh's trust domain (meshConfig.trustDomain): the identity asked for is spiffe://<trust domain>/ns/<namespace>/sa/<service account> (default $TRUST_DOMAIN, else cluster.local)")
	f.StringVar(&o.ServiceAccount, "service-account", cmpEnv("SERVICE_ACCOUNT", "default"), "the workload's service account (default $SERVICE_ACCOUNT, else default)")
	f.DurationVar(&o.SecretTTL, "secret-ttl", envDuration("SECRET_TTL", identity.DefaultTTL), "lifetime of the workload certificate asked for (default $SECRET_TTL)")
	f.Float64Var(&o.GraceRatio, "secret-grace-ratio", identity.DefaultGraceRatio, "renew the certificate when this fraction of its lifetime is left (SECRET_GRACE_PERIOD_RATIO)")
}

func cmpEnv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
