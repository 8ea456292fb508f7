// Package identity is the agent's workload identity, as Istio's pilot-agent secret cache:
//
//	key (in memory, new for every certificate) ─► CSR ─► control plane CA (:15012,
//	  CreateCertificate, the workload's token) ─► Secret{certificate, roots}
//	  ─► the proxy, in process, with SDS semantics (resources "default" and "ROOTCA"),
//	     through GetCertificate / GetClientCertificate / Watch
//	  ─► renewed at expiry − SECRET_GRACE_PERIOD_RATIO × lifetime (± jitter), without
//	     dropping connections: open ones keep their certificate, new ones get the new one
//	  ─► SecretsConfigDump: the admin API's view (`lucid proxy-config secret`)
//
// The key never leaves the process: it is not written to disk and the config dump
// redacts it as Envoy does.
package identity

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	securityv1alpha1 "istio.io/api/security/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/pki/spiffe"
)

// SDS resource names (Istio's WorkloadKeyCertResourceName and RootCertReqResourceName).
const (
	ResourceDefault = "default"
	ResourceRootCA  = "ROOTCA"
)

// Istio's agent defaults: SECRET_TTL, SECRET_GRACE_PERIOD_RATIO and its jitter.
const (
	DefaultTTL              = 24 * time.Hour
	DefaultGraceRatio       = 0.5
	DefaultGraceRatioJitter = 0.01
)

// Options configure a Manager.
type Options struct {
	// Client is the CA (Dial makes one). Required.
	Client securityv1alpha1.IstioCertificateServiceClient
	// ID is the identity the CSR asks for, as Istio's agent does; the CA issues the
	// identity of the caller's credential, and a different one is refused. Required.
	ID spiffe.ID
	// TTL is the certificate lifetime requested (default DefaultTTL).
	TTL time.Duration
	// GraceRatio: the certificate is renewed when this fraction of its lifetime is left
	// (default DefaultGraceRatio), ± GraceRatioJitter (default DefaultGraceRatioJitter;
	// negative for none) so that a fleet does not renew at once.
	GraceRatio, GraceRatioJitter float64
	KeyType                      pki.KeyType
	// RetryMin and RetryMax bound the exponential backoff after a failed request
	// (default 1 s and 1 min). RequestTimeout bounds one request (default 30 s).
	RetryMin, RetryMax, RequestTimeout time.Duration
	Logger                             *slog.Logger
	Now                                func() time.Time // default time.Now
}

// Secret is one issued certificate and the roots it came with. It never changes; a
// renewal publishes a new Secret.
type Secret struct {
	// Certificate is ready for tls.Config: the key, the leaf and its intermediates.
	Certificate *tls.Certificate
	Leaf        *x509.Certificate
	ID          spiffe.ID // the identity in the leaf
	// ChainPEM is the CA's whole answer, leaf first (the "default" resource's
	// certificate_chain, as Istio's agent serves it); RootsPEM the roots ("ROOTCA").
	ChainPEM, RootsPEM []byte
	Roots              *x509.CertPool
	Version            string    // SDS version_info
	Updated            time.Time // when it was received
	RenewAt            time.Time // when its renewal is due
}

// Manager requests, renews and serves the workload certificate. Its methods may be
// called from any goroutine; Run owns the renewal.
type Manager struct {
	o Options

	cur       atomic.Pointer[Secret]
	rotations atomic.Int64
	version   atomic.Uint64

	mu      sync.Mutex // guards changed
	changed chan struct{}

	ready     chan struct{}
	readyOnce sync.Once
}

