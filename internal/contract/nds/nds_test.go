package nds

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// nameTableDescriptor is nds.proto (istio.networking.nds.v1) as a descriptor, so the test
// encodes with the real schema through protobuf's own dynamic messages.
func nameTableDescriptor(testing.TB) protoreflect.MessageDescriptor { return Descriptor() }

var sample = Table{
	"reviews.default.svc.cluster.local": {IPs: []netip.Addr{netip.MustParseAddr("10.96.0.20")}, Registry: RegistryKubernetes, ShortName: "reviews", Namespace: "default"},
	"api.example.com":                   {IPs: []netip.Addr{netip.MustParseAddr("240.240.0.7"), netip.MustParseAddr("2001:2::f0f0:7")}, Registry: RegistryExternal},
}

// A table encoded by protobuf itself from nds.proto decodes to the same table, and ours
// decodes there to the same message.
func TestWireCompatibleWithNDSProto(t *testing.T) {
	md := nameTableDescriptor(t)
	m := dynamicpb.NewMessage(md)
	table := m.Mutable(md.Fields().ByName("table")).Map()
	info := md.Messages().ByName("NameInfo")
	for host, in := range sample {
		v := dynamicpb.NewMessage(info)
		ips := v.Mutable(info.Fields().ByName("ips")).List()
		for _, ip := range in.IPs {
			ips.Append(protoreflect.ValueOfString(ip.String()))
		}
		v.Set(info.Fields().ByName("registry"), protoreflect.ValueOfString(in.Registry))
		if in.ShortName != "" {
			v.Set(info.Fields().ByName("shortname"), protoreflect.ValueOfString(in.ShortName))
			v.Set(info.Fields().ByName("namespace"), protoreflect.ValueOfString(in.Namespace))
		}
		v.Mutable(info.Fields().ByName("alt_hosts")).List().Append(protoreflect.ValueOfString("ignored.example"))
		table.Set(protoreflect.ValueOfString(host).MapKey(), protoreflect.ValueOfMessage(v))
	}
	wire, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(wire)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sample) {
		t.Errorf("decoded %+v, want %+v", got, sample)
	}

	back := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(Marshal(sample), back); err != nil {
		t.Fatal(err)
	}
	m.Mutable(md.Fields().ByName("table")).Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		v.Message().Clear(info.Fields().ByName("alt_hosts"))
		return true
	})
	if !proto.Equal(back, m) {
		t.Errorf("protobuf reads our encoding as %v, want %v", back, m)
	}
}

func TestUnmarshalInvalid(t *testing.T) {
	bad := func(host string, ips ...string) []byte {
		// Encode by hand: Marshal only takes valid addresses.
		md := nameTableDescriptor(t)
		m := dynamicpb.NewMessage(md)
		info := md.Messages().ByName("NameInfo")
		v := dynamicpb.NewMessage(info)
		for _, ip := range ips {
			v.Mutable(info.Fields().ByName("ips")).List().Append(protoreflect.ValueOfString(ip))
		}
		m.Mutable(md.Fields().ByName("table")).Map().Set(protoreflect.ValueOfString(host).MapKey(), protoreflect.ValueOfMessage(v))
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"bad ip", bad("a.example.com", "10.0.0.300"), `table["a.example.com"].ips: "10.0.0.300" is not an IP address`},
		{"bad host", bad("a b.example.com", "10.0.0.1"), `table["a b.example.com"]`},
		{"empty host", bad("", "10.0.0.1"), `table[""]`},
		{"truncated", Marshal(sample)[:10], "malformed"},
		{"garbage", []byte{0xff, 0xff, 0xff}, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unmarshal(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if tbl, err := Unmarshal(nil); err != nil || len(tbl) != 0 {
		t.Errorf("empty message: %v, %v", tbl, err)
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(Marshal(sample))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x03, 0x0a, 0x01, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		tbl, err := Unmarshal(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same table.
		again, err := Unmarshal(Marshal(tbl))
		if err != nil {
			t.Fatalf("re-encoded table does not decode: %v", err)
		}
		if len(again) != len(tbl) {
			t.Fatalf("round trip changed the table: %v vs %v", again, tbl)
		}
	})
}

func TestAutoAllocate(t *testing.T) {
	var keys []string
	for i := range 2000 {
		keys = append(keys, fmt.Sprintf("ns%d/svc%d.example.com", i%7, i))
	}
	slices.Sort(keys)
	got := AutoAllocate(keys)
	if len(got) != len(keys) {
		t.Fatalf("%d addresses for %d keys", len(got), len(keys))
	}
	space := netip.MustParsePrefix("240.240.0.0/16")
	seen := map[netip.Addr]string{}
	for k, a := range got {
		b := a.As4()
		if !space.Contains(a) || b[3] == 0 || b[3] == 255 {
			t.Errorf("%s: %s is outside 240.240.0.0/16 or a .0/.255 address", k, a)
		}
		if other, dup := seen[a]; dup {
			t.Errorf("%s and %s share %s", k, other, a)
		}
		seen[a] = k
	}
	// The same set gives the same addresses (a restarted control plane), and adding
	// ServiceEntries moves none of the existing ones.
	if again := AutoAllocate(slices.Clone(keys)); !reflect.DeepEqual(again, got) {
		t.Error("the same keys got other addresses")
	}
	more := AutoAllocate(append(slices.Clone(keys), "default/new.example.com", "other/new2.example.com"))
	for k, a := range got {
		if more[k] != a {
			t.Errorf("%s moved from %s to %s when entries were added", k, a, more[k])
		}
	}
	if dup := AutoAllocate([]string{"a/x", "a/x"}); len(dup) != 1 {
		t.Errorf("a duplicate key: %v", dup)
	}
}

// Filling the whole space: every slot is used once, nothing loops.
func TestAutoAllocateFull(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 65 024 addresses")
	}
	keys := make([]string, slots+10)
	for i := range keys {
		keys[i] = fmt.Sprintf("ns/h%d", i)
	}
	if got := AutoAllocate(keys); len(got) != slots {
		t.Fatalf("%d addresses, want %d", len(got), slots)
	}
}
