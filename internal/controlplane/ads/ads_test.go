package ads

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	adminpb "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	listenergrpc "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// handshake walks a client through Envoy's start: CDS, EDS, LDS, RDS, acking each, and
// returns the responses by short type.
func handshake(t *testing.T, c *adsClient) map[string]string {
	t.Helper()
	versions := map[string]string{}
	steps := []struct {
		typeURL string
		names   []string
	}{
		{resourcev3.ClusterType, nil},
		{resourcev3.EndpointType, []string{testCluster}},
		{resourcev3.ListenerType, nil},
		{resourcev3.RouteType, []string{testRoute}},
	}
	for _, st := range steps {
		c.request(st.typeURL, "", "", st.names, "")
		resp := c.next(st.typeURL)
		c.ack(resp, st.names)
		versions[shortType(st.typeURL)] = resp.GetVersionInfo()
	}
	return versions
}

func TestInitialRequestsGetResources(t *testing.T) {
	s := startServer(t)
	c := dial(t, s.addr, "reviews-v1.default", map[string]any{"NAMESPACE": "default", "CLUSTER_ID": "Kubernetes", "REPLICAS": 2.0})

	tests := []struct {
		typeURL string
		names   []string
		want    []string
	}{
		{resourcev3.ClusterType, nil, []string{testCluster}},
		{resourcev3.EndpointType, []string{testCluster}, []string{testCluster}},
		{resourcev3.ListenerType, nil, []string{testListener}},
		{resourcev3.RouteType, []string{testRoute}, []string{testRoute}},
	}
	for _, tc := range tests {
		c.request(tc.typeURL, "", "", tc.names, "")
		resp := c.next(tc.typeURL)
		if got := names(t, resp); !slices.Equal(got, tc.want) {
			t.Errorf("%s resources = %v, want %v", shortType(tc.typeURL), got, tc.want)
		}
		// No Push happened yet: the node's snapshot was made when it connected.
		if v := resp.GetVersionInfo(); !strings.HasPrefix(v, "0-") {
			t.Errorf("%s version %q, want the pre-push version 0-<hash>", shortType(tc.typeURL), v)
		}
		if resp.GetNonce() == "" {
			t.Errorf("%s response has no nonce", shortType(tc.typeURL))
		}
	}
	if n := s.gen.calls("reviews-v1.default"); n != 1 {
		t.Errorf("Generate called %d times for one connection, want 1", n)
	}

	ps := s.status("reviews-v1.default")
	if ps == nil || !ps.Connected || ps.ConnectedAt.IsZero() {
		t.Fatalf("status = %+v, want a connected proxy", ps)
	}
	wantMeta := map[string]string{"NAMESPACE": "default", "CLUSTER_ID": "Kubernetes"}
	if fmt.Sprint(ps.Metadata) != fmt.Sprint(wantMeta) {
		t.Errorf("metadata = %v, want the string fields %v", ps.Metadata, wantMeta)
	}
}

func TestSyncStatusStates(t *testing.T) {
	s := startServer(t)
	c := dial(t, s.addr, "a", nil)

	c.request(resourcev3.ClusterType, "", "", nil, "")
	cds := c.next(resourcev3.ClusterType)

	// Sent, not yet acked: STALE. Nothing asked for LDS/RDS/EDS yet: NOT SENT.
	st := s.typeStatus(t, "a", "CDS", func(ts *contract.TypeStatus) bool { return ts.SentNonce != "" })
	if st.State != contract.StateStale || st.SentVersion != cds.GetVersionInfo() || st.SentNonce != cds.GetNonce() || st.SentAt.IsZero() {
		t.Errorf("CDS before ACK = %+v, want STALE with the sent version and nonce", st)
	}
	for _, short := range []string{"LDS", "RDS", "EDS"} {
		if got := s.status("a").Types[short].State; got != contract.StateNotSent {
			t.Errorf("%s state = %s, want %s", short, got, contract.StateNotSent)
		}
	}

	c.ack(cds, nil)
	st = s.typeStatus(t, "a", "CDS", func(ts *contract.TypeStatus) bool { return ts.AckedNonce != "" })
	if st.State != contract.StateSynced || st.AckedVersion != cds.GetVersionInfo() || st.AckedNonce != cds.GetNonce() || st.AckedAt.IsZero() {
		t.Errorf("CDS after ACK = %+v, want SYNCED with the acked version", st)
	}
}

