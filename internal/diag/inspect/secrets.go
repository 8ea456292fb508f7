package inspect

import (
	adminpb "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// Secret is one SDS secret of a config dump as `proxy-config secret` lists it.
type Secret struct {
	Name  string
	State string // "WARMING" or "ACTIVE"
	// PEM is the secret's first certificate material: the certificate chain of a
	// certificate, else the trusted CA of a validation context; nil for a warming secret.
	PEM []byte
}

// addSecrets reads a SecretsConfigDump in istioctl's order: the warming secrets, then the
// active ones.
func (d *Dump) addSecrets(x *adminpb.SecretsConfigDump, errs *[]error) {
	d.HasSecrets = true
	for _, group := range []struct {
		state   string
		secrets []*adminpb.SecretsConfigDump_DynamicSecret
	}{{"WARMING", x.GetDynamicWarmingSecrets()}, {"ACTIVE", x.GetDynamicActiveSecrets()}} {
		for _, s := range group.secrets {
			sec := Secret{Name: s.GetName(), State: group.state}
			if a := s.GetSecret(); a != nil {
				var t tlspb.Secret
				if err := a.UnmarshalTo(&t); err != nil {
					*errs = append(*errs, err)
					continue
				}
				sec.PEM = t.GetTlsCertificate().GetCertificateChain().GetInlineBytes()
				if len(sec.PEM) == 0 {
					sec.PEM = t.GetValidationContext().GetTrustedCa().GetInlineBytes()
				}
			}
			d.Secrets = append(d.Secrets, sec)
		}
	}
}
