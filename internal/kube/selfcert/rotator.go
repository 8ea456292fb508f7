package selfcert

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/lucid-mesh/lucid/internal/pki"
)

// DefaultValidity is a serving certificate's lifetime when RotatorOptions leave it zero.
const DefaultValidity = 30 * 24 * time.Hour

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

// Rotator holds the current serving certificate and renews it (a pki.Rotator issuing
// from the webhook's CA). GetCertificate may be called from any goroutine; Run owns the
// renewal timer.
type Rotator struct {
	*pki.Rotator
	ca *Authority
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
	r, err := pki.NewRotator(pki.RotatorOptions{
		Issue: func(now time.Time) (*tls.Certificate, error) {
			return ca.Issue(o.DNSNames, o.IPs, o.Validity, now)
		},
		RenewBefore: o.RenewBefore,
		Name:        "webhook serving certificate",
		Logger:      o.Logger,
		Now:         o.Now,
	})
	if err != nil {
		return nil, err
	}
	return &Rotator{Rotator: r, ca: ca}, nil
}

// CA is the authority the certificates come from.
func (r *Rotator) CA() *Authority { return r.ca }
