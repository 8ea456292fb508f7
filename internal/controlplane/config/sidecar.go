package config

import (
	"net"
	"strconv"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

// validateSidecarApplied is the Sidecar's validation now that Lucid applies it: Istio's
// checks (validateSidecar) plus its ingress defaultEndpoint and TLS rules, and warnings
// for the parts Lucid accepts but does not act on yet.
func validateSidecarApplied(o *Object, v *validator) {
	validateSidecar(o, v)
	sc := o.Spec.(*networkingv1alpha3.Sidecar)
	for i, in := range sc.GetIngress() {
		if in == nil {
			continue
		}
		p := idx("spec.ingress", i)
		if ep := in.GetDefaultEndpoint(); ep != "" {
			v.defaultEndpoint(p+".defaultEndpoint", ep)
		}
		if t := in.GetTls(); t != nil {
			switch {
			case len(t.GetSubjectAltNames()) > 0:
				v.errorf(p+".tls.subjectAltNames", "sidecar: subjectAltNames is not supported in ingress tls")
			case t.GetHttpsRedirect():
				v.errorf(p+".tls.httpsRedirect", "sidecar: httpsRedirect is not supported")
			case t.GetCredentialName() != "":
				v.errorf(p+".tls.credentialName", "sidecar: credentialName is not currently supported")
			default:
				v.warnf(p+".tls", "TLS on a Sidecar ingress listener is not applied by Lucid yet; the port is served in plaintext")
			}
		}
		if in.GetBind() != "" {
			v.warnf(p+".bind", "bind is not applied by Lucid: the port is served on the workload's address")
		}
	}
	for i, eg := range sc.GetEgress() {
		if eg == nil {
			continue
		}
		p := idx("spec.egress", i)
		if eg.GetBind() != "" || eg.GetCaptureMode() != networkingv1alpha3.CaptureMode_DEFAULT {
			v.warnf(p, "bind and captureMode are not applied by Lucid: egress is served by the sidecar's outbound proxy")
		}
	}
	if sc.GetInboundConnectionPool() != nil {
		v.warnf("spec.inboundConnectionPool", "inboundConnectionPool is not applied by Lucid yet")
	}
	if sc.GetOutboundTrafficPolicy().GetEgressProxy() != nil {
		v.warnf("spec.outboundTrafficPolicy.egressProxy", "egressProxy is not applied by Lucid yet: unknown destinations follow the mode")
	}
}

// defaultEndpoint checks a Sidecar ingress defaultEndpoint as Istio does: 127.0.0.1:<port>,
// 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, :<port> or unix://path.
func (v *validator) defaultEndpoint(p, ep string) {
	if path, ok := strings.CutPrefix(ep, "unix://"); ok {
		if path == "" || !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "@") {
			v.errorf(p, "sidecar: unix domain socket %q must be an absolute path or an abstract socket (@name)", path)
			return
		}
		v.warnf(p, "a unix domain socket endpoint is not applied by Lucid: the application is reached on its address")
		return
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		v.errorf(p, "sidecar: defaultEndpoint %q: %v", ep, err)
		return
	}
	switch host {
	case "", "127.0.0.1", "0.0.0.0", "::1", "::":
	default:
		v.errorf(p, "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset")
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		v.errorf(p, "sidecar: defaultEndpoint port (%s) is not a number: %v", port, err)
		return
	}
	if n <= 0 || n > 65535 {
		v.errorf(p, "port number %d must be in the range 1..65535", n)
	}
}
