package forward

import (
	"net/http"
	"strconv"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// requestHash computes the request's hash for RING_HASH and MAGLEV clusters from the
// route's hash policies (DestinationRule consistentHash): each policy that finds its value
// folds it in; a terminal policy that produced a hash ends the list. ok is false when no
// policy produced one (the cluster then picks at random, as Envoy does).
//
// A cookie policy with a TTL whose cookie is absent generates the cookie (from the client
// address) and sets it on the response, so the client's next requests stick to the host.
func (x *exchange) requestHash() (hash uint64, ok bool) {
	pols := x.rt.Action.HashPolicy
	if len(pols) == 0 {
		return 0, false
	}
	if lb := x.cl.Config().LBPolicy; lb != resource.RingHash && lb != resource.Maglev {
		return 0, false
	}
	for i := range pols {
		p := &pols[i]
		v, found := x.hashValue(p)
		if !found {
			continue
		}
		if ok {
			hash = cluster.CombineHash(hash, cluster.HashKey(v))
		} else {
			hash, ok = cluster.HashKey(v), true
		}
		if p.Terminal {
			break
		}
	}
	return hash, ok
}

func (x *exchange) hashValue(p *resource.HashPolicy) (string, bool) {
	r := x.r
	switch {
	case p.Header != "":
		vv := r.Header.Values(p.Header)
		if len(vv) == 0 {
			return "", false
		}
		return vv[0], true
	case p.Cookie != nil:
		if c, err := r.Cookie(p.Cookie.Name); err == nil {
			return c.Value, true
		}
		if !p.Cookie.HasTTL {
			return "", false
		}
		v := strconv.FormatUint(cluster.HashKey(x.in.RemoteAddr.String()+"|"+x.info.RequestID), 16)
		//nolint:gosec // G124: Envoy's generated hash cookie is HttpOnly only; mesh traffic is plain HTTP
		x.setCookie = (&http.Cookie{Name: p.Cookie.Name, Value: v, Path: p.Cookie.Path,
			MaxAge: int(p.Cookie.TTL / time.Second), HttpOnly: true}).String()
		return v, true
	case p.SourceIP:
		if !x.in.RemoteAddr.IsValid() {
			return "", false
		}
		return x.in.RemoteAddr.Addr().Unmap().String(), true
	case p.QueryParameter != "":
		q := x.r.URL.Query()
		if vv, ok := q[p.QueryParameter]; ok && len(vv) > 0 {
			return vv[0], true
		}
	}
	return "", false
}
