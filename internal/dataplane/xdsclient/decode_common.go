package xdsclient

import (
	"fmt"
	"regexp"
	"sort"
	"time"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typepb "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// validator is what protoc-gen-validate generates on every go-control-plane message.
type validator interface{ ValidateAll() error }

// validate runs the proto's own (protoc-gen-validate) rules.
func validate(m validator) error {
	if err := m.ValidateAll(); err != nil {
		return fmt.Errorf("invalid: %w", err)
	}
	return nil
}

// durationOr converts d, or returns def when d is unset.
func durationOr(d *durationpb.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.AsDuration()
}

// boolOr returns v's value, or def when unset.
func boolOr(v *wrapperspb.BoolValue, def bool) bool {
	if v == nil {
		return def
	}
	return v.GetValue()
}

// compileFull compiles an RE2 regex that must match the whole input (Envoy's safe_regex
// matchers are full matches).
func compileFull(re string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(re); err != nil {
		return nil, fmt.Errorf("invalid regex %q: %w", re, err)
	}
	return regexp.Compile("^(?:" + re + ")$")
}

// compileSearch compiles an RE2 regex that is used to find matches (rewrites).
func compileSearch(re string) (*regexp.Regexp, error) {
	r, err := regexp.Compile(re)
	if err != nil {
		return nil, fmt.Errorf("invalid regex %q: %w", re, err)
	}
	return r, nil
}

func decodeRegexMatcher(m *matcherpb.RegexMatcher) (*regexp.Regexp, error) {
	if m == nil {
		return nil, fmt.Errorf("regex matcher is empty")
	}
	return compileFull(m.GetRegex())
}

// decodeStringMatcher converts a type.matcher.v3.StringMatcher.
func decodeStringMatcher(m *matcherpb.StringMatcher) (resource.StringMatcher, error) {
	out := resource.StringMatcher{IgnoreCase: m.GetIgnoreCase()}
	switch p := m.GetMatchPattern().(type) {
	case *matcherpb.StringMatcher_Exact:
		out.Kind, out.Value = resource.MatchExact, p.Exact
	case *matcherpb.StringMatcher_Prefix:
		out.Kind, out.Value = resource.MatchPrefix, p.Prefix
	case *matcherpb.StringMatcher_Suffix:
		out.Kind, out.Value = resource.MatchSuffix, p.Suffix
	case *matcherpb.StringMatcher_Contains:
		out.Kind, out.Value = resource.MatchContains, p.Contains
	case *matcherpb.StringMatcher_SafeRegex:
		re, err := decodeRegexMatcher(p.SafeRegex)
		if err != nil {
			return out, fmt.Errorf("safe_regex: %w", err)
		}
		out.Kind, out.Regex, out.IgnoreCase = resource.MatchRegex, re, false
	case nil:
		return out, fmt.Errorf("match_pattern: not set")
	default:
		return out, fmt.Errorf("match_pattern: %T is not supported", p)
	}
	return out, nil
}

// decodeHeaderOptions converts []config.core.v3.HeaderValueOption.
func decodeHeaderOptions(opts []*corepb.HeaderValueOption) ([]resource.HeaderValueOption, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	out := make([]resource.HeaderValueOption, 0, len(opts))
	for i, o := range opts {
		h := resource.HeaderValueOption{Key: o.GetHeader().GetKey(), Value: o.GetHeader().GetValue()}
		if h.Value == "" && len(o.GetHeader().GetRawValue()) > 0 {
			h.Value = string(o.GetHeader().GetRawValue())
		}
		switch {
		case o.GetAppend() != nil: //nolint:staticcheck // SA1019: Envoy still honours the deprecated field
			h.Append = o.GetAppend().GetValue() //nolint:staticcheck // SA1019: Envoy still honours the deprecated field
		case o.GetAppendAction() == corepb.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
			h.Append = true
		case o.GetAppendAction() == corepb.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
			h.Append = false
		default:
			return nil, fmt.Errorf("[%d].append_action: %s is not supported", i, o.GetAppendAction())
		}
		out = append(out, h)
	}
	return out, nil
}

// percentOf converts a FractionalPercent into 0..100.
func percentOf(p *typepb.FractionalPercent) float64 {
	if p == nil {
		return 0
	}
	n := float64(p.GetNumerator())
	var v float64
	switch p.GetDenominator() {
	case typepb.FractionalPercent_TEN_THOUSAND:
		v = n / 100
	case typepb.FractionalPercent_MILLION:
		v = n / 10000
	default:
		v = n
	}
	if v > 100 {
		v = 100 // Envoy caps the numerator at the denominator
	}
	return v
}

// filterMetadata returns metadata.filter_metadata[key] fields, or nil.
func filterMetadata(md *corepb.Metadata, key string) map[string]*structpb.Value {
	return md.GetFilterMetadata()[key].GetFields()
}

// stringField returns a string field of a Struct's fields ("" when absent or not a string).
func stringField(fields map[string]*structpb.Value, key string) string {
	return fields[key].GetStringValue()
}

// stringMap converts a Struct of string values into a map; non-string values are an error.
func stringMap(v *structpb.Value) (map[string]string, error) {
	if v == nil {
		return nil, nil
	}
	s := v.GetStructValue()
	if s == nil {
		return nil, fmt.Errorf("not a struct")
	}
	out := make(map[string]string, len(s.GetFields()))
	keys := make([]string, 0, len(s.GetFields()))
	for k := range s.GetFields() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sv, ok := s.GetFields()[k].GetKind().(*structpb.Value_StringValue)
		if !ok {
			return nil, fmt.Errorf("%q: not a string", k)
		}
		out[k] = sv.StringValue
	}
	return out, nil
}
