package ads

import (
	"crypto/sha256"
	"fmt"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

// interner keeps one copy of each distinct resource for the snapshots of every node.
//
// The Generator builds each node's resources on its own, so N sidecars that see the same
// services get N equal copies of every cluster and endpoint assignment, and the snapshot
// cache would hold them all: with 1,000 Services and 10,000 endpoints about 35 MB per
// sidecar (bench/kubescale). Push already hashes every resource (its deterministic
// encoding's SHA-256) to detect changes; with that hash the interner hands every snapshot
// the one copy it has of an equal resource, so the cache holds each distinct resource once
// and a resource that did not change keeps its pointer from one Push to the next.
//
// Lifetime is by generation: cur holds what the snapshots published since the last Push
// began use; a Push collects what it publishes in next, which replaces cur when the Push
// ends. A resource no current snapshot uses is dropped within one Push. A node published
// between Pushes (a new connection) adds to cur. Callers hold the Server's genMu.
//
// It also remembers, by pointer, the hash of each cluster and endpoint assignment it was
// handed (sums), so a resource the Generator shares between nodes (translate.Cache builds
// each outbound cluster and assignment once per mesh) is marshalled and hashed once per
// Push, not once per node. Only those two types: the Generator builds listeners and routes
// per node, and remembering their pointers would keep every node's copy alive.
type interner struct {
	cur, next       map[internKey]types.Resource // next is nil outside a Push
	sumCur, sumNext map[types.Resource][32]byte  // generations like cur and next
}

type internKey struct {
	typeURL string
	sum     [32]byte
}

// begin starts a Push's generation.
func (in *interner) begin() {
	in.next = make(map[internKey]types.Resource, len(in.cur))
	in.sumNext = make(map[types.Resource][32]byte, len(in.sumCur))
}

// end makes the Push's generation current and drops what it did not use.
func (in *interner) end() {
	in.cur, in.next = in.next, nil
	in.sumCur, in.sumNext = in.sumNext, nil
}

// remembersSums reports whether the interner remembers hashes of typeURL's resources.
func remembersSums(typeURL string) bool {
	return typeURL == resourcev3.ClusterType || typeURL == resourcev3.EndpointType
}

// known returns the hash of r (this very pointer) when it was hashed before.
func (in *interner) known(r types.Resource) ([32]byte, bool) {
	if in.sumNext != nil {
		if sum, ok := in.sumNext[r]; ok {
			return sum, true
		}
	}
	sum, ok := in.sumCur[r]
	return sum, ok
}

// remember records r's hash for known.
func (in *interner) remember(r types.Resource, sum [32]byte) {
	if in.sumNext != nil {
		in.sumNext[r] = sum
		return
	}
	if in.sumCur == nil {
		in.sumCur = map[types.Resource][32]byte{}
	}
	in.sumCur[r] = sum
}

// share returns, for resources of typeURL, the sharer hashResources calls with each
// resource: its share returns the kept copy of an equal resource, or keeps r.
func (in *interner) share(typeURL string) sharer {
	return sharer{in: in, sums: remembersSums(typeURL), share: func(sum [32]byte, r types.Resource) types.Resource {
		k := internKey{typeURL: typeURL, sum: sum}
		if in.next != nil {
			if x, ok := in.next[k]; ok {
				return x
			}
		}
		x, ok := in.cur[k]
		if !ok {
			x = r
		}
		if in.next != nil {
			in.next[k] = x
		} else {
			if in.cur == nil {
				in.cur = map[internKey]types.Resource{}
			}
			in.cur[k] = x
		}
		return x
	}}
}

// sharer is what hashResources needs of the interner for one type.
type sharer struct {
	in    *interner
	sums  bool // remember hashes by pointer
	share func(sum [32]byte, r types.Resource) types.Resource
}

// sum returns r's hash, remembered or computed with det, and remembers it.
func (s sharer) sum(det proto.MarshalOptions, r types.Resource) ([32]byte, error) {
	if s.sums && s.in != nil {
		if sum, ok := s.in.known(r); ok {
			return sum, nil
		}
	}
	b, err := det.Marshal(r)
	if err != nil {
		return [32]byte{}, fmt.Errorf("marshal %s: %w", cachev3.GetResourceName(r), err)
	}
	sum := sha256.Sum256(b)
	if s.sums && s.in != nil {
		s.in.remember(r, sum)
	}
	return sum, nil
}

// size is the number of distinct resources kept (tests).
func (in *interner) size() int { return len(in.cur) + len(in.next) }
