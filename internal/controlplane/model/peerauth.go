package model

import (
	securityv1beta1 "istio.io/api/security/v1beta1"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// Mutual TLS between sidecars: PeerAuthentication (what a workload's inbound ports
// accept) with Istio's precedence, and which endpoints have a sidecar (what auto mTLS
// sends mutual TLS to). Both need workload certificates: SetMTLS says the
// control plane runs the mesh CA; without it Lucid configures no mutual TLS at all.

// TLSModeLabel is Istio's endpoint label of a workload with a sidecar ("istio"), or
// without one ("disabled").
const TLSModeLabel = "security.istio.io/tlsMode"

// InjectAnnotation is Istio's sidecar.istio.io/inject: "false" on a WorkloadEntry runs its
// app without a sidecar in local mode.
const InjectAnnotation = "sidecar.istio.io/inject"

// MTLSMode is a PeerAuthentication mode (UNSET is resolved before it is returned).
type MTLSMode = securityv1beta1.PeerAuthentication_MutualTLS_Mode

// The modes.
const (
	MTLSUnset      = securityv1beta1.PeerAuthentication_MutualTLS_UNSET
	MTLSDisable    = securityv1beta1.PeerAuthentication_MutualTLS_DISABLE
	MTLSPermissive = securityv1beta1.PeerAuthentication_MutualTLS_PERMISSIVE
	MTLSStrict     = securityv1beta1.PeerAuthentication_MutualTLS_STRICT
)

// PeerAuthn is one PeerAuthentication.
type PeerAuthn struct {
	Name, Namespace string
	Spec            *securityv1beta1.PeerAuthentication
}

// Key is "namespace/name".
func (pa *PeerAuthn) Key() string { return pa.Namespace + "/" + pa.Name }

// SetMTLS says whether workloads have mesh certificates (the control plane runs the CA):
// only then are mutual TLS, auto mTLS and PeerAuthentication configured.
func (m *Mesh) SetMTLS(on bool) { m.identity = on }

// MTLS reports SetMTLS's setting.
func (m *Mesh) MTLS() bool { return m.identity }

// AutoMTLS reports whether clients send mutual TLS to endpoints with a sidecar without a
// DestinationRule saying so (meshConfig.enableAutoMtls, default true), given certificates (SetMTLS).
func (m *Mesh) AutoMTLS() bool { return m.identity && m.autoMTLS }

// PeerAuthentications returns every PeerAuthentication, in Istio's order.
func (m *Mesh) PeerAuthentications() []*PeerAuthn { return m.peerAuthns }

// InboundMTLS is the mode of proxy p's inbound port (the workload's port number) with
// Istio's precedence: the workload policy's portLevelMtls for the port, the workload
// policy (a selector matching p, in p's namespace), the namespace policy (no selector),
// the mesh policy (root namespace, no selector), then PERMISSIVE; UNSET defers to the
// next. policy is the "namespace/name" that decided ("" for the default).
func (m *Mesh) InboundMTLS(p *Proxy, port uint32) (mode MTLSMode, policy string) {
	var workload, namespace, mesh *PeerAuthn
	for _, pa := range m.peerAuthns {
		sel := pa.Spec.GetSelector()
		switch {
		case pa.Namespace == p.Namespace && sel != nil && len(sel.GetMatchLabels()) > 0:
			if workload == nil && selects(sel.GetMatchLabels(), p.Labels) {
				workload = pa
			}
		case pa.Namespace == p.Namespace && (sel == nil || len(sel.GetMatchLabels()) == 0):
			if namespace == nil {
				namespace = pa
			}
		case pa.Namespace == m.rootNamespace && (sel == nil || len(sel.GetMatchLabels()) == 0):
			if mesh == nil {
				mesh = pa
			}
		}
	}
	if workload != nil {
		if pm := workload.Spec.GetPortLevelMtls()[port]; pm != nil && pm.GetMode() != MTLSUnset {
			return pm.GetMode(), workload.Key()
		}
	}
	for _, pa := range []*PeerAuthn{workload, namespace, mesh} {
		if pa != nil && pa.Spec.GetMtls() != nil && pa.Spec.GetMtls().GetMode() != MTLSUnset {
			return pa.Spec.GetMtls().GetMode(), pa.Key()
		}
	}
	return MTLSPermissive, ""
}

// HasSidecar reports whether endpoint e runs behind a sidecar (Istio: the tlsMode label
// "istio"): a workload's endpoint does unless its WorkloadEntry says
// sidecar.istio.io/inject: "false" or tlsMode "disabled"; an inline ServiceEntry
// endpoint only with the label.
func (m *Mesh) HasSidecar(e *Endpoint) bool {
	switch e.Labels[TLSModeLabel] {
	case "istio":
		return true
	case "disabled":
		return false
	}
	if e.Workload == "" {
		return false
	}
	w := m.workloadByName[e.Namespace+"/"+e.Workload]
	if w == nil || w.Config == nil || w.Config.Kind != config.KindWorkloadEntry {
		return false // a pod without the label has no sidecar
	}
	return w.Config.Annotations[InjectAnnotation] != "false"
}
