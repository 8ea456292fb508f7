package pki

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// RotatorOptions configure a Rotator.
type RotatorOptions struct {
	// Issue returns a new certificate (with its Leaf set). Required.
	Issue func(now time.Time) (*tls.Certificate, error)
	// RenewBefore is how long before expiry the next certificate is issued (default a
	// third of each certificate's lifetime; at most half of it).
	RenewBefore time.Duration
	// RetryAfter spaces attempts after a failed issuance (default 10 s).
	RetryAfter time.Duration
	Name       string // for log lines, e.g. "webhook serving certificate"
	Logger     *slog.Logger
	Now        func() time.Time // default time.Now
}

// Rotator holds a serving certificate and renews it before it expires. The swap is a
// pointer store read by GetCertificate at each handshake: connections already open keep
// their certificate, new ones get the new one, nothing is dropped. GetCertificate may be
// called from any goroutine; Run owns the renewal timer.
type Rotator struct {
	o         RotatorOptions
	cur       atomic.Pointer[tls.Certificate]
	renewAt   atomic.Int64 // the current certificate's renewal time, Unix nanoseconds
	rotations atomic.Int64
}

// NewRotator issues the first certificate.
func NewRotator(o RotatorOptions) (*Rotator, error) {
	if o.Issue == nil {
		return nil, errors.New("pki: rotator without an issuer")
	}
	if o.RenewBefore < 0 {
		return nil, fmt.Errorf("pki: negative renew-before (%s)", o.RenewBefore)
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = 10 * time.Second
	}
	if o.Name == "" {
		o.Name = "certificate"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Rotator{o: o}
	if err := r.rotate(); err != nil {
		return nil, err
	}
	return r, nil
}

// rotate issues a certificate and makes it current. It is renewed RenewBefore its expiry,
// or halfway through its life when that is shorter (a certificate capped by an authority
// that expires soon).
func (r *Rotator) rotate() error {
	now := r.o.Now()
	c, err := r.o.Issue(now)
	if err != nil {
		return fmt.Errorf("pki: issue the %s: %w", r.o.Name, err)
	}
	if c == nil || c.Leaf == nil {
		return fmt.Errorf("pki: issue the %s: no certificate (Leaf unset)", r.o.Name)
	}
	life := c.Leaf.NotAfter.Sub(now) // not from NotBefore, which is back-dated by ClockSkew
	before := r.o.RenewBefore
	if before == 0 {
		before = life / 3
	}
	r.renewAt.Store(c.Leaf.NotAfter.Add(-min(before, life/2)).UnixNano())
	if r.cur.Swap(c) != nil {
		r.rotations.Add(1)
	}
	return nil
}

// GetCertificate is tls.Config.GetCertificate: the current certificate.
func (r *Rotator) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// Current is the current certificate.
func (r *Rotator) Current() *tls.Certificate { return r.cur.Load() }

// Rotations counts the certificates issued after the first.
func (r *Rotator) Rotations() int64 { return r.rotations.Load() }

// Run renews the certificate RenewBefore its expiry until ctx ends. A failed issuance is
// logged and retried after RetryAfter; the current certificate keeps serving.
func (r *Rotator) Run(ctx context.Context) {
	t := time.NewTimer(r.next())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d := r.o.RetryAfter
		if err := r.rotate(); err != nil {
			r.o.Logger.Error("renewing the "+r.o.Name+" failed; the current one keeps serving", "error", err, "retry", d)
		} else {
			r.o.Logger.Info(r.o.Name+" renewed", "expires", r.cur.Load().Leaf.NotAfter.UTC().Format(time.RFC3339))
			d = r.next()
		}
		t.Reset(d)
	}
}

// next is the delay until the current certificate must be renewed.
func (r *Rotator) next() time.Duration {
	d := time.Unix(0, r.renewAt.Load()).Sub(r.o.Now())
	return max(d, 10*time.Millisecond)
}
