// Package nds is the name table the control plane sends to each agent's DNS proxy (Istio's
// NDS: the xDS resource type.googleapis.com/istio.networking.nds.v1.NameTable, defined in
// istio/istio pkg/dns/proto/nds.proto). Both planes use it without importing each other:
//
//	control plane (translate/ads): model → Table → Marshal → Any in the xDS response
//	data plane (xdsclient):        Any → Unmarshal (validated) → Table
//	agent (dnsproxy):              Table → answers on :15053
//
// The wire format is written and read with protowire (the message is small and fixed), so
// no generated code from istio/istio is needed. AutoAllocate gives ServiceEntries without
// an address one from 240.240.0.0/16, as Istio does with ISTIO_META_DNS_AUTO_ALLOCATE.
package nds

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// TypeURL is the xDS type of the name table resource (one resource, unnamed, per proxy).
const TypeURL = "type.googleapis.com/istio.networking.nds.v1.NameTable"

// Registries (NameInfo.Registry) as Istio names them.
const (
	RegistryKubernetes = "Kubernetes"
	RegistryExternal   = "External" // ServiceEntry
)

// Table maps a host name (a Kubernetes Service FQDN such as reviews.default.svc.cluster.local,
// or a ServiceEntry host, "*." wildcards allowed) to its addresses.
type Table map[string]Info

// Info is one host's entry (Istio's NameTable.NameInfo).
type Info struct {
	IPs       []netip.Addr
	Registry  string // "Kubernetes" or "External" (ServiceEntry)
	ShortName string // Kubernetes only: the Service's name ("reviews")
	Namespace string // Kubernetes only: the Service's namespace ("default")
}

// Field numbers of nds.proto.
const (
	fieldTable         = 1 // NameTable.table (map<string, NameInfo>)
	fieldEntryKey      = 1 // map entry key
	fieldEntryValue    = 2 // map entry value
	fieldInfoIPs       = 1
	fieldInfoRegistry  = 2
	fieldInfoShortname = 3
	fieldInfoNamespace = 4
	fieldInfoAltHosts  = 5 // deprecated in Istio; read and ignored
)

// Marshal encodes t in the NameTable wire format, hosts in sorted order (deterministic
// output, so a resource's version can be its hash).
func Marshal(t Table) []byte {
	hosts := make([]string, 0, len(t))
	for h := range t {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	var out []byte
	for _, h := range hosts {
		info := t[h]
		var v []byte
		for _, ip := range info.IPs {
			v = protowire.AppendTag(v, fieldInfoIPs, protowire.BytesType)
			v = protowire.AppendString(v, ip.String())
		}
		for _, f := range []struct {
			num protowire.Number
			s   string
		}{{fieldInfoRegistry, info.Registry}, {fieldInfoShortname, info.ShortName}, {fieldInfoNamespace, info.Namespace}} {
			if f.s != "" {
				v = protowire.AppendTag(v, f.num, protowire.BytesType)
				v = protowire.AppendString(v, f.s)
			}
		}
		var entry []byte
		entry = protowire.AppendTag(entry, fieldEntryKey, protowire.BytesType)
		entry = protowire.AppendString(entry, h)
		entry = protowire.AppendTag(entry, fieldEntryValue, protowire.BytesType)
		entry = protowire.AppendBytes(entry, v)
		out = protowire.AppendTag(out, fieldTable, protowire.BytesType)
		out = protowire.AppendBytes(out, entry)
	}
	return out
}

// Unmarshal decodes and validates a NameTable. Unknown fields are skipped (forward
// compatible); a malformed message, a host that is not a DNS name, or an address that is not
// an IP is an error naming the host, for the NACK.
func Unmarshal(b []byte) (Table, error) {
	t := Table{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != fieldTable {
			return nil
		}
		if typ != protowire.BytesType {
			return errors.New("table: not a map entry")
		}
		host, info, err := entry(v)
		if err != nil {
			return err
		}
		if err := ValidHost(host); err != nil {
			return fmt.Errorf("table[%q]: %w", host, err)
		}
		host = strings.ToLower(host)
		if _, dup := t[host]; dup {
			return fmt.Errorf("table[%q]: host listed twice", host)
		}
		t[host] = info
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("nds: %w", err)
	}
	return t, nil
}

func entry(b []byte) (host string, info Info, err error) {
	var value []byte
	err = fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == fieldEntryKey && typ == protowire.BytesType:
			host = string(v)
		case num == fieldEntryValue && typ == protowire.BytesType:
			value = v
		}
		return nil
	})
	if err != nil {
		return "", Info{}, err
	}
	err = fields(value, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fieldInfoIPs:
			ip, err := netip.ParseAddr(string(v))
			if err != nil {
				return fmt.Errorf("table[%q].ips: %q is not an IP address", host, v)
			}
			info.IPs = append(info.IPs, ip.Unmap())
		case fieldInfoRegistry:
			info.Registry = string(v)
		case fieldInfoShortname:
			info.ShortName = string(v)
		case fieldInfoNamespace:
			info.Namespace = string(v)
		}
		return nil
	})
	return host, info, err
}

// fields walks the fields of one message; bytes fields are handed over, other types skipped.
func fields(b []byte, f func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("malformed message: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("malformed field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v); err != nil {
			return err
		}
	}
	return nil
}

// ValidHost checks that h is a DNS name (RFC 1123 labels of at most 63 characters, at most
// 253 in all, a trailing dot allowed) or a wildcard ("*." then a name).
func ValidHost(h string) error {
	name := strings.TrimSuffix(strings.TrimPrefix(h, "*."), ".")
	if name == "" || len(name) > 253 {
		return errors.New("not a DNS name (empty or longer than 253 characters)")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("label %q: empty or longer than 63 characters", label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			ok := c == '-' && i > 0 && i < len(label)-1 || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
			if !ok {
				return fmt.Errorf("label %q: %q is not allowed in a DNS name", label, c)
			}
		}
	}
	return nil
}
