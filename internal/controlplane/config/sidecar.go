package config

import (
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

// validateSidecarApplied is the Sidecar's validation now that Lucid applies it: Istio's
// checks (validateSidecar) plus Lucid's own warnings (not Istio's: LUC codes in analyze) for the
// parts Lucid accepts but does not act on yet.
func validateSidecarApplied(o *Object, v *validator) {
	validateSidecar(o, v)
	sc := o.Spec.(*networkingv1alpha3.Sidecar)
	for i, in := range sc.GetIngress() {
		if in == nil {
			continue
		}
		p := idx("spec.ingress", i)
		if strings.HasPrefix(in.GetDefaultEndpoint(), "unix://") {
			v.lucidWarnf(p+".defaultEndpoint", "a unix domain socket endpoint is not applied by Lucid: the application is reached on its address")
		}
		if t := in.GetTls(); t != nil && len(t.GetSubjectAltNames()) == 0 && !t.GetHttpsRedirect() && t.GetCredentialName() == "" {
			v.lucidWarnf(p+".tls", "TLS on a Sidecar ingress listener is not applied by Lucid yet; the port is served in plaintext")
		}
		if in.GetBind() != "" {
			v.lucidWarnf(p+".bind", "bind is not applied by Lucid: the port is served on the workload's address")
		}
	}
	for i, eg := range sc.GetEgress() {
		if eg == nil {
			continue
		}
		p := idx("spec.egress", i)
		if eg.GetBind() != "" || eg.GetCaptureMode() != networkingv1alpha3.CaptureMode_DEFAULT {
			v.lucidWarnf(p, "bind and captureMode are not applied by Lucid: egress is served by the sidecar's outbound proxy")
		}
	}
	if sc.GetInboundConnectionPool() != nil {
		v.lucidWarnf("spec.inboundConnectionPool", "inboundConnectionPool is not applied by Lucid yet")
	}
	if sc.GetOutboundTrafficPolicy().GetEgressProxy() != nil {
		v.lucidWarnf("spec.outboundTrafficPolicy.egressProxy", "egressProxy is not applied by Lucid yet: unknown destinations follow the mode")
	}
}
