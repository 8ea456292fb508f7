package ads

import (
	"runtime"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

func TestSubscriptionsShareOneNameSet(t *testing.T) {
	var in nameInterner
	a := emptyNames.with(&in, []string{"x", "y"}, nil)
	b := emptyNames.with(&in, []string{"y", "x", "y"}, nil)
	if a != b {
		t.Fatal("two watches subscribed to the same names hold two copies")
	}
	if a.with(&in, []string{"x"}, nil) != a {
		t.Fatal("subscribing to a name already held made a new set")
	}
	c := a.with(&in, nil, []string{"x"})
	if c == a || c.has("x") || !c.has("y") {
		t.Fatalf("unsubscribing x: got %v", c.m)
	}
	if !a.has("x") || !b.has("x") {
		t.Fatal("a change of one watch's subscription changed the others'")
	}
	if d := c.with(&in, []string{"x"}, nil); d != a {
		t.Fatal("subscribing back to x did not find the shared set")
	}
}

func TestUnusedNameSetsAreForgotten(t *testing.T) {
	var in nameInterner
	func() {
		n := emptyNames.with(&in, []string{"a", "b"}, nil)
		runtime.KeepAlive(n)
	}()
	testutil.Eventually(t, 5*time.Second, "the interner forgets a set no watch holds", func() bool {
		runtime.GC()
		in.mu.Lock()
		defer in.mu.Unlock()
		return len(in.sets) == 0
	})
}
