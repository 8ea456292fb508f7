package inspect

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	adminpb "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

// Secret is one row of `proxy-config secret`, read as istioctl reads a sidecar's
// SecretsConfigDump: the certificate's type, status, validity and serial.
type Secret struct {
	Name   string // SDS resource: "default" (the workload certificate), "ROOTCA"
	Type   string // "Cert Chain" or "CA"
	Status string // ACTIVE or WARMING
	Valid  bool   // now within NotBefore..NotAfter
	Serial string // hex, as istioctl prints it
	// NotAfter and NotBefore are zero for a warming secret.
	NotAfter, NotBefore time.Time
	// Identity is the certificate's SPIFFE URI ("" for a CA).
	Identity string
}

// ParseSecrets reads the SecretsConfigDump sections of an admin /config_dump. A dump
// without secrets (a sidecar without a CA) gives none and no error.
func ParseSecrets(b []byte, now time.Time) ([]Secret, error) {
	var cd adminpb.ConfigDump
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &cd); err != nil {
		return nil, fmt.Errorf("inspect: config dump: %w", err)
	}
	var out []Secret
	var errs []error
	for _, a := range cd.GetConfigs() {
		var sd adminpb.SecretsConfigDump
		if a.MessageIs(&sd) {
			if err := a.UnmarshalTo(&sd); err != nil {
				return nil, fmt.Errorf("inspect: secrets: %w", err)
			}
			for _, s := range sd.GetDynamicWarmingSecrets() {
				out = append(out, Secret{Name: s.GetName(), Status: "WARMING"})
			}
			for _, s := range sd.GetDynamicActiveSecrets() {
				r, err := secretRow(s, now)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				out = append(out, r)
			}
		}
	}
	return out, errors.Join(errs...)
}

func secretRow(s *adminpb.SecretsConfigDump_DynamicSecret, now time.Time) (Secret, error) {
	sec := &tlspb.Secret{}
	if err := s.GetSecret().UnmarshalTo(sec); err != nil {
		return Secret{}, fmt.Errorf("secret %s: %w", s.GetName(), err)
	}
	data := sec.GetTlsCertificate().GetCertificateChain().GetInlineBytes()
	if len(data) == 0 {
		data = sec.GetValidationContext().GetTrustedCa().GetInlineBytes()
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return Secret{}, fmt.Errorf("secret %s: no PEM certificate", s.GetName())
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return Secret{}, fmt.Errorf("secret %s: %w", s.GetName(), err)
	}
	r := Secret{Name: s.GetName(), Type: "Cert Chain", Status: "ACTIVE", Valid: now.After(c.NotBefore) && now.Before(c.NotAfter),
		Serial: fmt.Sprintf("%x", c.SerialNumber), NotAfter: c.NotAfter, NotBefore: c.NotBefore}
	if c.IsCA {
		r.Type = "CA"
	}
	for _, u := range c.URIs {
		if u.Scheme == "spiffe" {
			r.Identity = u.String()
		}
	}
	return r, nil
}
