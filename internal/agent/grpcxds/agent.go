package grpcxds

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/lucid-mesh/lucid/internal/agent/identity"
	"github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/pki/spiffe"
)

// Options configure Run.
type Options struct {
	Bootstrap BootstrapOptions // CertDir is set to Dir when a CA is given
	// Dir receives bootstrap.json and, with a CA, the certificate files.
	Dir string
	// CAAddress is the mesh CA (127.0.0.1:15012); "" writes the bootstrap only.
	CAAddress string
	CARoots   *x509.CertPool // verify the CA's certificate
	Token     identity.TokenSource
	// ID is the identity asked for (the CA issues the one of the token).
	ID         spiffe.ID
	TTL        time.Duration // default identity.DefaultTTL
	GraceRatio float64       // default identity.DefaultGraceRatio
	Logger     *slog.Logger
	// Written, when set, is called after every write of the certificate files (first
	// issue and renewals) with the certificate written.
	Written func(*identity.Secret)
}

// Run writes the bootstrap, then, with a CA, requests the workload certificate, writes
// it, and rewrites it at every renewal until ctx ends. Without a CA it returns once the
// bootstrap is written.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	bo := o.Bootstrap
	if o.CAAddress != "" {
		bo.CertDir = o.Dir
	}
	b, err := Bootstrap(bo)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := writeAtomic(filepath.Join(o.Dir, BootstrapFile), append(b, '\n'), 0o644); err != nil {
		return err
	}
	log.Info("gRPC xDS bootstrap written", "file", filepath.Join(o.Dir, BootstrapFile), "node", bo.NodeID())
	if o.CAAddress == "" {
		return nil
	}
	cc, client, err := identity.Dial(identity.DialOptions{Address: o.CAAddress, Roots: o.CARoots, Token: o.Token})
	if err != nil {
		return err
	}
	defer cc.Close()
	m, err := identity.New(identity.Options{Client: client, ID: o.ID, TTL: o.TTL, GraceRatio: o.GraceRatio, Logger: log})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	defer func() { <-done }()
	for {
		s, changed := m.Watch()
		if s != nil {
			if err := WriteCerts(o.Dir, s); err != nil {
				return err // the files gRPC reads cannot be kept fresh: stop loudly
			}
			log.Info("workload certificate files written", "dir", o.Dir, "identity", s.ID.String(),
				"expires", s.Leaf.NotAfter.UTC().Format(time.RFC3339))
			if o.Written != nil {
				o.Written(s)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// WriteCerts writes s as gRPC's file_watcher reads it: cert-chain.pem (leaf first),
// key.pem (PKCS#8, mode 0600) and root-cert.pem, each replaced atomically. The key goes
// first and the chain last, so a reader that sees the new chain finds its key.
func WriteCerts(dir string, s *identity.Secret) error {
	key, ok := s.Certificate.PrivateKey.(crypto.Signer)
	if !ok {
		return errors.New("workload certificate: the private key cannot sign")
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return fmt.Errorf("workload key: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{KeyFile, keyPEM, 0o600}, {RootCertFile, s.RootsPEM, 0o644}, {CertChainFile, s.ChainPEM, 0o644}} {
		if err := writeAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// writeAtomic replaces path with data (a temporary file renamed over it).
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), mode)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
