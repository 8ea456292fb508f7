package testutil

import (
	"testing"
	"time"
)

// pollEvery is how often Eventually checks; small enough for sub-second conditions.
const pollEvery = 10 * time.Millisecond

// Eventually checks cond until it holds, failing the test with what was awaited if it
// does not within the bound.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	EventuallyWhy(t, within, what, func() (bool, string) { return cond(), "" })
}

// EventuallyWhy is Eventually for conditions that can say why they do not hold yet; the
// last reason is in the failure message.
func EventuallyWhy(t testing.TB, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if why != "" {
				t.Fatalf("%s: not within %v: %s", what, within, why)
			}
			t.Fatalf("%s: not within %v", what, within)
		}
		<-tick.C
	}
}

// Poll is Eventually for code that has no testing.TB (a mesh TestMain starts once for
// several tests): it calls f until it returns nil, and returns f's last error when f
// still fails after within.
func Poll(within time.Duration, f func() error) error {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		<-tick.C
	}
}
