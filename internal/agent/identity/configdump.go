package identity

import (
	"encoding/json"
	"fmt"
	"time"
)

// The admin API's view of the secrets, in the JSON of Envoy's envoy.admin.v3.SecretsConfigDump
// (proto field names, as Envoy's /config_dump prints them), built without Envoy's protos
// (the agent does not import them). istioctl's `proxy-config secret` reads it: RESOURCE
// NAME is name, STATUS ACTIVE/WARMING the list it is in, and TYPE (Cert Chain or CA),
// VALID CERT, SERIAL NUMBER, NOT AFTER and NOT BEFORE come from the first certificate of
// certificate_chain or trusted_ca.

// Type URLs of the dump and of its secrets.
const (
	TypeSecretsConfigDump = "type.googleapis.com/envoy.admin.v3.SecretsConfigDump"
	typeSecret            = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
)

// redacted is what Envoy's config dump shows instead of a private key.
var redacted = []byte("[redacted]")

type secretsConfigDump struct {
	Type    string          `json:"@type"`
	Active  []dynamicSecret `json:"dynamic_active_secrets,omitempty"`
	Warming []dynamicSecret `json:"dynamic_warming_secrets,omitempty"`
}

type dynamicSecret struct {
	Name        string     `json:"name"`
	VersionInfo string     `json:"version_info,omitempty"`
	LastUpdated string     `json:"last_updated,omitempty"`
	Secret      *tlsSecret `json:"secret,omitempty"`
}

type tlsSecret struct {
	Type              string             `json:"@type"`
	Name              string             `json:"name"`
	TLSCertificate    *tlsCertificate    `json:"tls_certificate,omitempty"`
	ValidationContext *validationContext `json:"validation_context,omitempty"`
}

type tlsCertificate struct {
	CertificateChain dataSource `json:"certificate_chain"`
	PrivateKey       dataSource `json:"private_key"`
}

type validationContext struct {
	TrustedCA dataSource `json:"trusted_ca"`
}

// dataSource is config.core.v3.DataSource's inline_bytes (base64 in JSON, as protojson).
type dataSource struct {
	InlineBytes []byte `json:"inline_bytes"`
}

// SecretsConfigDump is the current secrets as Envoy's /config_dump shows SDS secrets:
// "default" (the chain, the key redacted) and "ROOTCA" (the roots) active once the
// certificate is in, warming (named, without certificates) before.
func (m *Manager) SecretsConfigDump() ([]byte, error) {
	return SecretsConfigDump(m.cur.Load())
}

// SecretsConfigDump renders s (nil: not yet received).
func SecretsConfigDump(s *Secret) ([]byte, error) {
	d := secretsConfigDump{Type: TypeSecretsConfigDump}
	if s == nil {
		// As Envoy dumps a secret it waits for: the name, and a Secret holding only the name
		// (istioctl's secret summary fails on a warming secret without one).
		d.Warming = []dynamicSecret{
			{Name: ResourceDefault, Secret: &tlsSecret{Type: typeSecret, Name: ResourceDefault}},
			{Name: ResourceRootCA, Secret: &tlsSecret{Type: typeSecret, Name: ResourceRootCA}},
		}
	} else {
		updated := timestamp(s.Updated)
		d.Active = []dynamicSecret{
			{Name: ResourceDefault, VersionInfo: s.Version, LastUpdated: updated, Secret: &tlsSecret{
				Type: typeSecret, Name: ResourceDefault,
				TLSCertificate: &tlsCertificate{
					CertificateChain: dataSource{InlineBytes: s.ChainPEM},
					PrivateKey:       dataSource{InlineBytes: redacted},
				},
			}},
			{Name: ResourceRootCA, VersionInfo: s.Version, LastUpdated: updated, Secret: &tlsSecret{
				Type: typeSecret, Name: ResourceRootCA,
				ValidationContext: &validationContext{TrustedCA: dataSource{InlineBytes: s.RootsPEM}},
			}},
		}
	}
	b, err := json.MarshalIndent(d, "", " ")
	if err != nil {
		return nil, fmt.Errorf("identity: secrets config dump: %w", err)
	}
	return b, nil
}

// timestamp formats t as protojson formats a google.protobuf.Timestamp: UTC, "Z", and 0,
// 3, 6 or 9 fractional digits.
func timestamp(t time.Time) string {
	t = t.UTC()
	ns := t.Nanosecond()
	switch {
	case ns == 0:
		return t.Format("2006-01-02T15:04:05Z")
	case ns%1e6 == 0:
		return t.Format("2006-01-02T15:04:05.000Z")
	case ns%1e3 == 0:
		return t.Format("2006-01-02T15:04:05.000000Z")
	}
	return t.Format("2006-01-02T15:04:05.000000000Z")
}
