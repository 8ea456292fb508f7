package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// /config_dump as Envoy answers it, on top of the proxy's full dump (Options.ConfigDump):
//
//   - every section istioctl reads is there: a proxy without secrets yet gets an empty
//     SecretsConfigDump (istioctl's `proxy-config secret` and `all` need the section);
//   - ?resource=<field> returns the elements of that repeated field of the first section
//     that has it (dynamic_active_clusters, dynamic_listeners, dynamic_route_configs, ...),
//     each packed as its own message ("@type" ...ClustersConfigDump.DynamicCluster); a
//     field that is not repeated is 400 "<f> is not a repeated field. Use ?mask=<f> to get
//     only this field", an unknown one 404 "<f> not found in config dump";
//   - ?mask=<paths> (a FieldMask: comma-separated dot paths of proto field names) keeps only
//     those fields of each section, or with ?resource= of each element. Lucid also applies a
//     path through a repeated field to each of its elements, which Envoy's top-level masks
//     do not support;
//   - ?name_regex=<re> keeps only the clusters, listeners, route configurations, endpoint
//     assignments and secrets whose name the regular expression matches whole (Go's RE2
//     syntax, as Envoy's RE2); an invalid one is 400.
//
// The dump is handled as JSON (the admin API imports no Envoy protos): the sections' and
// elements' fields are known from the table below, Envoy's admin.v3 messages.

const typePrefix = "type.googleapis.com/envoy.admin.v3."

// dumpSection is one envoy.admin.v3.*ConfigDump message: its repeated fields (→ the
// element message type) and its other fields.
type dumpSection struct {
	repeated map[string]string
	singular []string
}

var dumpSections = map[string]dumpSection{
	"BootstrapConfigDump": {singular: []string{"bootstrap", "last_updated"}},
	"ClustersConfigDump": {singular: []string{"version_info"}, repeated: map[string]string{
		"static_clusters": "ClustersConfigDump.StaticCluster", "dynamic_active_clusters": "ClustersConfigDump.DynamicCluster",
		"dynamic_warming_clusters": "ClustersConfigDump.DynamicCluster"}},
	"EndpointsConfigDump": {repeated: map[string]string{
		"static_endpoint_configs": "EndpointsConfigDump.StaticEndpointConfig", "dynamic_endpoint_configs": "EndpointsConfigDump.DynamicEndpointConfig"}},
	"ListenersConfigDump": {singular: []string{"version_info"}, repeated: map[string]string{
		"static_listeners": "ListenersConfigDump.StaticListener", "dynamic_listeners": "ListenersConfigDump.DynamicListener"}},
	"RoutesConfigDump": {repeated: map[string]string{
		"static_route_configs": "RoutesConfigDump.StaticRouteConfig", "dynamic_route_configs": "RoutesConfigDump.DynamicRouteConfig"}},
	"SecretsConfigDump": {repeated: map[string]string{
		"static_secrets": "SecretsConfigDump.StaticSecret", "dynamic_active_secrets": "SecretsConfigDump.DynamicSecret",
		"dynamic_warming_secrets": "SecretsConfigDump.DynamicSecret"}},
}

// dumpError is a /config_dump query Envoy refuses: the status and its text.
type dumpError struct {
	code int
	msg  string
}

func (e *dumpError) Error() string { return e.msg }

