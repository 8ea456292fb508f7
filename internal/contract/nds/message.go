package nds

import (
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Message is t as a protobuf message of nds.proto's NameTable (a dynamic message over the
// schema below), for the control plane's xDS server, which sends resources as messages.
// Its encoding is Marshal(t).
func Message(t Table) proto.Message {
	m := dynamicpb.NewMessage(Descriptor())
	if err := proto.Unmarshal(Marshal(t), m); err != nil {
		panic("nds: the name table does not decode with its own schema: " + err.Error()) // a bug in Marshal
	}
	return m
}

// Descriptor is nds.proto's NameTable (istio.networking.nds.v1, Istio's pkg/dns/proto).
var Descriptor = sync.OnceValue(func() protoreflect.MessageDescriptor {
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	msg := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	field := func(name string, num int32, typ *descriptorpb.FieldDescriptorProto_Type, label *descriptorpb.FieldDescriptorProto_Label, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Type: typ, Label: label, JsonName: proto.String(name)}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	fd := &descriptorpb.FileDescriptorProto{
		Name: proto.String("nds.proto"), Package: proto.String("istio.networking.nds.v1"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name:  proto.String("NameTable"),
			Field: []*descriptorpb.FieldDescriptorProto{field("table", fieldTable, msg, rep, ".istio.networking.nds.v1.NameTable.TableEntry")},
			NestedType: []*descriptorpb.DescriptorProto{
				{
					Name: proto.String("NameInfo"),
					Field: []*descriptorpb.FieldDescriptorProto{
						field("ips", fieldInfoIPs, str, rep, ""), field("registry", fieldInfoRegistry, str, opt, ""),
						field("shortname", fieldInfoShortname, str, opt, ""), field("namespace", fieldInfoNamespace, str, opt, ""),
						field("alt_hosts", fieldInfoAltHosts, str, rep, ""),
					},
				},
				{
					Name: proto.String("TableEntry"),
					Field: []*descriptorpb.FieldDescriptorProto{
						field("key", fieldEntryKey, str, opt, ""), field("value", fieldEntryValue, msg, opt, ".istio.networking.nds.v1.NameTable.NameInfo"),
					},
					Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
				},
			},
		}},
	}
	f, err := protodesc.NewFile(fd, nil)
	if err != nil {
		panic("nds: NameTable descriptor: " + err.Error())
	}
	return f.Messages().ByName("NameTable")
})
