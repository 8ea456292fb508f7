// Package redact hides private keys in xDS resources before anything shows them, as
// Envoy's config dump does: a TLS certificate's inline private_key reads "[redacted]".
// The control plane's /debug/config_dump (ads) and a proxy's admin /config_dump
// (xdsclient) both pass resources through it; a Gateway credentialName's key, which the
// control plane sends inline from a Kubernetes Secret, is never printed.
//
// It imports only the protobuf runtime: it walks any message by reflection, opening
// google.protobuf.Any values whose types are linked into the binary.
package redact

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// Redacted is what a redacted private key reads.
const Redacted = "[redacted]"

const dataSource protoreflect.FullName = "envoy.config.core.v3.DataSource"

// PrivateKeys returns a with every inline private_key (a DataSource) replaced by
// Redacted: a itself when it has none, else a redacted copy (a is never changed).
func PrivateKeys(a *anypb.Any) *anypb.Any {
	if a == nil {
		return nil
	}
	c := proto.Clone(a).(*anypb.Any)
	if !redactAny(c) {
		return a
	}
	return c
}

// redactAny redacts the message inside an Any in place; false when it held no key (or
// its type is not linked in).
func redactAny(a *anypb.Any) bool {
	inner, err := a.UnmarshalNew()
	if err != nil || !redact(inner.ProtoReflect()) {
		return false
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(inner)
	if err != nil {
		return false
	}
	a.Value = b
	return true
}

// redact redacts m in place and reports whether it changed anything.
func redact(m protoreflect.Message) bool {
	changed := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				changed = redactValue(fd, l.Get(i).Message()) || changed
			}
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				return true
			}
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				changed = redactValue(fd.MapValue(), mv.Message()) || changed
				return true
			})
		default:
			changed = redactValue(fd, v.Message()) || changed
		}
		return true
	})
	return changed
}

func redactValue(fd protoreflect.FieldDescriptor, m protoreflect.Message) bool {
	switch {
	case fd.Name() == "private_key" && m.Descriptor().FullName() == dataSource:
		return redactSource(m)
	case m.Descriptor().FullName() == "google.protobuf.Any":
		a, ok := m.Interface().(*anypb.Any)
		return ok && redactAny(a)
	}
	return redact(m)
}

// redactSource replaces an inline DataSource's content; a file name stays (it says
// where the key is, not what it is).
func redactSource(m protoreflect.Message) bool {
	fields := m.Descriptor().Fields()
	inBytes, inString := fields.ByName("inline_bytes"), fields.ByName("inline_string")
	if inBytes == nil || inString == nil || !m.Has(inBytes) && !m.Has(inString) {
		return false
	}
	if m.Has(inString) && m.Get(inString).String() == Redacted {
		return false
	}
	m.Set(inString, protoreflect.ValueOfString(Redacted))
	return true
}