// shapeConfigDump applies the query's resource, mask and name_regex to the full dump.
func shapeConfigDump(full []byte, q url.Values) ([]byte, error) {
	var dump struct {
		Configs []json.RawMessage `json:"configs"`
	}
	if err := json.Unmarshal(full, &dump); err != nil {
		return nil, fmt.Errorf("config dump: %w", err)
	}
	if !hasSection(dump.Configs, "SecretsConfigDump") {
		dump.Configs = append(dump.Configs, json.RawMessage(`{"@type":"`+typePrefix+`SecretsConfigDump"}`))
	}
	if q.Has("name_regex") {
		re, err := regexp.Compile(`^(?:` + q.Get("name_regex") + `)$`)
		if err != nil {
			return nil, &dumpError{http.StatusBadRequest, fmt.Sprintf("INVALID_ARGUMENT: Invalid regex '%s': %v", q.Get("name_regex"), err)}
		}
		for i, c := range dump.Configs {
			dump.Configs[i] = keepNamed(c, re)
		}
	}
	var m maskNode
	if q.Has("mask") {
		m = parseMask(q.Get("mask"))
	}
	var configs []json.RawMessage
	if q.Has("resource") {
		var err error
		if configs, err = resourceElements(dump.Configs, q.Get("resource")); err != nil {
			return nil, err
		}
	} else {
		configs = dump.Configs
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	if len(configs) > 0 {
		buf.WriteString(`"configs":[`)
		for i, c := range configs {
			if i > 0 {
				buf.WriteByte(',')
			}
			if m != nil {
				c = m.trim(c)
			}
			buf.Write(c)
		}
		buf.WriteByte(']')
	}
	buf.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("config dump: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func sectionType(raw json.RawMessage) string {
	var t struct {
		Type string `json:"@type"`
	}
	_ = json.Unmarshal(raw, &t)
	return strings.TrimPrefix(t.Type, typePrefix)
}

func hasSection(configs []json.RawMessage, name string) bool {
	for _, c := range configs {
		if sectionType(c) == name {
			return true
		}
	}
	return false
}

// resourceElements is ?resource=: the first section (in the dump's order) with the field.
func resourceElements(configs []json.RawMessage, resource string) ([]json.RawMessage, error) {
	for _, c := range configs {
		sec, ok := dumpSections[sectionType(c)]
		if !ok {
			continue
		}
		for _, f := range sec.singular {
			if f == resource {
				return nil, &dumpError{http.StatusBadRequest, fmt.Sprintf("%s is not a repeated field. Use ?mask=%s to get only this field", resource, resource)}
			}
		}
		elemType, ok := sec.repeated[resource]
		if !ok {
			continue
		}
		var elems []json.RawMessage
		for _, f := range objectFields(c) {
			if f.key == resource {
				if err := json.Unmarshal(f.val, &elems); err != nil {
					return nil, fmt.Errorf("config dump %s: %w", resource, err)
				}
			}
		}
		out := make([]json.RawMessage, 0, len(elems))
		for _, e := range elems {
			fs := append([]field{{key: "@type", val: json.RawMessage(`"` + typePrefix + elemType + `"`)}}, objectFields(e)...)
			out = append(out, encodeObject(fs))
		}
		return out, nil
	}
	return nil, &dumpError{http.StatusNotFound, resource + " not found in config dump"}
}

// keepNamed drops from a section's repeated fields the elements whose name re does not
// match.
func keepNamed(section json.RawMessage, re *regexp.Regexp) json.RawMessage {
	sec, ok := dumpSections[sectionType(section)]
	if !ok {
		return section
	}
	fs := objectFields(section)
	for i, f := range fs {
		if _, repeated := sec.repeated[f.key]; !repeated {
			continue
		}
		var elems []json.RawMessage
		if json.Unmarshal(f.val, &elems) != nil {
			continue
		}
		kept := elems[:0]
		for _, e := range elems {
			if re.MatchString(elementName(e)) {
				kept = append(kept, e)
			}
		}
		b, err := json.Marshal(kept)
		if err == nil {
			fs[i].val = b
		}
	}
	return encodeObject(fs)
}

// elementName is the name of one element of a section: its own "name" (a dynamic listener,
// a secret), else its resource's "name" or "cluster_name" (an endpoint assignment).
func elementName(elem json.RawMessage) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(elem, &fields) != nil {
		return ""
	}
	var name string
	if json.Unmarshal(fields["name"], &name) == nil && name != "" {
		return name
	}
	for _, k := range []string{"cluster", "listener", "route_config", "endpoint_config", "secret"} {
		var r struct {
			Name        string `json:"name"`
			ClusterName string `json:"cluster_name"`
		}
		if raw, ok := fields[k]; ok && json.Unmarshal(raw, &r) == nil {
			if r.Name != "" {
				return r.Name
			}
			return r.ClusterName
		}
	}
	return ""
}

// field is one member of a JSON object, in its order.
type field struct {
	key string
	val json.RawMessage
}

// objectFields returns raw's members in order; nil when raw is not an object.
func objectFields(raw json.RawMessage) []field {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var fs []field
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fs
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return fs
		}
		fs = append(fs, field{k, v})
	}
	return fs
}

func encodeObject(fs []field) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(f.val)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// maskNode is a parsed FieldMask: a field name → the paths under it (an empty node keeps
// the whole field).
type maskNode map[string]maskNode

// parseMask parses a FieldMask's string form: "a.b,c".
func parseMask(s string) maskNode {
	root := maskNode{}
	for _, path := range strings.Split(s, ",") {
		path = strings.TrimSpace(path)
		if path == "" {
			continue
		}
		n := root
		for _, name := range strings.Split(path, ".") {
			child, ok := n[name]
			if !ok {
				child = maskNode{}
				n[name] = child
			}
			n = child
		}
	}
	return root
}

// trim keeps the fields of raw the mask names ("@type" always, so a message packed in an
// Any stays readable); arrays are trimmed element by element, other values kept.
func (m maskNode) trim(raw json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return raw
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var elems []json.RawMessage
		if json.Unmarshal(trimmed, &elems) != nil {
			return raw
		}
		var b bytes.Buffer
		b.WriteByte('[')
		for i, e := range elems {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(m.trim(e))
		}
		b.WriteByte(']')
		return b.Bytes()
	}
	fs := objectFields(raw)
	if fs == nil {
		return raw
	}
	kept := fs[:0:0]
	for _, f := range fs {
		if f.key == "@type" {
			kept = append(kept, f)
		} else if child, ok := m[f.key]; ok {
			kept = append(kept, field{f.key, child.trim(f.val)})
		}
	}
	return encodeObject(kept)
}

// writeConfigDumpError answers a refused /config_dump query as Envoy does (text, nosniff).
func writeConfigDumpError(w http.ResponseWriter, err error) bool {
	var de *dumpError
	if !errors.As(err, &de) {
		return false
	}
	text(w, de.code, de.msg)
	return true
}