// New checks the options; Run requests the first certificate.
func New(o Options) (*Manager, error) {
	if o.Client == nil {
		return nil, errors.New("identity: no CA client")
	}
	if err := o.ID.Validate(); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.GraceRatio == 0 {
		o.GraceRatio = DefaultGraceRatio
	}
	if o.GraceRatioJitter == 0 {
		o.GraceRatioJitter = DefaultGraceRatioJitter
	}
	if o.GraceRatio <= 0 || o.GraceRatio >= 1 {
		return nil, fmt.Errorf("identity: grace ratio %g must be between 0 and 1", o.GraceRatio)
	}
	if o.RetryMin <= 0 {
		o.RetryMin = time.Second
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(time.Minute, o.RetryMin)
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Logger = o.Logger.With("component", "identity")
	return &Manager{o: o, changed: make(chan struct{}), ready: make(chan struct{})}, nil
}

// Run requests the certificate, then renews it before it expires, until ctx ends. A
// failed request is logged and retried with backoff; the current certificate keeps
// serving meanwhile.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	backoff := m.o.RetryMin
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s, err := m.fetch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			attrs := []any{"identity", m.o.ID.String(), "error", err, "retry", backoff}
			if cur := m.cur.Load(); cur != nil {
				attrs = append(attrs, "current_expires", cur.Leaf.NotAfter.UTC().Format(time.RFC3339))
			}
			m.o.Logger.Error("requesting the workload certificate failed", attrs...)
			t.Reset(backoff)
			backoff = min(2*backoff, m.o.RetryMax)
			continue
		}
		backoff = m.o.RetryMin
		msg := "workload certificate renewed"
		if m.cur.Load() == nil {
			msg = "workload certificate issued"
		}
		m.o.Logger.Info(msg, "identity", s.ID.String(), "serial", fmt.Sprintf("%032x", s.Leaf.SerialNumber),
			"expires", s.Leaf.NotAfter.UTC().Format(time.RFC3339), "renew_at", s.RenewAt.UTC().Format(time.RFC3339))
		m.publish(s)
		t.Reset(max(s.RenewAt.Sub(m.o.Now()), 0))
	}
}

// publish makes s current and wakes the watchers.
func (m *Manager) publish(s *Secret) {
	if m.cur.Swap(s) != nil {
		m.rotations.Add(1)
	}
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	m.readyOnce.Do(func() { close(m.ready) })
}

// Ready is closed once the first certificate is in.
func (m *Manager) Ready() <-chan struct{} { return m.ready }

// Current is the current Secret; nil before the first certificate.
func (m *Manager) Current() *Secret { return m.cur.Load() }

// Watch returns the current Secret (nil before the first) and a channel closed when a
// newer one replaces it: the proxy's change notification.
func (m *Manager) Watch() (*Secret, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur.Load(), m.changed
}

// Rotations counts the certificates received after the first.
func (m *Manager) Rotations() int64 { return m.rotations.Load() }

// errNotReady: no certificate yet.
var errNotReady = errors.New("identity: no workload certificate yet (the CA has not answered)")

// GetCertificate is tls.Config.GetCertificate: the current workload certificate, read at
// each handshake.
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if s := m.cur.Load(); s != nil {
		return s.Certificate, nil
	}
	return nil, errNotReady
}

// GetClientCertificate is tls.Config.GetClientCertificate, for mutual TLS to a peer.
func (m *Manager) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return m.GetCertificate(nil)
}

// Resource is one SDS resource as Istio's agent serves it to Envoy.
type Resource struct {
	Name    string
	Version string
	// Certificate is set for "default", Roots and RootsPEM for "ROOTCA".
	Certificate *tls.Certificate
	Roots       *x509.CertPool
	RootsPEM    []byte
}

// Resource is SDS resource name: "default" (the workload certificate) or "ROOTCA" (the
// roots). Another name, or no certificate yet, is an error saying so.
func (m *Manager) Resource(name string) (Resource, error) {
	s := m.cur.Load()
	if name != ResourceDefault && name != ResourceRootCA {
		return Resource{}, fmt.Errorf("identity: unknown SDS resource %q (the agent serves %q and %q)", name, ResourceDefault, ResourceRootCA)
	}
	if s == nil {
		return Resource{}, errNotReady
	}
	if name == ResourceDefault {
		return Resource{Name: name, Version: s.Version, Certificate: s.Certificate}, nil
	}
	return Resource{Name: name, Version: s.Version, Roots: s.Roots, RootsPEM: s.RootsPEM}, nil
}

