// Package logformat parses Envoy's access-log format strings (a file access log's
// log_format: its text, or each value of its JSON format) into literal text and command
// operators, `%OPERATOR%`, `%OPERATOR(ARG)%`, `%REQ(MAIN?ALTERNATIVE)%`, each with an
// optional `:MAX_LENGTH`. The control plane parses a mesh config provider's
// envoyFileAccessLog.logFormat to validate it (the warning names the field); the data
// plane parses the log_format it receives (a failure NACKs the listener) and formats
// each line with the parts (internal/dataplane/accesslog).
//
// It is a leaf shared by both planes, like the rest of internal/contract.
package logformat

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Part is a literal (Op "") or one command operator.
type Part struct {
	Literal string
	Op      string // e.g. "RESPONSE_CODE", "REQ"
	Arg     string // REQ's and RESP's header name (":PATH" and other pseudo-headers too)
	Alt     string // REQ(MAIN?ALT): the header used when MAIN is absent
	Max     int    // :MAX_LENGTH; 0 for none
}

// Kind is what an operator's value is.
type Kind int

// The kinds: text, or a number (written unquoted in a JSON line).
const (
	Text Kind = iota
	Number
)

// Operators are the command operators Lucid formats (Envoy's names), and their kinds.
// REQ takes a header name; RESP only x-envoy-upstream-service-time (the response headers
// are not kept for the access log).
var Operators = map[string]Kind{
	"START_TIME":                             Text,
	"PROTOCOL":                               Text,
	"METHOD":                                 Text,
	"REQ":                                    Text,
	"RESP":                                   Text,
	"RESPONSE_CODE":                          Number,
	"RESPONSE_FLAGS":                         Text,
	"RESPONSE_CODE_DETAILS":                  Text,
	"CONNECTION_TERMINATION_DETAILS":         Text,
	"UPSTREAM_TRANSPORT_FAILURE_REASON":      Text,
	"BYTES_RECEIVED":                         Number,
	"BYTES_SENT":                             Number,
	"DURATION":                               Number,
	"UPSTREAM_REQUEST_ATTEMPT_COUNT":         Number,
	"UPSTREAM_HOST":                          Text,
	"UPSTREAM_CLUSTER":                       Text,
	"UPSTREAM_CLUSTER_RAW":                   Text,
	"UPSTREAM_LOCAL_ADDRESS":                 Text,
	"DOWNSTREAM_LOCAL_ADDRESS":               Text,
	"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT":  Text,
	"DOWNSTREAM_REMOTE_ADDRESS":              Text,
	"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": Text,
	"REQUESTED_SERVER_NAME":                  Text,
	"ROUTE_NAME":                             Text,
}

// UpstreamServiceTime is the one response header RESP formats.
const UpstreamServiceTime = "x-envoy-upstream-service-time"

// MaxLength bounds a format string: a line of configuration.
const MaxLength = 16 << 10

// Parse splits a format string into its parts. An unknown operator, a missing argument
// or a malformed command is an error naming its position (1-based byte offset).
func Parse(s string) ([]Part, error) {
	if len(s) > MaxLength {
		return nil, fmt.Errorf("format is %d bytes; at most %d", len(s), MaxLength)
	}
	var parts []Part
	lit := strings.Builder{}
	for i := 0; i < len(s); {
		if s[i] != '%' {
			j := strings.IndexByte(s[i:], '%')
			if j < 0 {
				j = len(s) - i
			}
			lit.WriteString(s[i : i+j])
			i += j
			continue
		}
		end := strings.IndexByte(s[i+1:], '%')
		if end < 0 {
			return nil, fmt.Errorf("%d: %q is not closed by a %%", i+1, s[i:])
		}
		cmd := s[i+1 : i+1+end]
		if cmd == "" { // "%%": a literal percent sign
			lit.WriteByte('%')
			i += 2
			continue
		}
		p, err := parseCommand(cmd)
		if err != nil {
			return nil, fmt.Errorf("%d: %%%s%%: %w", i+1, cmd, err)
		}
		if lit.Len() > 0 {
			parts = append(parts, Part{Literal: lit.String()})
			lit.Reset()
		}
		parts = append(parts, p)
		i += end + 2
	}
	if lit.Len() > 0 {
		parts = append(parts, Part{Literal: lit.String()})
	}
	return parts, nil
}

// parseCommand parses OPERATOR[(ARG[?ALT])][:MAX].
func parseCommand(cmd string) (Part, error) {
	var p Part
	rest := cmd
	if i := strings.IndexByte(rest, '('); i >= 0 {
		j := strings.LastIndexByte(rest, ')')
		if j < i {
			return p, errors.New("( is not closed")
		}
		p.Op, p.Arg = rest[:i], rest[i+1:j]
		rest = rest[j+1:]
		p.Arg, p.Alt, _ = strings.Cut(p.Arg, "?")
	} else {
		p.Op, rest, _ = strings.Cut(rest, ":")
		if rest != "" {
			rest = ":" + rest
		}
	}
	if rest != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(rest, ":"))
		if !strings.HasPrefix(rest, ":") || err != nil || n <= 0 {
			return p, fmt.Errorf("%q after the operator: want :MAX_LENGTH, a positive number", rest)
		}
		p.Max = n
	}
	if _, ok := Operators[p.Op]; !ok {
		return p, fmt.Errorf("operator %s is not one Lucid formats", p.Op)
	}
	switch {
	case (p.Op == "REQ" || p.Op == "RESP") && p.Arg == "":
		return p, fmt.Errorf("%s needs a header name", p.Op)
	case p.Op == "RESP" && !strings.EqualFold(p.Arg, UpstreamServiceTime):
		return p, fmt.Errorf("RESP(%s): only %s is kept for the access log", p.Arg, UpstreamServiceTime)
	case p.Op != "REQ" && p.Op != "RESP" && p.Arg != "":
		return p, fmt.Errorf("%s takes no argument", p.Op)
	}
	return p, nil
}

// Single reports whether parts are exactly one operator of kind Number (a JSON value
// Envoy writes as a number).
func Single(parts []Part) bool {
	return len(parts) == 1 && parts[0].Op != "" && Operators[parts[0].Op] == Number
}
