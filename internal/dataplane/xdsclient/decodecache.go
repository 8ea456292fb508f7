package xdsclient

import (
	"bytes"
	"sync"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/types/known/anypb"
)

// DecodeCache shares decoded resources between the clients of one process that set it in
// their Options: a resource whose bytes one client decoded is not decoded again by the
// others (they get the same value and the same raw Any). A sidecar runs one client and has
// no use for it; it is for programs that run many clients in one process (the control
// plane's scale benchmark), where every client decoding every resource on its own would
// measure the clients' CPU instead of the control plane. Values are shared: nobody may
// modify a decoded resource (nobody does). Entries no client used since the last Sweep
// before are dropped by Sweep. Safe for concurrent use.
type DecodeCache struct {
	mu   sync.Mutex
	gen  uint64
	byID map[decodeKey]*decoded
}

type decodeKey struct {
	typeURL string
	sum     uint64 // xxhash of the bytes; a hit is confirmed by comparing them
}

type decoded struct {
	raw   *anypb.Any
	name  string
	value any
	used  uint64
}

// Sweep drops what no client used since the Sweep before.
func (c *DecodeCache) Sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, d := range c.byID {
		if d.used < c.gen {
			delete(c.byID, k)
		}
	}
	c.gen++
}

// decode returns a's name and decoded value through the cache (with the raw Any to keep).
// Errors are not cached.
func (c *DecodeCache) decode(k kind, a *anypb.Any) (*anypb.Any, string, any, error) {
	if c == nil {
		name, v, err := k.decode(a)
		return a, name, v, err
	}
	key := decodeKey{typeURL: a.GetTypeUrl(), sum: xxhash.Sum64(a.GetValue())}
	c.mu.Lock()
	d := c.byID[key]
	if d != nil && bytes.Equal(d.raw.GetValue(), a.GetValue()) {
		d.used = c.gen
		c.mu.Unlock()
		return d.raw, d.name, d.value, nil
	}
	c.mu.Unlock()
	name, v, err := k.decode(a)
	if err != nil {
		return a, name, v, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil {
		c.byID = map[decodeKey]*decoded{}
	}
	if d := c.byID[key]; d != nil && bytes.Equal(d.raw.GetValue(), a.GetValue()) {
		d.used = c.gen
		return d.raw, d.name, d.value, nil
	}
	c.byID[key] = &decoded{raw: a, name: name, value: v, used: c.gen} // a colliding entry is replaced
	return a, name, v, nil
}
