package agent

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/logging"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// TestRouteDebug: `--level router:debug` shows each request's route decision in Envoy's
// words; at the default level nothing is written.
func TestRouteDebug(t *testing.T) {
	var out bytes.Buffer
	logs := logging.NewRegistry(&out, logging.Info, false)
	debug := routeDebug(logs.Logger("router"))
	ok := &streaminfo.Info{Direction: "outbound", Method: "GET", Authority: "reviews:9080", Path: "/reviews",
		RouteName: "reviews", UpstreamCluster: "outbound|9080|v1|reviews.default.svc.cluster.local",
		UpstreamHost: "127.0.10.2:9080", Attempts: 1, ResponseCode: 200, ResponseCodeDetails: "via_upstream", RequestID: "r1"}
	debug(ok)
	if out.Len() != 0 {
		t.Fatalf("router at info wrote:\n%s", out.String())
	}
	if err := logs.Set("router", logging.Debug); err != nil {
		t.Fatal(err)
	}
	debug(ok)
	debug(&streaminfo.Info{Method: "GET", Authority: "nope:9080", Path: "/x", ResponseCode: 404,
		Flags: streaminfo.NoRouteFound, ResponseCodeDetails: "route_not_found", LucidError: "NR: no virtual host"})
	got := out.String()
	for _, want := range []string{
		`level=debug msg="cluster 'outbound|9080|v1|reviews.default.svc.cluster.local' match for URL '/reviews'" component=router direction=outbound method=GET authority=reviews:9080 route=reviews upstream_host=127.0.10.2:9080 attempts=1 status=200 flags=- details=via_upstream request_id=r1`,
		`msg="no route match for URL '/x'"`, `status=404 flags=NR details=route_not_found`, `error="NR: no virtual host"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("router debug output lacks\n  %s\ngot:\n%s", want, got)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	if _, err := (Options{Workload: "w"}).withDefaults(); err == nil || !strings.Contains(err.Error(), "--ip is required") {
		t.Errorf("no IP: %v", err)
	}
	if _, err := (Options{IP: netip.MustParseAddr("127.0.141.10")}).withDefaults(); err == nil || !strings.Contains(err.Error(), "--workload is required") {
		t.Errorf("no workload: %v", err)
	}
	o, err := Options{IP: netip.MustParseAddr("127.0.141.10"), Workload: "w"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Namespace != "default" || o.Discovery != "127.0.0.1:15010" || o.AdminPort != 15000 || o.StatusPort != 15020 ||
		o.HealthPort != 15021 || o.PrometheusPort != 0 || o.DrainDuration != 5*time.Second || o.MinimumDrainDuration != 5*time.Second ||
		o.LogLevel != "info" || o.AccessLogEncoding != "TEXT" || o.LogOutput == nil || o.Version != "dev" || o.AppAddress != o.IP {
		t.Errorf("defaults: %+v", o)
	}
}

// TestQuietWhileStarting: the xDS client's reconnect warnings are debug lines during the
// first seconds of a start, until the control plane has answered; after that, warnings.
func TestQuietWhileStarting(t *testing.T) {
	var out bytes.Buffer
	logs := logging.NewRegistry(&out, logging.Info, false)
	heard := false
	log := quietWhileStarting(logs.Logger("config"), time.Now(), func() bool { return heard })
	log.Warn("xds stream closed, reconnecting")
	if out.Len() != 0 {
		t.Fatalf("a reconnect while starting warned:\n%s", out.String())
	}
	heard = true
	log.Warn("xds update rejected")
	if !strings.Contains(out.String(), "level=warning") {
		t.Fatalf("a warning after the control plane answered was not written:\n%s", out.String())
	}
	out.Reset()
	heard = false
	late := quietWhileStarting(logs.Logger("config"), time.Now().Add(-startGrace), func() bool { return heard })
	late.Warn("xds stream closed, reconnecting")
	if !strings.Contains(out.String(), "level=warning") {
		t.Fatalf("a reconnect after the start grace was not a warning:\n%s", out.String())
	}
}
