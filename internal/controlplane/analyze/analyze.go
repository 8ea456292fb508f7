// Package analyze finds configuration that Istio accepts but that will misbehave, before
// any traffic: `lucid analyze` runs it on files (offline) and the control plane on its
// current configuration (/debug/analyze). It sits beside the control plane's flow:
//
//	config (parse, validate: IST0106) → analyze (Istio's analyzers' rules, Lucid's own)
//	                                  ↘ model.Build (the registry Lucid's own checks explain with)
//
// Where Istio has an analyzer, the message has Istio's code, level and text, and fires on
// the same objects as istioctl analyze (test/istioanalyze checks this against Istio's own
// analyzers). Lucid's LUC codes cover what Istio has no code for. Every message names the
// object as istioctl does (Kind namespace/name), the file and line of the field, and, where
// Lucid can tell, what happens at run time and the fix.
package analyze

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Level is a message's severity, named as istioctl prints it.
type Level string

// The levels, most severe first.
const (
	Error   Level = "Error"
	Warning Level = "Warning"
	Info    Level = "Info"
)

// Message is one finding.
type Message struct {
	Code      string // IST0101, LUC0001, ...
	Level     Level
	Text      string // Istio's template text where Istio has the code
	Kind      string // "" for a message about a file rather than an object (YAML syntax)
	Name      string
	Namespace string // "" for cluster-scoped kinds (Namespace, Node)
	File      string
	Line      int // of the field the message is about, else of the object
	Column    int // YAML syntax errors only
	Field     string
	Detail    string // Lucid: what happens at run time
	Fix       string // Lucid: what to change
}

// Origin names the message's object as istioctl does: "VirtualService default/reviews",
// "Namespace foo" for cluster-scoped kinds.
func (m Message) Origin() string {
	switch {
	case m.Kind == "":
		return ""
	case m.Namespace == "":
		return m.Kind + " " + m.Name
	}
	return m.Kind + " " + m.Namespace + "/" + m.Name
}

// Reference is the message's place as istioctl prints it: "reviews.yaml:12" ("" without
// a file).
func (m Message) Reference() string {
	if m.File == "" {
		return ""
	}
	s := m.File
	if m.Line > 0 {
		s += fmt.Sprintf(":%d", m.Line)
		if m.Column > 0 {
			s += fmt.Sprintf(":%d", m.Column)
		}
	}
	return s
}

// DocumentationURL is where the code is explained: istio.io for Istio's codes, Lucid's
// docs for its own.
func (m Message) DocumentationURL() string {
	if strings.HasPrefix(m.Code, "IST") {
		return "https://istio.io/latest/docs/reference/config/analysis/" + strings.ToLower(m.Code) + "/?ref=istioctl-analyze"
	}
	return "https://github.com/lucid-mesh/lucid/blob/main/docs/istio-tools.md#" + strings.ToLower(m.Code)
}

// String renders a message as istioctl analyze prints one, then Lucid's detail and fix
// on indented lines:
//
//	Error [IST0173] (DestinationRule default/reviews reviews.yaml:63) The Subset v3 defined ...
//	    WorkloadEntry reviews-v3 has app=reviews but no version label
//	    fix: ...
func (m Message) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s [%s]", m.Level, m.Code)
	if where := strings.TrimSpace(m.Origin() + " " + m.Reference()); where != "" {
		fmt.Fprintf(&b, " (%s)", where)
	}
	b.WriteString(" " + m.Text)
	for d := range strings.SplitSeq(m.Detail, "\n") {
		if d != "" {
			b.WriteString("\n    " + d)
		}
	}
	if m.Fix != "" {
		b.WriteString("\n    fix: " + m.Fix)
	}
	return b.String()
}

// wire is a message in JSON and YAML: istioctl's keys first (code, documentationUrl, level,
// message, origin, reference), so that scripts written for istioctl read it, then Lucid's.
type wire struct {
	Code             string `json:"code"`
	DocumentationURL string `json:"documentationUrl"`
	Level            Level  `json:"level"`
	Message          string `json:"message"`
	Origin           string `json:"origin,omitempty"`
	Reference        string `json:"reference,omitempty"`
	Kind             string `json:"kind,omitempty"`
	Name             string `json:"name,omitempty"`
	Namespace        string `json:"namespace,omitempty"`
	File             string `json:"file,omitempty"`
	Line             int    `json:"line,omitempty"`
	Column           int    `json:"column,omitempty"`
	Field            string `json:"field,omitempty"`
	Detail           string `json:"detail,omitempty"`
	Fix              string `json:"fix,omitempty"`
}

// MarshalJSON writes istioctl's keys and Lucid's.
func (m Message) MarshalJSON() ([]byte, error) {
	return json.Marshal(wire{
		Code: m.Code, DocumentationURL: m.DocumentationURL(), Level: m.Level, Message: m.Text,
		Origin: m.Origin(), Reference: m.Reference(), Kind: m.Kind, Name: m.Name, Namespace: m.Namespace,
		File: m.File, Line: m.Line, Column: m.Column, Field: m.Field, Detail: m.Detail, Fix: m.Fix,
	})
}

// UnmarshalJSON reads what MarshalJSON writes (`lucid analyze --online` reads the control
// plane's /debug/analyze).
func (m *Message) UnmarshalJSON(b []byte) error {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*m = Message{Code: w.Code, Level: w.Level, Text: w.Message, Kind: w.Kind, Name: w.Name, Namespace: w.Namespace,
		File: w.File, Line: w.Line, Column: w.Column, Field: w.Field, Detail: w.Detail, Fix: w.Fix}
	return nil
}

