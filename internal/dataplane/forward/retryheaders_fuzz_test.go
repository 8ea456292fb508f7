package forward

import (
	"net/http"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// FuzzRetryHeaders: any values of the x-envoy-* retry and timeout headers give a policy
// that keeps the route's conditions, never a negative timeout, and a per-try timeout only
// below the route timeout.
func FuzzRetryHeaders(f *testing.F) {
	f.Add("5xx,reset", "unavailable", "3", "503,418", "x-a", "100", "50")
	f.Add("", "", "", "", "", "0", "")
	f.Add("bogus,,", "cancelled ,internal", "-1", "99,600,abc", ",,", "9999999999999999999", "soon")
	f.Fuzz(func(t *testing.T, on, grpcOn, maxR, codes, names, timeout, perTry string) {
		h := http.Header{}
		for k, v := range map[string]string{hdrRetryOn: on, hdrRetryGRPCOn: grpcOn, hdrMaxRetries: maxR,
			hdrRetriableCodes: codes, hdrRetriableNames: names, hdrRqTimeout: timeout, hdrRqPerTryTimeout: perTry} {
			if v != "" {
				h.Set(k, v)
			}
		}
		base := &resource.RetryPolicy{RetryOn: []string{"connect-failure"}, NumRetries: 2}
		o := overrides(h, base, 2*time.Second)
		if o.timeout < 0 {
			t.Fatalf("negative timeout %v", o.timeout)
		}
		p := o.policy
		if p == nil || len(p.RetryOn) == 0 || p.RetryOn[0] != "connect-failure" {
			t.Fatalf("route's conditions lost: %+v", p)
		}
		if p.PerTryTimeout != 0 && o.timeout > 0 && p.PerTryTimeout >= o.timeout {
			t.Fatalf("per-try %v not below route timeout %v", p.PerTryTimeout, o.timeout)
		}
		if len(base.RetryOn) != 1 {
			t.Fatal("the route's policy was modified")
		}
		for _, c := range p.RetriableStatusCodes {
			if c < 100 || c > 599 {
				t.Fatalf("status code %d accepted", c)
			}
		}
	})
}