// fetch makes a key and a CSR, asks the CA and checks its answer.
func (m *Manager) fetch(ctx context.Context) (*Secret, error) {
	key, err := pki.NewKey(m.o.KeyType)
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewCSR(key, []*url.URL{m.o.ID.URL()}, nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, m.o.RequestTimeout)
	defer cancel()
	resp, err := m.o.Client.CreateCertificate(ctx, &securityv1alpha1.IstioCertificateRequest{
		Csr:              string(csr),
		ValidityDuration: int64(m.o.TTL / time.Second),
		Metadata:         &structpb.Struct{Fields: map[string]*structpb.Value{"CertSigner": structpb.NewStringValue("")}},
	})
	if err != nil {
		return nil, fmt.Errorf("CreateCertificate: %w", err)
	}
	s, err := parseChain(resp.GetCertChain(), key, m.o.Now())
	if err != nil {
		return nil, fmt.Errorf("the CA's answer: %w", err)
	}
	if s.ID != m.o.ID {
		m.o.Logger.Warn("the CA issued another identity than the one asked for", "asked", m.o.ID.String(), "issued", s.ID.String())
	}
	s.Version = s.Updated.UTC().Format(time.RFC3339) + "/" + strconv.FormatUint(m.version.Add(1), 10)
	s.RenewAt = renewAt(s.Updated, s.Leaf.NotAfter, m.o.GraceRatio, m.o.GraceRatioJitter)
	return s, nil
}

// parseChain reads the CA's answer (leaf first, root last; an element may hold several
// certificates) and checks it: the leaf is for key, chains to the roots and carries a
// SPIFFE identity.
func parseChain(chain []string, key crypto.Signer, now time.Time) (*Secret, error) {
	if len(chain) < 2 {
		return nil, fmt.Errorf("%d certificate(s); want the leaf and at least the root", len(chain))
	}
	var all []*x509.Certificate
	var chainPEM []byte
	for i, el := range chain {
		certs, err := pki.ParseCerts([]byte(el))
		if err != nil {
			return nil, fmt.Errorf("cert_chain[%d]: %w", i, err)
		}
		all = append(all, certs...)
		chainPEM = append(chainPEM, pki.EncodeCerts(certs...)...)
	}
	rootCerts, _ := pki.ParseCerts([]byte(chain[len(chain)-1]))
	leaf, middle := all[0], all[1:len(all)-len(rootCerts)]
	if !publicKeyEqual(leaf.PublicKey, key.Public()) {
		return nil, errors.New("the leaf certificate is not for the key of our CSR")
	}
	roots := x509.NewCertPool()
	for _, r := range rootCerts {
		roots.AddCert(r)
	}
	inter := x509.NewCertPool()
	for _, c := range middle {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("the leaf does not verify against the root it came with: %w", err)
	}
	id, err := spiffe.FromCertificate(leaf)
	if err != nil {
		return nil, err
	}
	return &Secret{
		Certificate: &tls.Certificate{Certificate: pki.ServingChain(leaf, middle), PrivateKey: key, Leaf: leaf},
		Leaf:        leaf,
		ID:          id,
		ChainPEM:    chainPEM,
		RootsPEM:    pki.EncodeCerts(rootCerts...),
		Roots:       roots,
		Updated:     now,
	}, nil
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// renewAt is Istio's rotateTime: expire − (ratio ± jitter) × (expire − created), the
// jitter uniform in [0, jitter) with a random sign, the ratio kept within [0, 1].
func renewAt(created, expire time.Time, ratio, jitter float64) time.Time {
	if jitter > 0 {
		j := rand.Float64() * jitter
		if rand.IntN(2) == 0 {
			j = -j
		}
		ratio += j
	}
	ratio = min(max(ratio, 0), 1)
	grace := time.Duration(ratio * float64(expire.Sub(created)))
	return expire.Add(-grace)
}
