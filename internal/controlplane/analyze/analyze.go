// Package analyze finds configuration that Istio accepts but that will misbehave, before
// any traffic: `lucid analyze` runs it on files (offline) and the control plane on its
// current configuration (/debug/analyze). It sits beside the control plane's flow:
//
//	config (parse, validate: IST0106) → model.Build → analyze (IST0101, IST0173, ...)
//
// Messages carry Istio's codes and texts where Istio has an analyzer (istioctl analyze),
// and Lucid's own LUC codes for what Istio misses; each names the object, its file and
// line, and the fix.
package analyze

import (
	"cmp"
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
	Code      string `json:"code"`  // IST0101, LUC0001, ...
	Level     Level  `json:"level"` // Error, Warning, Info
	Kind      string `json:"kind,omitempty"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	File      string `json:"file,omitempty"` // relative to the config directory
	Line      int    `json:"line,omitempty"`
	Field     string `json:"field,omitempty"`
	Text      string `json:"message"` // Istio's template text where Istio has the code
	Detail    string `json:"detail,omitempty"`
	Fix       string `json:"fix,omitempty"`
}

// Object names the message's object as istioctl does: "VirtualService reviews.default".
func (m Message) Object() string {
	if m.Kind == "" {
		return ""
	}
	return m.Kind + " " + m.Name + "." + m.Namespace
}

// String renders a message as istioctl analyze prints one, plus Lucid's detail and fix:
//
//	Error [IST0173] (DestinationRule reviews.default reviews.yaml:63) The Subset v3 defined ...
//	    WorkloadEntry reviews-v3 has app=reviews but no version label
//	    fix: ...
func (m Message) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s [%s]", m.Level, m.Code)
	where := m.Object()
	if m.File != "" {
		loc := m.File
		if m.Line > 0 {
			loc += fmt.Sprintf(":%d", m.Line)
		}
		where = strings.TrimSpace(where + " " + loc)
	}
	if where != "" {
		fmt.Fprintf(&b, " (%s)", where)
	}
	b.WriteString(" " + m.Text)
	for _, d := range strings.Split(m.Detail, "\n") {
		if d != "" {
			b.WriteString("\n    " + d)
		}
	}
	if m.Fix != "" {
		b.WriteString("\n    fix: " + m.Fix)
	}
	return b.String()
}

func at(o *config.Object, code string, level Level, field, text string) Message {
	return Message{Code: code, Level: level, Kind: o.Kind, Name: o.Name, Namespace: o.Namespace,
		File: o.File, Line: o.Line, Field: field, Text: text}
}

// Analyze runs every analyzer on a set of objects and the diagnostics config produced
// while loading them (schema errors become IST0106). mesh may be nil (Istio defaults).
// Messages are sorted by level (errors first), file, line and code.
func Analyze(objs []*config.Object, loadDiags []config.Diagnostic, mesh *meshv1alpha1.MeshConfig) []Message {
	m, buildDiags := model.Build(objs, mesh)
	var out []Message
	out = append(out, schemaErrors(loadDiags)...)
	out = append(out, otherWarnings(buildDiags)...)
	a := &analyzer{objs: objs, m: m}
	out = append(out, a.subsetsSelectNothing()...)
	out = append(out, a.unknownDestinationRuleHosts()...)
	out = append(out, a.referencedNotFound()...)
	out = append(out, a.gatewayReferences()...) // gateways.go
	out = append(out, a.gatewaySelectors()...)
	out = append(out, a.conflictingGateways()...)
	out = append(out, a.droppedGatewayServers()...)
	out = append(out, a.portNames()...)
	out = append(out, a.workloadLabels()...)
	out = append(out, a.unreachable()...)
	out = append(out, a.shadowedVirtualServices()...)
	out = append(out, a.unsafeRetries()...)
	out = append(out, a.authorization()...) // authz.go
	slices.SortStableFunc(out, func(x, y Message) int {
		return cmp.Or(cmp.Compare(rank(x.Level), rank(y.Level)), cmp.Compare(x.File, y.File),
			cmp.Compare(x.Line, y.Line), cmp.Compare(x.Code, y.Code), cmp.Compare(x.Field, y.Field))
	})
	return out
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

type analyzer struct {
	objs []*config.Object
	m    *model.Mesh
}

func (a *analyzer) kind(k string) []*config.Object {
	var out []*config.Object
	for _, o := range a.objs {
		if o.Kind == k {
			out = append(out, o)
		}
	}
	return out
}

// schemaErrors turns config's rejections into IST0106.
func schemaErrors(diags []config.Diagnostic) []Message {
	var out []Message
	for _, d := range diags {
		if d.Level != config.Error {
			continue
		}
		msg := d.Message
		if d.Field != "" {
			msg = d.Field + ": " + msg
		}
		out = append(out, Message{Code: "IST0106", Level: Error, Kind: d.Kind, Name: d.Name, Namespace: d.Namespace,
			File: d.File, Line: d.Line, Field: d.Field, Text: "Schema validation error: " + msg,
			Fix: "correct the field; the control plane rejects this object and keeps serving its last good version"})
	}
	return out
}

// otherWarnings passes on model.Build's warnings that no analyzer below re-derives, as
// LUC0000 (they still name file, object and field).
func otherWarnings(diags []config.Diagnostic) []Message {
	var out []Message
	for _, d := range diags {
		if strings.Contains(d.Message, "(IST0") || strings.Contains(d.Message, "IST0101)") ||
			strings.Contains(d.Message, "is not in the service registry") || strings.Contains(d.Message, "has no port") ||
			strings.Contains(d.Message, "server not served by gateway") { // LUC0005
			continue // re-derived below with Istio's code and text
		}
		lvl := Warning
		if d.Level == config.Info {
			lvl = Info
		}
		msg := d.Message
		if d.Field != "" {
			msg = d.Field + ": " + msg
		}
		out = append(out, Message{Code: "LUC0000", Level: lvl, Kind: d.Kind, Name: d.Name, Namespace: d.Namespace,
			File: d.File, Line: d.Line, Field: d.Field, Text: msg})
	}
	return out
}