func TestNackRecordedLoggedAndNotResent(t *testing.T) {
	s := startServer(t)
	c := dial(t, s.addr, "a", nil)
	handshake(t, c)

	// A new listener version; the proxy rejects it.
	s.gen.set(func(g *fakeGen) { g.port["a"] = 9081 }) // EDS changes only
	s.Push(PushRequest{Version: "v2"})
	eds := c.next(resourcev3.EndpointType)
	const reason = "Proto constraint validation failed (ClusterLoadAssignmentValidationError.Endpoints[0]: bad)"
	c.nack(eds, "older", []string{testCluster}, reason)

	st := s.typeStatus(t, "a", "EDS", func(ts *contract.TypeStatus) bool { return ts.NackNonce != "" })
	if st.State != contract.StateError || st.NackReason != reason || st.NackedVersion != eds.GetVersionInfo() || st.NackNonce != eds.GetNonce() || st.NackedAt.IsZero() {
		t.Errorf("EDS after NACK = %+v, want ERROR with the rejected version and reason", st)
	}
	// The rejected response is not sent again until the configuration changes.
	c.quiet("after a NACK")

	// A second version rejected for the same reason is not logged again.
	s.gen.set(func(g *fakeGen) { g.port["a"] = 9082 })
	s.Push(PushRequest{Version: "v3"})
	eds2 := c.next(resourcev3.EndpointType)
	if eds2.GetVersionInfo() == eds.GetVersionInfo() {
		t.Fatalf("new content pushed with the rejected version %s", eds.GetVersionInfo())
	}
	c.nack(eds2, "older", []string{testCluster}, reason)
	s.typeStatus(t, "a", "EDS", func(ts *contract.TypeStatus) bool { return ts.NackNonce == eds2.GetNonce() })

	recs := records(t, s.logs, "NACK")
	if len(recs) != 1 {
		t.Fatalf("NACK logged %d times for one reason, want once: %v", len(recs), recs)
	}
	rec := recs[0]
	if rec["level"] != "WARN" || rec["proxy"] != "a" || rec["type"] != "EDS" ||
		rec["version"] != eds.GetVersionInfo() || rec["error"] != reason {
		t.Errorf("NACK log = %v, want WARN with proxy, type, version and reason", rec)
	}

	// Fixed configuration: a new version arrives, is acked, the proxy is SYNCED again.
	s.gen.set(func(g *fakeGen) { g.port["a"] = 9083 })
	s.Push(PushRequest{Version: "v4"})
	eds3 := c.next(resourcev3.EndpointType)
	if p := endpointPort(t, eds3); p != 9083 {
		t.Errorf("endpoint port = %d, want 9083", p)
	}
	c.ack(eds3, []string{testCluster})
	st = s.typeStatus(t, "a", "EDS", func(ts *contract.TypeStatus) bool { return ts.AckedNonce == eds3.GetNonce() })
	if st.State != contract.StateSynced || st.NackReason != reason {
		t.Errorf("EDS after fix = %+v, want SYNCED, last NACK reason kept", st)
	}
}

