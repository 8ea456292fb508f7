package simulate

import (
	"net/http"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// keepaliveNote is the pool's explanation for a request that cannot be replayed (a POST
// without an Idempotency-Key) sent over HTTP/1.1 to the host at addr: which idle
// connections it may go on, given what the pool learned of the host's idle timeout
// (/clusters), and why a 503 UC for it is then not the keep-alive race. "" otherwise.
func (e *Env) keepaliveNote(r *http.Request, cl *cluster.Cluster, addr string) string {
	if r == nil || cl.Config().Protocol == resource.HTTP2 {
		return ""
	}
	hs := e.Health[cl.Name()][addr]
	return pool.ExplainReuse(r, addr, hs.Idle)
}
