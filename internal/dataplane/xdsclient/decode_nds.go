package xdsclient

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/lucid-mesh/lucid/internal/contract/nds"
)

// Istio's name table (NDS) for the agent's DNS proxy: subscribed, as a wildcard type of
// one unnamed resource, only when Options.NameTable is set (the agent runs the DNS proxy).
// A table that does not decode (a malformed message, a host that is not a DNS name, an
// address that is not an IP) is NACKed with nds.Unmarshal's reason and the last good
// table keeps answering. An accepted table goes to NameTable, not to the Applier: the
// proxy's listeners and clusters do not change.

// NDS is the name table's short type name (Status.Types).
const NDS = "NDS"

var ndsKind = kind{url: nds.TypeURL, short: NDS, noun: "name table", wildcard: true, decode: func(a *anypb.Any) (string, any, error) {
	t, err := nds.Unmarshal(a.GetValue())
	return "", t, err
}}

// acceptNameTable hands the accepted table to Options.NameTable and records it.
func (c *Client) acceptNameTable(ts *typeState, cd *candidate, version string, now time.Time) error {
	if len(cd.entries) > 1 { // a wildcard type: entries is the whole accepted state
		return fmt.Errorf("name table: %d resources, want one", len(cd.entries))
	}
	t := nds.Table{}
	for _, e := range cd.entries {
		t, _ = e.value.(nds.Table)
	}
	c.o.NameTable(t)
	c.mu.Lock()
	cd.commit(ts)
	ts.status = TypeStatus{Received: true, Version: version, UpdatedAt: now}
	c.mu.Unlock()
	return nil
}
