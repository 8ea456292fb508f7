// Package config turns Istio YAML (files today, Kubernetes objects later) into validated
// istio.io/api objects. It sits at the very top of the control-plane flow:
//
//	source/{file,kube} → config → store → model → translate → ads
//
// Everything after config trusts its input: a returned Object has passed the same
// validation Istio applies, and every problem found on the way is a Diagnostic that
// names the file, the object and the field.
package config

import (
	"fmt"

	"google.golang.org/protobuf/proto"
)

// Kinds Lucid knows. The group is networking.istio.io unless noted.
const (
	KindServiceEntry        = "ServiceEntry"
	KindWorkloadEntry       = "WorkloadEntry"
	KindVirtualService      = "VirtualService"
	KindDestinationRule     = "DestinationRule"
	KindGateway             = "Gateway"
	KindSidecar             = "Sidecar"
	KindPeerAuthentication  = "PeerAuthentication"  // security.istio.io
	KindAuthorizationPolicy = "AuthorizationPolicy" // security.istio.io
	// KindRequestAuthentication: the sidecars and gateways it selects verify JWTs.
	KindRequestAuthentication = "RequestAuthentication" // security.istio.io
	// KindTelemetry is read for its tracing (validate_telemetry.go).
	KindTelemetry = "Telemetry" // telemetry.istio.io
)

// Object is one validated Istio resource.
//
// Spec is the istio.io/api message for Kind: *v1alpha3.ServiceEntry, *v1alpha3.WorkloadEntry,
// *v1alpha3.VirtualService, *v1alpha3.DestinationRule, *v1alpha3.Gateway, *v1alpha3.Sidecar
// (networking.istio.io v1, v1beta1 and v1alpha3 are the same Go types), or
// *securityv1beta1.PeerAuthentication / *securityv1beta1.AuthorizationPolicy /
// *securityv1beta1.RequestAuthentication.
// Spec is never mutated after Load returns; share it freely.
type Object struct {
	Kind        string
	APIVersion  string // as written, e.g. "networking.istio.io/v1"
	Name        string
	Namespace   string // "default" when the YAML leaves it out
	Labels      map[string]string
	Annotations map[string]string

	// File and Line locate the document that defined the object ("" and 0 for objects
	// that did not come from a file). File is relative to the config directory.
	File string
	Line int

	// Generation changes whenever the object's content changes; equal generations mean
	// equal specs. Sources set it (a content hash for files, metadata.generation on Kubernetes).
	Generation string

	Spec proto.Message

	// Kube is set instead of Spec for the Kubernetes kinds analysis reads (ParseWith with
	// Options.Kubernetes): *corev1.Service, *corev1.Pod, *corev1.Namespace, *corev1.Secret
	// or *corev1.Node. Namespaces and Nodes are cluster-scoped: Namespace is "".
	Kube any

	// Invalid marks an object that failed validation but whose spec decoded (ParseWith with
	// Options.KeepInvalid): analysis still reads it, as Istio's analyzers do; the control
	// plane never sees one.
	Invalid bool

	// Lines maps field paths (metadata.name, spec.http[0].route[0].destination.host) to
	// their line in File; nil for objects that did not come from a file. See LineOf.
	Lines map[string]int

	key string // Key, once CacheKey ran (checked against the fields on use)
}

// LineOf returns the line of a field path, or of its nearest ancestor that has one, or
// the object's own line.
func (o *Object) LineOf(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := o.Lines[p]; ok {
			return l
		}
	}
	return o.Line
}

// Key names the object the way every message does: "Kind namespace/name".
func (o *Object) Key() string {
	if o.keyIsCurrent() {
		return o.key
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// CacheKey computes Key once for an object about to be shared: the sources and the store
// ask every object for its key on every scan and build, and a concatenation each time was
// a measurable share of the control plane's CPU under churn. Call it before the object is
// shared (it writes the object); a later change of Kind, Namespace or Name is noticed.
func (o *Object) CacheKey() { o.key = o.Kind + " " + o.Namespace + "/" + o.Name }

// keyIsCurrent reports whether o.key is Key for o's current Kind, Namespace and Name,
// comparing without building the string.
func (o *Object) keyIsCurrent() bool {
	k, nk, nn := o.key, len(o.Kind), len(o.Namespace)
	if len(k) != nk+nn+len(o.Name)+2 || k[nk] != ' ' || k[nk+1+nn] != '/' {
		return false
	}
	return k[:nk] == o.Kind && k[nk+1:nk+1+nn] == o.Namespace && k[nk+2+nn:] == o.Name
}

// Level says how bad a Diagnostic is.
type Level int

const (
	// Error means the object was rejected (the last good version, if any, keeps serving).
	Error Level = iota
	// Warning means the object is accepted as Istio accepts it, but it will misbehave at run
	// time (a route to an unknown host or undefined subset: 503 NC).
	Warning
	// Info means nothing is wrong, but the user should know (a kind that is parsed and
	// validated but not yet applied).
	Info
)

func (l Level) String() string {
	switch l {
	case Error:
		return "error"
	case Warning:
		return "warning"
	default:
		return "info"
	}
}

// Diagnostic is one problem found in the configuration. Its String form is the message
// users see, e.g.
//
//	reviews.yaml:12: DestinationRule default/reviews: spec.subsets[1].name: duplicate subset "v1"
type Diagnostic struct {
	Level     Level
	File      string // "" when unknown
	Line      int    // 0 when unknown
	Column    int    // 0 when unknown (set for YAML syntax errors)
	Kind      string // "" for problems that are not about one object (malformed YAML)
	Namespace string
	Name      string
	Field     string // JSON field path, e.g. spec.http[0].route[1].destination.subset
	Message   string

	// Lucid marks a finding of Lucid's own (Istio accepts the object silently), as
	// opposed to one of Istio's validation errors or warnings.
	Lucid bool
	// Syntax marks a YAML syntax error (the document could not be parsed at all).
	Syntax bool
	// UnknownKind marks a document of a kind Lucid does not know.
	UnknownKind bool
}

func (d Diagnostic) String() string {
	s := ""
	if d.File != "" {
		s = d.File
		if d.Line > 0 {
			s += fmt.Sprintf(":%d", d.Line)
			if d.Column > 0 {
				s += fmt.Sprintf(":%d", d.Column)
			}
		}
		s += ": "
	}
	if d.Kind != "" {
		s += fmt.Sprintf("%s %s/%s: ", d.Kind, d.Namespace, d.Name)
	}
	if d.Field != "" {
		s += d.Field + ": "
	}
	return s + d.Message
}
