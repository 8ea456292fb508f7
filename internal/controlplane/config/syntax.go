package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	yaml4 "go.yaml.in/yaml/v4"
)

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError describes a document yaml.v3 cannot parse: "YAML syntax error: <the parser's
// message>" at the line and column where the parser stopped. yaml.v3 reports only a line,
// often the line where the enclosing construct starts, so the position (and the
// construct, when the parser names one) comes from go-yaml v4, whose errors carry both;
// v3's message and line remain when v4 reads the document differently.
func syntaxError(file string, doc document, err error) Diagnostic {
	d := Diagnostic{Level: Error, File: file, Line: doc.line, Syntax: true}
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		d.Line = doc.line + n - 1
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	var node yaml4.Node
	var le *yaml4.LoadError
	var les *yaml4.LoadErrors
	e4 := yaml4.Unmarshal(doc.data, &node)
	if errors.As(e4, &les) && len(les.Errors) > 0 {
		le = les.Errors[0]
	} else if !errors.As(e4, &le) {
		le = nil
	}
	if le != nil && le.Mark.Line > 0 {
		d.Line, d.Column = doc.line+le.Mark.Line-1, le.Mark.Column
		msg = le.Message
		if le.ContextMsg != "" && le.ContextMark.Line > 0 && le.ContextMark != le.Mark {
			msg += fmt.Sprintf(" (%s at line %d, column %d)", le.ContextMsg, doc.line+le.ContextMark.Line-1, le.ContextMark.Column)
		}
	}
	d.Message = "YAML syntax error: " + msg
	return d
}
