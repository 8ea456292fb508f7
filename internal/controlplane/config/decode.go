package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
)

// fieldError is one problem found while decoding or validating a spec, located by
// its JSON field path (spec.http[0].route) and, when known, its YAML line.
type fieldError struct {
	path string
	line int
	msg  string
}

// decoder fills a proto message from a YAML node tree, strictly: unknown fields,
// wrong shapes, bad enum names and malformed durations are errors naming the field
// path. It records the line of every field it visits so that later validation
// errors can point at the right line.
//
// It accepts what Istio's JSON decoding accepts: field names in lowerCamelCase or
// snake_case, enums by name or number, integers quoted or not, durations in Go
// syntax ("1.5s", "100ms"), wrapper types as their bare value, null as unset.
type decoder struct {
	lines map[string]int
	errs  []fieldError
}

func newDecoder() *decoder { return &decoder{lines: map[string]int{}} }

func (d *decoder) errorf(path string, n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, fieldError{path: path, line: line, msg: fmt.Sprintf(format, args...)})
}

// lineOf returns the line of path or of its nearest recorded ancestor.
func (d *decoder) lineOf(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := d.lines[p]; ok {
			return l
		}
	}
	return 0
}

// parentPath strips the last segment of a field path: a.b[1] → a.b, a.b → a.
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i <= 0 {
		return ""
	}
	return p[:i]
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("string %q", n.Value)
		case "!!int", "!!float":
			return "number " + n.Value
		case "!!bool":
			return "boolean " + n.Value
		}
		return n.Value
	}
	return "nothing"
}

// message decodes mapping n into m.
func (d *decoder) message(n *yaml.Node, m protoreflect.Message, path string) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(path, n, "expected a mapping, got %s", describe(n))
		return
	}
	fields := m.Descriptor().Fields()
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		name := k.Value
		fpath := joinPath(path, name)
		d.lines[fpath] = k.Line
		if k.Kind != yaml.ScalarNode {
			d.errorf(path, k, "field names must be strings")
			continue
		}
		fd := fields.ByJSONName(name)
		if fd == nil {
			fd = fields.ByTextName(name)
		}
		if fd == nil {
			d.errorf(fpath, k, "unknown field %q", name)
			continue
		}
		if seen[string(fd.Name())] {
			d.errorf(fpath, k, "field %q is set twice", name)
			continue
		}
		seen[string(fd.Name())] = true
		if isNull(resolve(v)) {
			continue
		}
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if other := m.WhichOneof(od); other != nil {
				d.errorf(fpath, k, "only one of %s may be set (%s is already set)", oneofNames(od), other.JSONName())
				continue
			}
		}
		d.field(v, m, fd, fpath)
	}
}

func oneofNames(od protoreflect.OneofDescriptor) string {
	var names []string
	for i := 0; i < od.Fields().Len(); i++ {
		names = append(names, od.Fields().Get(i).JSONName())
	}
	return strings.Join(names, ", ")
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func (d *decoder) field(v *yaml.Node, m protoreflect.Message, fd protoreflect.FieldDescriptor, path string) {
	v = resolve(v)
	switch {
	case fd.IsList():
		if v.Kind != yaml.SequenceNode {
			d.errorf(path, v, "expected a list, got %s", describe(v))
			return
		}
		list := m.Mutable(fd).List()
		for i, item := range v.Content {
			ipath := fmt.Sprintf("%s[%d]", path, i)
			d.lines[ipath] = item.Line
			if val, ok := d.value(item, list.NewElement, fd, ipath); ok {
				list.Append(val)
			}
		}
	case fd.IsMap():
		if v.Kind != yaml.MappingNode {
			d.errorf(path, v, "expected a mapping, got %s", describe(v))
			return
		}
		mp := m.Mutable(fd).Map()
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, item := resolve(v.Content[i]), v.Content[i+1]
			ipath := fmt.Sprintf("%s[%s]", path, k.Value)
			d.lines[ipath] = k.Line
			if k.Kind != yaml.ScalarNode {
				d.errorf(path, k, "map keys must be scalars")
				continue
			}
			key, ok := d.scalar(k, fd.MapKey(), ipath, true)
			if !ok {
				continue
			}
			if mp.Has(key.MapKey()) {
				d.errorf(ipath, k, "duplicate key %q", k.Value)
				continue
			}
			if val, ok := d.value(item, mp.NewValue, fd.MapValue(), ipath); ok {
				mp.Set(key.MapKey(), val)
			}
		}
	default:
		if val, ok := d.value(v, func() protoreflect.Value { return m.NewField(fd) }, fd, path); ok {
			m.Set(fd, val)
		}
	}
}