// Options are the inputs besides the objects.
type Options struct {
	// Mesh is the MeshConfig (nil: Istio's defaults).
	Mesh *meshv1alpha1.MeshConfig
	// Offline says the objects are files rather than a running mesh: as istioctl analyze
	// does offline, Istio's default ingress gateway (a pod labelled istio=ingressgateway and
	// its Service istio-ingressgateway in istio-system) is assumed unless the files define one.
	Offline bool
	// ConfigDir is the local-mode config directory the files were read from: a Gateway
	// served by a router WorkloadEntry reads a credentialName from its
	// credentials/<name>/ (config.FindCredential), which is then checked. Empty: not checked.
	ConfigDir string
}

// Result is an analysis.
type Result struct {
	Messages []Message
	// DefaultIngress is set when Istio's default ingress gateway was assumed
	// (Options.Offline) and a Gateway selects it, so the messages depend on it.
	DefaultIngress *DefaultIngress
}

// Analyze runs every analyzer on the running configuration (/debug/analyze): the objects
// and the diagnostics config produced loading them. mesh may be nil (Istio's defaults).
func Analyze(objs []*config.Object, loadDiags []config.Diagnostic, mesh *meshv1alpha1.MeshConfig) []Message {
	return Run(objs, loadDiags, Options{Mesh: mesh}).Messages
}

// Run runs every analyzer. objs may hold invalid objects (config.Object.Invalid) and
// Kubernetes objects (config.Options.Kubernetes): Istio's analyzers read both. Messages are
// sorted as istioctl sorts them: level, code, object, then text.
func Run(objs []*config.Object, loadDiags []config.Diagnostic, opts Options) Result {
	mesh := opts.Mesh
	if mesh == nil {
		mesh = config.DefaultMeshConfig()
	}
	a := newAnalyzer(objs, mesh)
	a.configDir = opts.ConfigDir
	var res Result
	if opts.Offline {
		if d := a.assumeDefaultIngress(); d != nil && a.selectedByGateway(d.Labels) { // defaults.go
			res.DefaultIngress = d
		}
	}
	a.buildRegistry()         // registry.go
	a.loadMessages(loadDiags) // schema.go
	a.virtualServices()       // virtualservices.go
	a.destinationRules()      // destinationrules.go
	a.gateways()              // gateways.go
	a.sidecars()              // sidecars.go
	a.sidecarEgress()         // sidecar.go
	a.inboundLoops()          // loops.go
	a.serviceEntries()        // serviceentries.go
	a.kubeServices()          // kube.go
	a.injection()
	a.authorizationPolicies() // authz.go
	a.authorizationLucid()    // authz_lucid.go
	a.lucidChecks()           // lucid.go
	a.mtlsConflicts()         // mtls.go
	a.mtlsSANs()              // mtls_sans.go
	res.Messages = sortDedupe(a.out)
	return res
}

func sortDedupe(ms []Message) []Message {
	slices.SortStableFunc(ms, func(x, y Message) int {
		return cmp.Or(cmp.Compare(rank(x.Level), rank(y.Level)), cmp.Compare(x.Code, y.Code),
			cmp.Compare(x.Kind+"/"+x.Name+"/"+x.Namespace, y.Kind+"/"+y.Name+"/"+y.Namespace),
			cmp.Compare(x.File, y.File), cmp.Compare(x.Line, y.Line), cmp.Compare(x.String(), y.String()))
	})
	return slices.CompactFunc(ms, func(x, y Message) bool { return x.String() == y.String() })
}

func rank(l Level) int {
	switch l {
	case Error:
		return 0
	case Warning:
		return 1
	}
	return 2
}

// HasErrors reports whether any message is an Error (analyze then exits non-zero).
func HasErrors(ms []Message) bool {
	return slices.ContainsFunc(ms, func(m Message) bool { return m.Level == Error })
}

// analyzer holds one run's inputs, the views the checks share, and the messages.
type analyzer struct {
	mesh  *meshv1alpha1.MeshConfig
	objs  []*config.Object // Istio objects, valid and invalid, in input order
	kinds map[string][]*config.Object

	pods         []*pod                  // Kubernetes pods (from files, from the cluster, the default gateway's)
	podOf        map[*config.Object]*pod // workloads(): a pod by its object
	workloadList []workload              // workloads(), cached
	services     []*service              // Kubernetes services
	namespaces   map[string]*config.Object
	nodes        map[string]map[string]string // node name → labels
	secrets      map[string]*config.Object    // namespace/name → Secret
	configDir    string                       // Options.ConfigDir

	registry  map[scopedHost]*registryEntry // Istio's analyzers' service registry (registry.go)
	wildcards []scopedHost                  // the registry's wildcard hosts, sorted

	m          *model.Mesh // the valid objects' model, for Lucid's own checks and explanations
	modelDiags []config.Diagnostic
	out        []Message
}

// report adds a message about object o, located at field (the object's line when the
// field has none). The pointer, for setting Detail and Fix, is valid until the next report.
func (a *analyzer) report(o *config.Object, code string, level Level, field, text string) *Message {
	ns := o.Namespace
	if o.Kind == config.KindNamespace || o.Kind == config.KindNode {
		ns = ""
	}
	m := Message{Code: code, Level: level, Kind: o.Kind, Name: o.Name, Namespace: ns,
		File: o.File, Line: o.LineOf(field), Field: field, Text: text}
	a.out = append(a.out, m)
	return &a.out[len(a.out)-1]
}

// reportf is report with Istio's message template.
func (a *analyzer) reportf(o *config.Object, code string, level Level, field, format string, args ...any) *Message {
	return a.report(o, code, level, field, fmt.Sprintf(format, args...))
}

// kind returns the objects of kind k, valid and invalid.
func (a *analyzer) kind(k string) []*config.Object { return a.kinds[k] }