func TestPushSendsOnlyWhatChanged(t *testing.T) {
	s := startServer(t)
	a := dial(t, s.addr, "a", nil)
	b := dial(t, s.addr, "b", nil)
	va := handshake(t, a)
	handshake(t, b)

	// Same content, new configuration version: nobody gets a push.
	s.Push(PushRequest{Version: "v2"})
	a.quiet("push without content change")
	b.quiet("push without content change")

	// Only a's endpoints change: only a gets a push, only for EDS, with the new version.
	s.gen.set(func(g *fakeGen) { g.port["a"] = 9999 })
	s.Push(PushRequest{Version: "v3"})
	eds := a.next(resourcev3.EndpointType)
	if !strings.HasPrefix(eds.GetVersionInfo(), "v3-") {
		t.Errorf("EDS version %q, want v3-<hash>", eds.GetVersionInfo())
	}
	if p := endpointPort(t, eds); p != 9999 {
		t.Errorf("endpoint port = %d, want 9999", p)
	}
	a.ack(eds, []string{testCluster})
	a.quiet("types that did not change")
	b.quiet("a node whose content did not change")

	st := s.status("a")
	if got := st.Types["CDS"].SentVersion; got != va["CDS"] {
		t.Errorf("CDS version moved from %s to %s without a change", va["CDS"], got)
	}
}

func TestInconsistentSnapshotNotPublished(t *testing.T) {
	s := startServer(t)
	c := dial(t, s.addr, "a", nil)
	v := handshake(t, c)

	// The listener now references a route configuration the snapshot does not have.
	s.gen.set(func(g *fakeGen) { g.rdsName = "missing-route" })
	s.Push(PushRequest{Version: "v2"})
	c.quiet("an inconsistent snapshot")

	recs := records(t, s.logs, "inconsistent configuration")
	if len(recs) != 1 || recs[0]["proxy"] != "a" || !strings.Contains(fmt.Sprint(recs[0]["reason"]), `references route configuration "missing-route", which does not exist`) {
		t.Fatalf("inconsistency log = %v, want one record for proxy a naming missing-route", recs)
	}
	dump := configDumpOf(t, s, "a")
	if !strings.Contains(dump, v["LDS"]) || strings.Contains(dump, "missing-route") {
		t.Errorf("config_dump after a rejected snapshot does not show the last good listener (%s)", v["LDS"])
	}

	// Fixed again: the next Push publishes.
	s.gen.set(func(g *fakeGen) { g.rdsName = ""; g.port["a"] = 7000 })
	s.Push(PushRequest{Version: "v3"})
	c.next(resourcev3.EndpointType)
}

func TestGenerateErrorKeepsLastGood(t *testing.T) {
	s := startServer(t)
	c := dial(t, s.addr, "a", nil)
	handshake(t, c)

	s.gen.set(func(g *fakeGen) { g.err = errGen; g.port["a"] = 1 })
	s.Push(PushRequest{Version: "v2"})
	c.quiet("a failed generation")
	if recs := records(t, s.logs, "generating configuration failed"); len(recs) != 1 {
		t.Errorf("generation failure logged %d times, want once", len(recs))
	}
	if st := s.status("a").Types["EDS"]; st.State != contract.StateSynced {
		t.Errorf("EDS state = %s after a failed generation, want SYNCED (last good kept)", st.State)
	}
}

func TestNodeConnectingAfterPush(t *testing.T) {
	s := startServer(t)
	s.Push(PushRequest{Version: "v7"}) // no proxies yet
	c := dial(t, s.addr, "late", nil)
	c.request(resourcev3.ListenerType, "", "", nil, "")
	resp := c.next(resourcev3.ListenerType)
	if !strings.HasPrefix(resp.GetVersionInfo(), "v7-") {
		t.Errorf("LDS version %q, want v7-<hash>", resp.GetVersionInfo())
	}
	if got := names(t, resp); !slices.Equal(got, []string{testListener}) {
		t.Errorf("listeners = %v", got)
	}
}