// value decodes one singular value (a list element, map value or plain field).
func (d *decoder) value(n *yaml.Node, newMsg func() protoreflect.Value, fd protoreflect.FieldDescriptor, path string) (protoreflect.Value, bool) {
	n = resolve(n)
	if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
		if isNull(n) {
			d.errorf(path, n, "null is not allowed here")
			return protoreflect.Value{}, false
		}
		return d.scalar(n, fd, path, false)
	}
	val := newMsg()
	msg := val.Message()
	switch msg.Descriptor().FullName() {
	case "google.protobuf.Duration":
		if n.Kind != yaml.ScalarNode || isNull(n) {
			d.errorf(path, n, "expected a duration such as \"1.5s\", got %s", describe(n))
			return protoreflect.Value{}, false
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			d.errorf(path, n, "invalid duration %q", n.Value)
			return protoreflect.Value{}, false
		}
		pb := durationpb.New(dur)
		fds := msg.Descriptor().Fields()
		msg.Set(fds.ByName("seconds"), protoreflect.ValueOfInt64(pb.Seconds))
		msg.Set(fds.ByName("nanos"), protoreflect.ValueOfInt32(pb.Nanos))
		return val, true
	case "google.protobuf.BoolValue", "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
		"google.protobuf.UInt32Value", "google.protobuf.Int32Value", "google.protobuf.UInt64Value",
		"google.protobuf.Int64Value", "google.protobuf.StringValue", "google.protobuf.BytesValue":
		inner := msg.Descriptor().Fields().ByName("value")
		if isNull(n) {
			return val, true
		}
		iv, ok := d.scalar(n, inner, path, false)
		if !ok {
			return protoreflect.Value{}, false
		}
		msg.Set(inner, iv)
		return val, true
	}
	if isNull(n) {
		return val, true
	}
	d.message(n, msg, path)
	return val, true
}

// scalar decodes a scalar node into a value of fd's kind. mapKey relaxes typing
// (map keys are always written as strings in JSON).
func (d *decoder) scalar(n *yaml.Node, fd protoreflect.FieldDescriptor, path string, mapKey bool) (protoreflect.Value, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(path, n, "expected %s, got %s", kindName(fd), describe(n))
		return protoreflect.Value{}, false
	}
	tag := n.ShortTag()
	s := n.Value
	bad := func() (protoreflect.Value, bool) {
		d.errorf(path, n, "expected %s, got %s", kindName(fd), describe(n))
		return protoreflect.Value{}, false
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		if tag != "!!str" && !mapKey {
			return bad()
		}
		return protoreflect.ValueOfString(s), true
	case protoreflect.BytesKind:
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return bad()
		}
		return protoreflect.ValueOfBytes(b), true
	case protoreflect.BoolKind:
		if tag != "!!bool" && !mapKey {
			return bad()
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return bad()
		}
		return protoreflect.ValueOfBool(b), true
	case protoreflect.EnumKind:
		ed := fd.Enum()
		if tag == "!!int" {
			i, err := strconv.ParseInt(s, 0, 32)
			if err != nil || ed.Values().ByNumber(protoreflect.EnumNumber(i)) == nil {
				d.errorf(path, n, "invalid value %s, expected one of %s", s, enumNames(ed))
				return protoreflect.Value{}, false
			}
			return protoreflect.ValueOfEnum(protoreflect.EnumNumber(i)), true
		}
		ev := ed.Values().ByName(protoreflect.Name(s))
		if tag != "!!str" || ev == nil {
			d.errorf(path, n, "invalid value %q, expected one of %s", s, enumNames(ed))
			return protoreflect.Value{}, false
		}
		return protoreflect.ValueOfEnum(ev.Number()), true
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		if tag != "!!int" && tag != "!!float" && tag != "!!str" {
			return bad()
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return bad()
		}
		if fd.Kind() == protoreflect.FloatKind {
			return protoreflect.ValueOfFloat32(float32(f)), true
		}
		return protoreflect.ValueOfFloat64(f), true
	}
	// Integers: written as YAML ints or quoted strings, like protojson.
	if tag != "!!int" && tag != "!!str" {
		return bad()
	}
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		i, err := strconv.ParseInt(s, 0, 32)
		if err != nil {
			return d.intErr(path, n, fd, err)
		}
		return protoreflect.ValueOfInt32(int32(i)), true
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		i, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			return d.intErr(path, n, fd, err)
		}
		return protoreflect.ValueOfInt64(i), true
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		i, err := strconv.ParseUint(s, 0, 32)
		if err != nil {
			return d.intErr(path, n, fd, err)
		}
		return protoreflect.ValueOfUint32(uint32(i)), true
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		i, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			return d.intErr(path, n, fd, err)
		}
		return protoreflect.ValueOfUint64(i), true
	}
	return bad()
}

func (d *decoder) intErr(path string, n *yaml.Node, fd protoreflect.FieldDescriptor, err error) (protoreflect.Value, bool) {
	if errors.Is(err, strconv.ErrRange) {
		d.errorf(path, n, "%s is out of range for %s", n.Value, kindName(fd))
	} else {
		d.errorf(path, n, "expected %s, got %s", kindName(fd), describe(n))
	}
	return protoreflect.Value{}, false
}

func kindName(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return "a string"
	case protoreflect.BoolKind:
		return "a boolean"
	case protoreflect.EnumKind:
		return "one of " + enumNames(fd.Enum())
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return "a number"
	case protoreflect.BytesKind:
		return "base64 bytes"
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return "a non-negative integer"
	default:
		return "an integer"
	}
}

func enumNames(ed protoreflect.EnumDescriptor) string {
	var names []string
	for i := 0; i < ed.Values().Len(); i++ {
		names = append(names, string(ed.Values().Get(i).Name()))
	}
	return strings.Join(names, ", ")
}
