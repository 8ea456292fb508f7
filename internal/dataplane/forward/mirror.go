package forward

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
)

// mirrorTimeout bounds a mirror request when the route has no timeout.
const mirrorTimeout = 10 * time.Second

// sendMirrors sends a copy of the request to each mirror cluster, fire and forget, with the
// Host suffixed "-shadow" (as Envoy does). A request body is mirrored only when it was kept
// whole; otherwise the mirror is skipped and noted.
func (x *exchange) sendMirrors() {
	if len(x.rt.Action.Mirrors) > 0 { // inlined: no call for a route without mirrors
		x.mirror()
	}
}

// mirror is sendMirrors for a route with mirrors.
func (x *exchange) mirror() {
	f := x.f // the goroutines below must not reach x: it is reused (release.go)
	for _, m := range x.rt.Action.Mirrors {
		if !hit(m.Percent) {
			continue
		}
		var body []byte
		if x.up.body != nil {
			b, ok := x.up.body.complete()
			if !ok {
				x.info.Notes = append(x.info.Notes, "mirror to "+m.Cluster+" skipped: request body not kept")
				continue
			}
			body = b
		}
		cl := x.f.o.Clusters.Get(m.Cluster)
		if cl == nil {
			continue
		}
		pl := x.f.o.Pools.Get(m.Cluster)
		if pl == nil {
			continue
		}
		host, err := cl.Pick(cluster.PickContext{OriginalDst: x.in.OriginalDst})
		if err != nil {
			continue
		}
		timeout := x.rt.Action.Timeout
		if timeout <= 0 {
			timeout = mirrorTimeout
		}
		h := x.upHeader().Clone()
		req := &http.Request{
			Method:     x.r.Method,
			URL:        &url.URL{Path: x.up.path.Path, RawPath: x.up.path.RawPath, RawQuery: x.up.path.RawQuery},
			Proto:      "HTTP/1.1",
			ProtoMajor: x.r.ProtoMajor,
			ProtoMinor: x.r.ProtoMinor,
			Header:     h,
			Host:       shadowHost(x.up.host),
			Body:       http.NoBody,
		}
		if len(body) > 0 {
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.ContentLength = int64(len(body))
		}
		stats := cl.Stats()
		f.mirrors.Add(1)
		x.mirrored = true
		go func() {
			defer f.mirrors.Done()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			host.RequestStart()
			defer host.RequestEnd()
			stats.UpstreamRqTotal.Add(1)
			resp, err := pl.RoundTrip(req.WithContext(ctx), host.Addr, hostCounters(host), nil)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}()
	}
}
