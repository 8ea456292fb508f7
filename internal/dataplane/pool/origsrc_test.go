package pool

import (
	"net/netip"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Connections made from a client's address (TPROXY's original source) are pooled per
// client: one client's connection to the app is never reused for another's request, and
// a pool without an original source is the cluster's own.
func TestFromPoolsPerClient(t *testing.T) {
	s := newSet(t, &resource.Cluster{Name: "inbound|9080||"})
	p := s.Get("inbound|9080||")
	if p.From(OriginalSource{}) != p {
		t.Fatal("From without a source is not the cluster's own pool")
	}
	a := OriginalSource{Addr: netip.MustParseAddr("10.10.0.11"), Mark: 1337}
	b := OriginalSource{Addr: netip.MustParseAddr("10.10.0.12"), Mark: 1337}
	pa, pb := p.From(a), p.From(b)
	if pa == p || pb == p || pa == pb {
		t.Fatal("two clients share a pool, or a client shares the cluster's")
	}
	if p.From(a) != pa {
		t.Fatal("the same client got a second pool")
	}
	s.Update(map[string]*resource.Cluster{}) // the cluster goes: its clients' pools retire with it
	if !pa.retired.Load() || !pb.retired.Load() {
		t.Fatal("a client's pool outlived its cluster's")
	}
}

// A loopback upstream (the inbound cluster's 127.0.0.1 endpoint) is dialled at the pod's
// address the client called: the app's reply from 127.0.0.1 could not reach the client.
func TestOriginalSourceTarget(t *testing.T) {
	o := OriginalSource{Addr: netip.MustParseAddr("10.10.0.11"), Mark: 1337, Local: netip.MustParseAddr("10.10.0.2")}
	for addr, want := range map[string]string{
		"127.0.0.1:9080": "10.10.0.2:9080",
		"10.10.0.2:7777": "10.10.0.2:7777",
		"[::1]:9080":     "[::1]:9080",
	} {
		if got := o.Target(addr); got != want {
			t.Errorf("Target(%s) = %s, want %s", addr, got, want)
		}
	}
	if got := (OriginalSource{}).Target("127.0.0.1:9080"); got != "127.0.0.1:9080" {
		t.Errorf("no original source: Target = %s", got)
	}
}
