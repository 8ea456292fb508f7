package agent

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lucid-mesh/lucid/internal/agent/identity"
	"github.com/lucid-mesh/lucid/internal/dataplane/proxy"
	"github.com/lucid-mesh/lucid/internal/pki/spiffe"
)

// IdentityOptions are the workload identity's (pilot-agent's CA client): where the CA is,
// how the agent proves who it is, and the certificate's lifetime. Without CAAddress the
// sidecar has no identity and no mutual TLS (chains that ask for it fail to apply).
type IdentityOptions struct {
	// CAAddress is the CA's TLS gRPC address (Istio's CA_ADDR; local mode 127.0.0.1:15012).
	CAAddress string
	// CARootCert is the PEM file of the roots the CA's certificate is verified with
	// (Istio's /var/run/secrets/istio/root-cert.pem; local mode the state directory's).
	CARootCert string
	// The workload's credential: a file read at each request (Kubernetes' projected
	// token), or a file descriptor read once at start (local mode: `lucid up` writes the
	// token into a pipe, so it is in neither argv nor the environment).
	CATokenFile string
	CATokenFD   int // 0: none
	// TrustDomain (default cluster.local) and ServiceAccount (default "default") make the
	// identity spiffe://<trust domain>/ns/<namespace>/sa/<service account>.
	TrustDomain, ServiceAccount string
	// SecretTTL is the lifetime asked for (SECRET_TTL, 24 h); GraceRatio when renewal
	// starts (SECRET_GRACE_PERIOD_RATIO, 0.5).
	SecretTTL  time.Duration
	GraceRatio float64
}

// startIdentity requests the workload certificate in the background (nil without a CA).
// The returned stop ends the renewals and closes the CA connection.
func startIdentity(ctx context.Context, o Options, log *slog.Logger) (*identity.Manager, func(), error) {
	ido := o.Identity
	if ido.CAAddress == "" {
		return nil, func() {}, nil
	}
	tok, err := tokenSource(ido)
	if err != nil {
		return nil, nil, err
	}
	pem, err := os.ReadFile(ido.CARootCert)
	if err != nil {
		return nil, nil, fmt.Errorf("--ca-root-cert: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("--ca-root-cert %s: no PEM certificate in it", ido.CARootCert)
	}
	cc, client, err := identity.Dial(identity.DialOptions{Address: ido.CAAddress, Roots: roots, Token: tok})
	if err != nil {
		return nil, nil, err
	}
	id := workloadID(o)
	m, err := identity.New(identity.Options{Client: client, ID: id, TTL: ido.SecretTTL, GraceRatio: ido.GraceRatio, Logger: log})
	if err != nil {
		_ = cc.Close()
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	log.Info("requesting the workload certificate", "identity", id.String(), "ca", ido.CAAddress)
	return m, func() { cancel(); <-done; _ = cc.Close() }, nil
}

// workloadID is the identity the agent asks the CA for:
// spiffe://<trust domain>/ns/<namespace>/sa/<service account>.
func workloadID(o Options) spiffe.ID {
	ido := o.Identity
	return spiffe.ID{TrustDomain: cmp.Or(ido.TrustDomain, "cluster.local"), Namespace: o.Namespace, ServiceAccount: cmp.Or(ido.ServiceAccount, "default")}
}

// identityURI is the workload's SPIFFE URI for the metrics of its mutual-TLS connections;
// "" without a CA (no workload certificate).
func identityURI(o Options) string {
	if o.Identity.CAAddress == "" {
		return ""
	}
	return workloadID(o).String()
}

// tokenSource is the workload's credential from a file or a file descriptor.
func tokenSource(o IdentityOptions) (identity.TokenSource, error) {
	switch {
	case o.CATokenFile != "":
		return identity.FileToken(o.CATokenFile), nil
	case o.CATokenFD > 0:
		f := os.NewFile(uintptr(o.CATokenFD), "ca-token")
		if f == nil {
			return nil, fmt.Errorf("--ca-token-fd %d: not an open file", o.CATokenFD)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, 64<<10))
		if err != nil {
			return nil, fmt.Errorf("--ca-token-fd %d: %w", o.CATokenFD, err)
		}
		tok := string(bytes.TrimSpace(b))
		if tok == "" {
			return nil, fmt.Errorf("--ca-token-fd %d: no token in it", o.CATokenFD)
		}
		return identity.StaticToken(tok), nil
	}
	return nil, errors.New("--ca-address needs --ca-token-file or --ca-token-fd: the workload's credential")
}

// identityReady is the readiness check of the workload certificate: a sidecar with an
// identity is not ready before its certificate is in.
func identityReady(m *identity.Manager) error {
	if m == nil {
		return nil
	}
	select {
	case <-m.Ready():
		return nil
	default:
		return errors.New("workload certificate not received yet from the CA")
	}
}

// withSecrets appends the secrets (Envoy's SecretsConfigDump) as the last entry of the
// config dump, where Envoy has them.
func withSecrets(dump func(bool) ([]byte, error), m *identity.Manager) func(bool) ([]byte, error) {
	if m == nil {
		return dump
	}
	return func(eds bool) ([]byte, error) {
		b, err := dump(eds)
		if err != nil {
			return nil, err
		}
		sec, err := m.SecretsConfigDump()
		if err != nil {
			return nil, err
		}
		var d map[string]json.RawMessage
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("config dump: %w", err)
		}
		var configs []json.RawMessage
		if raw, ok := d["configs"]; ok {
			if err := json.Unmarshal(raw, &configs); err != nil {
				return nil, fmt.Errorf("config dump configs: %w", err)
			}
		}
		configs = append(configs, sec)
		if d["configs"], err = json.Marshal(configs); err != nil {
			return nil, err
		}
		return json.MarshalIndent(d, "", " ")
	}
}

// mtlsOf is m as the proxy's MTLS (a nil interface without an identity, not a nil pointer).
func mtlsOf(m *identity.Manager) proxy.MTLS {
	if m == nil {
		return nil
	}
	return m
}
