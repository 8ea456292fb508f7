package forward

import (
	"crypto/tls"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Peer is the downstream's identity on a mutual-TLS connection, as the sidecar's inbound
// side verified it (Envoy's connection.uri_san_peer_certificate; Istio's
// source.principal without "spiffe://"). The proxy hands it over with each request and
// connection (Inbound.Peer); authorization and the access log read it there.
type Peer struct {
	// URI is the peer certificate's SPIFFE URI SAN, spiffe://<trust domain>/ns/<ns>/sa/<sa>.
	URI string
	// Local is this workload's own SPIFFE URI (the certificate it presented).
	Local string
	// Hash is the SHA-256 of the peer's leaf certificate (DER), in hex.
	Hash string
}

// Principal is the peer as Istio's AuthorizationPolicy principals name it:
// <trust domain>/ns/<ns>/sa/<sa>.
func (p *Peer) Principal() string {
	const scheme = "spiffe://"
	if len(p.URI) > len(scheme) && p.URI[:len(scheme)] == scheme {
		return p.URI[len(scheme):]
	}
	return p.URI
}

// recordPeer writes an inbound record's mutual TLS as Istio's destination reporter labels
// it: connection_security_policy mutual_tls, source_principal the peer's certificate and
// destination_principal this workload's. A plaintext connection (p nil) leaves the record
// as it is ("none", principals unknown).
func recordPeer(info *streaminfo.Info, p *Peer) {
	if p == nil || info.Direction != "inbound" {
		return
	}
	info.MTLS = true
	info.Source.Principal, info.Destination.Principal = p.URI, p.Local
}

// recordUpstream writes an outbound record's upstream TLS as Istio's source reporter labels
// it: destination_principal the server's certificate (tc, nil on plaintext) and, when the
// connection presented the workload certificate (the endpoint's transport is ISTIO_MUTUAL
// or auto mTLS), source_principal this workload's identity.
func (f *Forwarder) recordUpstream(info *streaminfo.Info, tc *tls.Conn, c *resource.Cluster, ep *resource.Endpoint) {
	if tc == nil {
		return
	}
	cs := tc.ConnectionState()
	if info.Destination.Principal = PeerPrincipal(&cs); info.Destination.Principal == "" {
		return
	}
	if t := c.TransportFor(ep); t != nil && t.CertificateSDS != "" {
		info.Source.Principal = f.o.Identity
	}
}

// forwardClientCert is x-forwarded-client-cert on the upstream request. From a
// mutual-TLS peer the sidecar appends the peer's certificate as Istio's inbound does
// (forward_client_cert_details APPEND_FORWARD with the subject, URI and DNS SANs):
// By=<own identity>;Hash=<sha256>;Subject="";URI=<peer identity>; from plaintext the
// header is removed (Envoy's SANITIZE), so nobody can claim an identity without a
// certificate.
func (x *exchange) forwardClientCert() {
	const k = "X-Forwarded-Client-Cert"
	peer := x.in.Peer
	if peer == nil {
		if !x.lacks(http1.FieldXForwardedClientCert) {
			x.upDel(k)
		}
		return
	}
	v := "By=" + peer.Local + ";Hash=" + peer.Hash + `;Subject="";URI=` + peer.URI
	if prev := x.upGet(k); prev != "" {
		v = prev + "," + v
	}
	x.upSet(k, v)
}

// mtlsHint explains a connection the server reset when it requires mutual TLS (its
// PeerAuthentication is STRICT on the port, endpoint metadata lucid.mtls) and this
// cluster sent plaintext to it: which policy requires it and what turned it off.
func mtlsHint(c *resource.Cluster, ep *resource.Endpoint) string {
	if ep.MTLSMode != "STRICT" || c.TransportFor(ep) != nil {
		return ""
	}
	policy := "the mesh-wide default"
	if ep.PeerAuthentication != "" {
		policy = "PeerAuthentication " + ep.PeerAuthentication
	}
	why := "the client sent plaintext"
	switch c.Info.TLSMode {
	case "DISABLE":
		why = c.Info.TLSSource + " sets tls.mode DISABLE"
	case "":
		why = "the cluster sends plaintext (no DestinationRule tls and no auto mTLS for this endpoint)"
	}
	return "; the server requires mutual TLS (" + policy + " is STRICT) but " + why
}
