package translate

import (
	"slices"

	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// withPeerTrustDomains restricts an inbound mutual-TLS context to peers of the mesh's trust
// domains, as Istio's sidecars validate them (PILOT_SKIP_VALIDATE_TRUST_DOMAIN unset): the
// peer certificate's URI SAN must start with spiffe://<td>/ for meshConfig.trustDomain or
// one of meshConfig.trustDomainAliases. A certificate of another trust domain signed by
// the same roots fails the handshake, so AuthorizationPolicy principals only ever see the
// mesh's identities.
func (g *generator) withPeerTrustDomains(c *tlspb.CommonTlsContext) *tlspb.CommonTlsContext {
	def := c.GetCombinedValidationContext().GetDefaultValidationContext()
	if def == nil {
		return c
	}
	var tds []string
	for _, td := range append([]string{g.m.TrustDomain()}, g.m.TrustDomainAliases()...) {
		if td != "" && !slices.Contains(tds, td) {
			tds = append(tds, td)
		}
	}
	for _, td := range tds {
		def.MatchTypedSubjectAltNames = append(def.MatchTypedSubjectAltNames, &tlspb.SubjectAltNameMatcher{
			SanType: tlspb.SubjectAltNameMatcher_URI,
			Matcher: &matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_Prefix{Prefix: "spiffe://" + td + "/"}},
		})
	}
	return c
}
