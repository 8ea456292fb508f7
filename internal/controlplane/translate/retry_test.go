package translate

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

func TestRetryPolicy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        *networkingv1alpha3.HTTPRetry
		hashed    bool
		wantNil   bool
		retryOn   string
		codes     []uint32
		retries   uint32
		predicate bool
	}{
		{name: "default", retryOn: DefaultRetryOn, retries: 2, predicate: true},
		{name: "default consistent hash", hashed: true, retryOn: DefaultRetryOn, retries: 2},
		{name: "disabled", in: &networkingv1alpha3.HTTPRetry{Attempts: 0}, wantNil: true},
		{name: "codes", in: &networkingv1alpha3.HTTPRetry{Attempts: 3, RetryOn: "gateway-error, 503,504"},
			retryOn: "gateway-error,retriable-status-codes", codes: []uint32{503, 504}, retries: 3, predicate: true},
		{name: "no status code", in: &networkingv1alpha3.HTTPRetry{Attempts: 1, RetryOn: "5xx,999"}, retryOn: "5xx,999", retries: 1, predicate: true},
		{name: "keep previous hosts off", in: &networkingv1alpha3.HTTPRetry{Attempts: 1, RetryIgnorePreviousHosts: wrapperspb.Bool(false)},
			retryOn: DefaultRetryOn, retries: 1},
		{name: "hashed but explicit", in: &networkingv1alpha3.HTTPRetry{Attempts: 1, RetryIgnorePreviousHosts: wrapperspb.Bool(true)}, hashed: true,
			retryOn: DefaultRetryOn, retries: 1, predicate: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := retryPolicy(tc.in, tc.hashed)
			if tc.wantNil {
				if p != nil {
					t.Fatalf("got %v, want no retry policy", p)
				}
				return
			}
			if p.GetRetryOn() != tc.retryOn || p.GetNumRetries().GetValue() != tc.retries ||
				!slices.Equal(p.GetRetriableStatusCodes(), tc.codes) || (len(p.GetRetryHostPredicate()) > 0) != tc.predicate {
				t.Errorf("got %v", p)
			}
			if p.GetHostSelectionRetryMaxAttempts() != 5 {
				t.Errorf("host_selection_retry_max_attempts %d, want 5", p.GetHostSelectionRetryMaxAttempts())
			}
		})
	}
}