func TestDisconnectedProxyForgotten(t *testing.T) {
	s := startServer(t)
	clk := (&clock{}).install(s.Server)
	c := dial(t, s.addr, "gone", nil)
	handshake(t, c)
	c.close()

	testutil.Eventually(t, 5*time.Second, "disconnect", func() bool { ps := s.status("gone"); return ps != nil && !ps.Connected })
	if st := s.status("gone").Types["LDS"]; st.State != contract.StateSynced {
		t.Errorf("LDS after disconnect = %s, want the last state (SYNCED) kept", st.State)
	}

	clk.advance(9 * time.Minute)
	s.Push(PushRequest{Version: "v2"})
	if s.status("gone") == nil {
		t.Fatal("proxy forgotten 9 minutes after disconnect, want 10")
	}
	clk.advance(2 * time.Minute)
	if s.status("gone") != nil {
		t.Error("proxy still reported 11 minutes after disconnect")
	}
	calls := s.gen.calls("gone")
	s.Push(PushRequest{Version: "v3"})
	if s.gen.calls("gone") != calls {
		t.Error("Push still generates for a forgotten proxy")
	}
	s.mu.Lock()
	kept := s.nodes["gone"] != nil
	s.mu.Unlock()
	if kept {
		t.Error("configuration of a forgotten proxy still kept")
	}
}

func TestReconnectStartsFresh(t *testing.T) {
	s := startServer(t)
	c := dial(t, s.addr, "a", nil)
	handshake(t, c)
	c.close()
	testutil.Eventually(t, 5*time.Second, "disconnect", func() bool { return !s.status("a").Connected })

	c2 := dial(t, s.addr, "a", nil)
	c2.request(resourcev3.ClusterType, "", "", nil, "")
	c2.next(resourcev3.ClusterType)
	st := s.typeStatus(t, "a", "CDS", func(ts *contract.TypeStatus) bool { return ts.State == contract.StateStale })
	if st.AckedNonce != "" {
		t.Errorf("CDS after reconnect = %+v, want the old connection's ACK forgotten", st)
	}
	if got := s.status("a").Types["LDS"].State; got != contract.StateNotSent {
		t.Errorf("LDS after reconnect = %s, want NOT SENT", got)
	}
}

func configDumpOf(t *testing.T, s *testServer, id string) string {
	t.Helper()
	srv := httptest.NewServer(s.DebugHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/debug/config_dump?proxyID=" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("config_dump status %d: %s", resp.StatusCode, b)
	}
	return string(b)
}

func TestDebugHandler(t *testing.T) {
	s := startServer(t)
	c := dial(t, s.addr, "reviews-v1.default", map[string]any{"NAMESPACE": "default"})
	v := handshake(t, c)
	s.typeStatus(t, "reviews-v1.default", "RDS", func(ts *contract.TypeStatus) bool { return ts.State == contract.StateSynced })

	srv := httptest.NewServer(s.DebugHandler())
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}

	t.Run("syncz", func(t *testing.T) {
		code, body := get("/debug/syncz")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		var got []contract.ProxyStatus
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("syncz is not JSON: %v\n%s", err, body)
		}
		if len(got) != 1 || got[0].ID != "reviews-v1.default" || !got[0].Connected || got[0].Metadata["NAMESPACE"] != "default" {
			t.Fatalf("syncz = %s", body)
		}
		for short, want := range v {
			ts := got[0].Types[short]
			if ts == nil || ts.State != contract.StateSynced || ts.AckedVersion != want {
				t.Errorf("syncz %s = %+v, want SYNCED at %s", short, ts, want)
			}
		}
	})

	t.Run("config_dump", func(t *testing.T) {
		code, body := get("/debug/config_dump?proxyID=reviews-v1.default")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		dump := &adminpb.ConfigDump{}
		if err := protojson.Unmarshal([]byte(body), dump); err != nil {
			t.Fatalf("config_dump is not a ConfigDump: %v", err)
		}
		var kinds []string
		for _, a := range dump.GetConfigs() {
			kinds = append(kinds, a.GetTypeUrl()[strings.LastIndex(a.GetTypeUrl(), ".")+1:])
		}
		want := []string{"ClustersConfigDump", "ListenersConfigDump", "RoutesConfigDump", "EndpointsConfigDump"}
		if !slices.Equal(kinds, want) {
			t.Errorf("config_dump sections = %v, want %v", kinds, want)
		}
		listeners := &adminpb.ListenersConfigDump{}
		if err := dump.GetConfigs()[1].UnmarshalTo(listeners); err != nil {
			t.Fatal(err)
		}
		dl := listeners.GetDynamicListeners()
		if len(dl) != 1 || dl[0].GetName() != testListener || dl[0].GetActiveState().GetVersionInfo() != v["LDS"] {
			t.Errorf("dynamic listeners = %v, want %s at %s", dl, testListener, v["LDS"])
		}
		for _, s := range []string{testCluster, "route_config_name", "127.0.0.1"} {
			if !strings.Contains(body, s) {
				t.Errorf("config_dump lacks %s", s)
			}
		}
	})

	errorCases := []struct {
		path string
		code int
	}{
		{"/debug/config_dump", http.StatusBadRequest},
		{"/debug/config_dump?proxyID=nobody", http.StatusNotFound},
	}
	for _, tc := range errorCases {
		t.Run(tc.path, func(t *testing.T) {
			if code, body := get(tc.path); code != tc.code {
				t.Errorf("status %d (%s), want %d", code, body, tc.code)
			}
		})
	}
}

