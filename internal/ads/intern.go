package ads

import (
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
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
type interner struct {
	cur, next map[internKey]types.Resource // next is nil outside a Push
}

type internKey struct {
	typeURL string
	sum     [32]byte
}

// begin starts a Push's generation.
func (in *interner) begin() {
	in.next = make(map[internKey]types.Resource, len(in.cur))
}

// end makes the Push's generation current and drops what it did not use.
func (in *interner) end() {
	in.cur, in.next = in.next, nil
}

// share returns, for resources of typeURL, the function hashResources calls with each
// resource and its hash: it returns the kept copy of an equal resource, or keeps r.
func (in *interner) share(typeURL string) func(sum [32]byte, r types.Resource) types.Resource {
	return func(sum [32]byte, r types.Resource) types.Resource {
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
	}
}

// size is the number of distinct resources kept (tests).
func (in *interner) size() int { return len(in.cur) + len(in.next) }
