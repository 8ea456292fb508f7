package xdsclient

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/lucid-mesh/lucid/internal/contract/nds"
)

// The name table is subscribed only for the DNS proxy; an accepted one reaches it, a bad
// one is refused with the host it names and the last good one stays.
func TestNameTableAcceptAndReject(t *testing.T) {
	if c := New(Options{}); c.types[nds.TypeURL] != nil {
		t.Fatal("a client without a DNS proxy subscribes to the name table")
	}
	var got []nds.Table
	c := New(Options{NameTable: func(t nds.Table) { got = append(got, t) }})
	ts := c.types[nds.TypeURL]
	if ts == nil || !ts.kind.wildcard {
		t.Fatal("the name table is not subscribed")
	}
	good := nds.Table{"reviews.default.svc.cluster.local": {IPs: []netip.Addr{netip.MustParseAddr("10.96.0.20")}, Registry: nds.RegistryKubernetes, ShortName: "reviews", Namespace: "default"}}
	respond := func(version string, value []byte) error {
		r := &discoverypb.DiscoveryResponse{VersionInfo: version, TypeUrl: nds.TypeURL, Resources: []*anypb.Any{{TypeUrl: nds.TypeURL, Value: value}}}
		cd, err := decodeResponse(ts, r, time.Now())
		if err != nil {
			return err
		}
		_, _, err = c.accept(ts, cd, version, time.Now())
		return err
	}
	if err := respond("1", nds.Marshal(good)); err != nil {
		t.Fatal(err)
	}
	bad := nds.Marshal(nds.Table{"bad_host!.example.com": {IPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}})
	err := respond("2", bad)
	if err == nil || !strings.Contains(err.Error(), `"bad_host!.example.com"`) {
		t.Fatalf("bad table: %v, want an error naming the host", err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0], good) {
		t.Fatalf("tables handed over %v, want only the good one", got)
	}
	if st := c.Status().Types[NDS]; !st.Received || st.Version != "1" {
		t.Fatalf("status %+v, want version 1 accepted", st)
	}
}
