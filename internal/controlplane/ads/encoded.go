package ads

import (
	"slices"
	"sync"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto" // registers "proto" before this package's init
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// A push sends the same response to every connection of a class: the same resources, the
// same version; only the nonce differs. Marshalling it once per connection copied every
// resource's bytes into a fresh buffer per stream (a 500 KB route configuration pushed to
// 1,000 sidecars: 500 MB of copies and garbage). So responses are encoded once per
// distinct content (encodeCache) and each stream sends those bytes with its own nonce
// appended: a protobuf message may carry its fields in any order, so the encoded body
// followed by the encoded nonce field is the whole response.
//
// gRPC marshals what a stream sends with the codec named "proto"; this package registers
// one that sends an encodedResponse's bytes as they are and hands everything else to
// gRPC's own proto codec. It is registered for the process, so every gRPC server the xDS
// services are mounted on (the plaintext port, the TLS port) sends encoded responses.

// encodedResponse is a discovery response encoded without its nonce, and the nonce.
type encodedResponse struct {
	body  []byte
	nonce string
}

// Nonce field numbers: DiscoveryResponse.nonce is 5, DeltaDiscoveryResponse.nonce is 5.
const nonceField = 5

func (e *encodedResponse) bytes() mem.BufferSlice {
	tail := protowire.AppendTag(nil, nonceField, protowire.BytesType)
	tail = protowire.AppendString(tail, e.nonce)
	return mem.BufferSlice{mem.SliceBuffer(e.body), mem.SliceBuffer(tail)}
}

// codec is gRPC's proto codec, plus encodedResponse.
type codec struct{ proto encoding.CodecV2 }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(*encodedResponse); ok {
		return e.bytes(), nil
	}
	return c.proto.Marshal(v)
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }
func (c codec) Name() string                                { return grpcproto.Name }

func init() {
	encoding.RegisterCodecV2(codec{proto: encoding.GetCodecV2(grpcproto.Name)})
}

// encodeCache keeps the encodings of the most recent distinct responses of the current
// push generation (Push clears it, so it never holds more than one push's worth). A push
// visits its connections one after another; connections of one class ask for the same
// content, so a short list of recent encodings serves them all. A hit is an exact match: same
// protocol, type, version and removed names, and the very same resources in the same
// order (pointer equality: resources are immutable and shared by every proxy). Streams that
// ask for one content while it is being encoded wait for that encoding instead of making
// their own (a push wakes up to Throttle connections at once).
type encodeCache struct {
	mu      sync.Mutex
	entries [encodeCacheSize]*encodeEntry
	next    int // the slot the next miss overwrites

	hits, misses int // for tests
}

const encodeCacheSize = 32

type encodeEntry struct {
	delta     bool
	typeURL   string
	version   string
	resources []*resource
	removed   []string

	ready chan struct{} // closed once body and err are set
	body  []byte
	err   error
}

func (e *encodeEntry) matches(delta bool, r *response) bool {
	return e != nil && e.delta == delta && e.typeURL == r.typeURL && e.version == r.version &&
		slices.Equal(e.resources, r.resources) && slices.Equal(e.removed, r.removed)
}

// clear forgets every encoding.
func (c *encodeCache) clear() {
	c.mu.Lock()
	c.entries, c.next = [encodeCacheSize]*encodeEntry{}, 0
	c.mu.Unlock()
}

// encoded returns r (without its nonce) encoded for the protocol, from the cache when
// another stream was just sent the same content.
func (c *encodeCache) encoded(delta bool, r *response) ([]byte, error) {
	c.mu.Lock()
	for _, e := range c.entries {
		if e.matches(delta, r) {
			c.hits++
			c.mu.Unlock()
			<-e.ready
			if e.err != nil {
				return encode(delta, r) // the one who encoded failed: say why here too
			}
			return e.body, nil
		}
	}
	c.misses++
	e := &encodeEntry{delta: delta, typeURL: r.typeURL, version: r.version,
		resources: slices.Clone(r.resources), removed: slices.Clone(r.removed), ready: make(chan struct{})}
	c.entries[c.next] = e
	c.next = (c.next + 1) % encodeCacheSize
	c.mu.Unlock()

	e.body, e.err = encode(delta, r)
	close(e.ready)
	return e.body, e.err
}

// encode marshals r without its nonce.
func encode(delta bool, r *response) ([]byte, error) {
	if delta {
		out := &discoverygrpc.DeltaDiscoveryResponse{
			TypeUrl: r.typeURL, SystemVersionInfo: r.version,
			Resources:        make([]*discoverygrpc.Resource, len(r.resources)),
			RemovedResources: r.removed,
		}
		for i, x := range r.resources {
			out.Resources[i] = &discoverygrpc.Resource{Name: x.name, Version: x.version, Resource: x.any}
		}
		return proto.Marshal(out)
	}
	out := &discoverygrpc.DiscoveryResponse{
		TypeUrl: r.typeURL, VersionInfo: r.version,
		Resources: make([]*anypb.Any, len(r.resources)),
	}
	for i, x := range r.resources {
		out.Resources[i] = x.any
	}
	return proto.Marshal(out)
}