func TestConcurrentPushesAndConnects(t *testing.T) {
	s := startServer(t)
	const proxies = 6
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 30 {
			s.gen.set(func(g *fakeGen) {
				for p := range proxies {
					g.port[fmt.Sprint("p", p)] = uint32(10000 + i)
				}
			})
			s.Push(PushRequest{Version: fmt.Sprint("v", i)})
		}
	}()
	clients := make([]*adsClient, proxies)
	for p := range proxies {
		clients[p] = dial(t, s.addr, fmt.Sprint("p", p), nil)
		clients[p].request(resourcev3.ClusterType, "", "", nil, "")
	}
	<-done
	// Every proxy converges on the last content, whatever it saw in between.
	for p, c := range clients {
		cds := c.next(resourcev3.ClusterType)
		c.request(resourcev3.EndpointType, "", "", []string{testCluster}, "")
		for i := 0; ; i++ {
			eds := c.next(resourcev3.EndpointType)
			c.ack(eds, []string{testCluster})
			if i == 0 {
				// As Envoy does once the cluster is warm (its endpoints arrived): until the
				// clusters are answered, the stream holds back further pushes.
				c.ack(cds, nil)
			}
			if endpointPort(t, eds) == 10029 {
				break
			}
		}
		st := s.typeStatus(t, fmt.Sprint("p", p), "EDS", func(ts *contract.TypeStatus) bool { return ts.State == contract.StateSynced })
		if !strings.HasPrefix(st.AckedVersion, "v") {
			t.Errorf("p%d acked EDS version %q", p, st.AckedVersion)
		}
	}
}

func TestPerTypeServiceServesListeners(t *testing.T) {
	s := startServer(t)
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := listenergrpc.NewListenerDiscoveryServiceClient(conn).StreamListeners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoverygrpc.DiscoveryRequest{Node: &corepb.Node{Id: "lds-only"}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, resp); !slices.Equal(got, []string{testListener}) {
		t.Errorf("LDS over the listener service = %v, want [%s]", got, testListener)
	}
	s.typeStatus(t, "lds-only", "LDS", func(ts *contract.TypeStatus) bool { return ts.SentNonce == resp.GetNonce() })
}

func TestRequestWithoutNodeIDRejected(t *testing.T) {
	s := startServer(t)
	c := dial(t, s.addr, "", nil)
	c.request(resourcev3.ClusterType, "", "", nil, "")
	select {
	case <-c.done: // the server ended the stream
	case resp := <-c.resps:
		t.Fatalf("got a %s response for a node without id", shortType(resp.GetTypeUrl()))
	case <-time.After(5 * time.Second):
		t.Fatal("stream without node id still open after 5s")
	}
	if got := s.SyncStatus(); len(got) != 0 {
		t.Errorf("SyncStatus = %+v, want no proxy", got)
	}
}
