package analyze

import (
	"strings"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// loadMessages turns what config found while loading into messages: Istio's schema
// validation errors and warnings (IST0106, IST0133), and Lucid's: files that are not YAML
// or not objects (LUC0006), kinds Lucid does not know (LUC0007), Lucid's own warnings and
// the model's (LUC0000).
func (a *analyzer) loadMessages(diags []config.Diagnostic) {
	for _, d := range diags {
		if d.Namespace != "" && ignoredNamespaces[d.Namespace] {
			continue
		}
		m := Message{Kind: d.Kind, Name: d.Name, Namespace: d.Namespace, File: d.File, Line: d.Line, Column: d.Column, Field: d.Field}
		if d.Kind == config.KindNamespace || d.Kind == config.KindNode {
			m.Namespace = ""
		}
		text := d.Message
		if d.Field != "" {
			text = d.Field + ": " + text
		}
		switch {
		case d.Syntax, d.Level == config.Error && d.Kind == "" && !d.UnknownKind:
			m.Code, m.Level, m.Text = "LUC0006", Error, text
			if d.Syntax {
				m.Fix = "correct the YAML at this position; the other documents of the file are read"
			}
		case d.UnknownKind && d.Level == config.Info:
			m.Code, m.Level, m.Text = "LUC0007", Info, d.Message // an Istio kind Lucid does not read
		case d.UnknownKind:
			m.Code, m.Level, m.Text = "LUC0007", Warning, text
			m.Detail = "the document is not analysed; the control plane rejects it"
			m.Fix = "correct kind and apiVersion"
		case d.Lucid:
			m.Code, m.Level, m.Text = "LUC0000", levelOf(d.Level), text
		case d.Level == config.Error:
			m.Code, m.Level, m.Text = "IST0106", Error, "Schema validation error: "+text
			m.Fix = "correct the field; the control plane rejects this object and keeps serving its last good version"
		case d.Level == config.Warning:
			m.Code, m.Level, m.Text = "IST0133", Warning, "Schema validation warning: "+text
		default:
			continue // Info: kinds validated but not applied by Lucid
		}
		a.out = append(a.out, m)
	}
}

func levelOf(l config.Level) Level {
	switch l {
	case config.Error:
		return Error
	case config.Warning:
		return Warning
	}
	return Info
}

// modelWarnings passes on model.Build's warnings that no check re-derives, as LUC0000
// (they still name file, object and field).
func (a *analyzer) modelWarnings() {
	for _, d := range a.modelDiags {
		if strings.Contains(d.Message, "(IST0") || strings.Contains(d.Message, "IST0101)") ||
			strings.Contains(d.Message, "is not in the service registry") || strings.Contains(d.Message, "has no port") ||
			strings.Contains(d.Message, "server not served by gateway") { // LUC0005
			continue // re-derived with Istio's code and text
		}
		msg := d.Message
		if d.Field != "" {
			msg = d.Field + ": " + msg
		}
		a.out = append(a.out, Message{Code: "LUC0000", Level: levelOf(d.Level), Kind: d.Kind, Name: d.Name, Namespace: d.Namespace,
			File: d.File, Line: d.Line, Field: d.Field, Text: msg})
	}
}
