package selfcert

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"
)

// Defaults of RotatorOptions.
const (
	DefaultValidity = 30 * 24 * time.Hour // a serving certificate's lifetime
	// retryAfter spaces attempts after a failed issuance (it never fails in practice:
	// only the random source can).
	retryAfter = 10 * time.Second
)

// RotatorOptions configure the serving certificate.
type RotatorOptions struct {
	DNSNames []string
	IPs      []net.IP
	// Validity is each certificate's lifetime (default DefaultValidity); RenewBefore is
	// how long before expiry the next one is issued (default a third of Validity). It must
	// be shorter than Validity.
	Validity, RenewBefore time.Duration
	Logger                *slog.Logger
	Now                   func() time.Time // default time.Now
}

// Rotator holds the current serving certificate and renews it. GetCertificate may be
// called from any goroutine; Run owns the renewal timer.
type Rotator struct {
	ca        *Authority
	o         RotatorOptions
	cur       atomic.Pointer[tls.Certificate]
	rotations atomic.Int64
}

// NewRotator issues the first serving certificate from ca.
func NewRotator(ca *Authority, o RotatorOptions) (*Rotator, error) {
	if ca == nil {
		return nil, errors.New("selfcert: no CA")
	}
	if o.Validity == 0 {
		o.Validity = DefaultValidity
	}
	if o.RenewBefore == 0 {
		o.RenewBefore = o.Validity / 3
	}
	if o.Validity < 0 || o.RenewBefore < 0 || o.RenewBefore >= o.Validity {
		return nil, fmt.Errorf("selfcert: renew-before (%s) must be positive and shorter than the validity (%s)", o.RenewBefore, o.Validity)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Rotator{ca: ca, o: o}
	if err := r.rotate(); err != nil {
		return nil, err
	}
	return r, nil
}

// GetCertificate is tls.Config.GetCertificate: the current serving certificate.
func (r *Rotator) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// Current is the current serving certificate.
func (r *Rotator) Current() *tls.Certificate { return r.cur.Load() }

// Rotations counts the certificates issued after the first.
func (r *Rotator) Rotations() int64 { return r.rotations.Load() }

// CA is the authority the certificates come from.
func (r *Rotator) CA() *Authority { return r.ca }

func (r *Rotator) rotate() error {
	c, err := r.ca.Issue(r.o.DNSNames, r.o.IPs, r.o.Validity, r.o.Now())
	if err != nil {
		return err
	}
	if r.cur.Swap(c) != nil {
		r.rotations.Add(1)
		r.o.Logger.Info("webhook serving certificate renewed", "expires", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// Run renews the certificate RenewBefore its expiry until ctx ends.
func (r *Rotator) Run(ctx context.Context) {
	t := time.NewTimer(r.next())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d := retryAfter
		if err := r.rotate(); err != nil {
			r.o.Logger.Error("renewing the webhook serving certificate failed; the current one keeps serving", "error", err, "retry", d)
		} else {
			d = r.next()
		}
		t.Reset(d)
	}
}

// next is the delay until the current certificate must be renewed.
func (r *Rotator) next() time.Duration {
	d := r.cur.Load().Leaf.NotAfter.Add(-r.o.RenewBefore).Sub(r.o.Now())
	return max(d, 10*time.Millisecond)
}
