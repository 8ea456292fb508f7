package translate

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	accesslogpb "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	fileal "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	celpb "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// listenerHCM is one HTTP connection manager and its listener.
type listenerHCM struct {
	l *listenerpb.Listener
	h *hcmpb.HttpConnectionManager
}

// hcmsOf are the HTTP connection managers of res's listeners, each validated.
func hcmsOf(t *testing.T, res *Resources) []listenerHCM {
	t.Helper()
	var out []listenerHCM
	eachFilterOf(t, res, hcmTypeURL, func() *hcmpb.HttpConnectionManager { return &hcmpb.HttpConnectionManager{} }, func(l *listenerpb.Listener, h *hcmpb.HttpConnectionManager) {
		out = append(out, listenerHCM{l, h})
	})
	return out
}

// eachFilterOf calls f with every network filter of res's listeners (their filter chains
// and default chain) whose typed_config is typeURL, decoded into newT() and validated.
func eachFilterOf[T interface {
	proto.Message
	ValidateAll() error
}](t *testing.T, res *Resources, typeURL string, newT func() T, f func(*listenerpb.Listener, T)) {
	t.Helper()
	for _, m := range res.Listeners {
		l := m.(*listenerpb.Listener)
		for _, fc := range append(l.GetFilterChains(), l.GetDefaultFilterChain()) {
			for _, nf := range fc.GetFilters() {
				if nf.GetTypedConfig().GetTypeUrl() != typeURL {
					continue
				}
				x := newT()
				if err := nf.GetTypedConfig().UnmarshalTo(x); err != nil {
					t.Fatal(err)
				}
				if err := x.ValidateAll(); err != nil {
					t.Errorf("listener %s: %v", l.GetName(), err)
				}
				f(l, x)
			}
		}
	}
}

// accessLogsOf is "path filter" per access_log entry of every HTTP connection manager,
// by inbound (true) or outbound side.
func accessLogsOf(t *testing.T, res *Resources) map[bool][]string {
	t.Helper()
	out := map[bool][]string{}
	for _, lh := range hcmsOf(t, res) {
		inbound := lh.l.GetName() == "virtualInbound"
		out[inbound] = append(out[inbound], accessLogEntries(t, lh.h.GetAccessLog()))
	}
	return out
}

// tcpAccessLogsOf is accessLogsOf for every tcp_proxy.
func tcpAccessLogsOf(t *testing.T, res *Resources) map[bool][]string {
	t.Helper()
	out := map[bool][]string{}
	eachFilterOf(t, res, tcpProxyTypeURL, func() *tcppb.TcpProxy { return &tcppb.TcpProxy{} }, func(l *listenerpb.Listener, tp *tcppb.TcpProxy) {
		inbound := l.GetName() == "virtualInbound"
		out[inbound] = append(out[inbound], accessLogEntries(t, tp.GetAccessLog()))
	})
	return out
}

// accessLogEntries is "path filter" per entry, joined with "|".
func accessLogEntries(t *testing.T, logs []*accesslogpb.AccessLog) string {
	t.Helper()
	var entries []string
	for _, al := range logs {
		var fl fileal.FileAccessLog
		if al.GetName() != FileAccessLogger || al.GetTypedConfig().UnmarshalTo(&fl) != nil {
			t.Fatalf("access log %v", al)
		}
		e := fl.GetPath()
		if ext := al.GetFilter().GetExtensionFilter(); ext != nil {
			var x celpb.ExpressionFilter
			if ext.GetName() != CELAccessFilter || ext.GetTypedConfig().UnmarshalTo(&x) != nil {
				t.Fatalf("filter %v", ext)
			}
			e += " " + x.GetExpression()
		}
		entries = append(entries, e)
	}
	return strings.Join(entries, "|")
}

const accessLogTelemetry = `
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  accessLogging:
  - providers: [{name: envoy}]
    filter: {expression: "response.code >= 500"}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: reviews, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  accessLogging:
  - match: {mode: SERVER}
    disabled: true
  - match: {mode: CLIENT}
    providers: [{name: audit}]
`

// A Telemetry resource's accessLogging becomes file access logs with Istio's CEL filter on
// the proxies it applies to, by side; a workload that turns it off gets one log to
// /dev/null; with no Telemetry the listeners carry none (the proxy's own log applies).
func TestAccessLoggingFromTelemetry(t *testing.T) {
	mesh := meshConfig(t, `extensionProviders: [{name: audit, envoyFileAccessLog: {path: /var/log/audit.log}}]`)
	const reviews = "sidecar~127.0.10.2~reviews-v1.default~default.svc.cluster.local"

	m, diags := model.Build(loadObjects(t, "_base.yaml", baseObjects(t)), mesh)
	if len(diags) != 0 {
		t.Fatalf("warnings %v", diags)
	}
	res := Generate(m, proxy(t, productpage))
	for _, of := range []func(*testing.T, *Resources) map[bool][]string{accessLogsOf, tcpAccessLogsOf} {
		for side, logs := range of(t, res) {
			for _, l := range logs {
				if l != "" {
					t.Fatalf("no Telemetry: inbound=%v has access logs %q", side, l)
				}
			}
		}
	}

	m, diags = model.Build(loadObjects(t, "_base.yaml", append(baseObjects(t), accessLogTelemetry...)), mesh)
	if len(diags) != 0 {
		t.Fatalf("warnings %v", diags)
	}
	var cache Cache
	for _, tc := range []struct {
		id                string
		inbound, outbound string
	}{
		{productpage, "/dev/stdout response.code >= 500", "/dev/stdout response.code >= 500"},
		// The root namespace's filter stays on the envoy provider, which the workload's
		// server entry turns off; its client entry names another provider.
		{reviews, "/dev/null", "/var/log/audit.log"},
	} {
		want := Generate(m, proxy(t, tc.id))
		got := cache.Generate(m, proxy(t, tc.id))
		for i := range want.Listeners {
			if !proto.Equal(got.Listeners[i], want.Listeners[i]) {
				t.Fatalf("%s: cached listener %s differs from Generate's", tc.id, resourceName(want.Listeners[i]))
			}
		}
		// Opaque TCP connections (tcp_proxy chains, the passthrough ones included) get
		// the same access logs as the side's HTTP requests.
		for kind, logs := range map[string]map[bool][]string{"HTTP connection manager": accessLogsOf(t, want), "tcp_proxy": tcpAccessLogsOf(t, want)} {
			if len(logs[true]) == 0 || len(logs[false]) == 0 {
				t.Fatalf("%s: %s %v", tc.id, kind, logs)
			}
			for side, w := range map[bool]string{true: tc.inbound, false: tc.outbound} {
				for _, l := range logs[side] {
					if l != w {
						t.Errorf("%s %s inbound=%v: access logs %q; want %q", tc.id, kind, side, l, w)
					}
				}
			}
		}
	}

	// An undefined provider is a warning that names the field (lucid analyze shows it).
	bad := strings.Replace(accessLogTelemetry, "[{name: audit}]", "[{name: elastic}]", 1)
	_, diags = model.Build(loadObjects(t, "_base.yaml", append(baseObjects(t), bad...)), mesh)
	if len(diags) != 1 || !strings.Contains(diags[0].String(), `spec.accessLogging[1].providers[0].name: provider "elastic" is not defined in extensionProviders`) {
		t.Fatalf("warnings %v", diags)
	}
}

// A provider's own logFormat is written as istiod writes it: text as an inline
// text_format_source ending in a newline, labels as a json_format (no labels: Istio's
// JSON keys); a format the proxies cannot run is a warning naming the field, and that
// provider logs in the proxy's encoding.
func TestAccessLogFormatFromMeshConfig(t *testing.T) {
	mesh := meshConfig(t, `extensionProviders:
- {name: text, envoyFileAccessLog: {path: /var/log/text.log, logFormat: {text: "%REQ(:METHOD)% %RESPONSE_CODE%"}}}
- {name: json, envoyFileAccessLog: {path: /var/log/json.log, logFormat: {labels: {code: "%RESPONSE_CODE%"}}}}
- {name: istio-json, envoyFileAccessLog: {path: /var/log/istio.log, logFormat: {labels: {}}}}
- {name: bad, envoyFileAccessLog: {path: /var/log/bad.log, logFormat: {text: "%DYNAMIC_METADATA(istio)%"}}}
`)
	tel := []byte(`
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  accessLogging: [{providers: [{name: text}, {name: json}, {name: istio-json}, {name: bad}]}]
`)
	m, diags := model.Build(loadObjects(t, "_base.yaml", append(baseObjects(t), tel...)), mesh)
	if len(diags) != 1 || !strings.Contains(diags[0].String(), "extensionProviders[3].envoyFileAccessLog.logFormat.text: 1: %DYNAMIC_METADATA(istio)%: operator DYNAMIC_METADATA is not one Lucid formats; the proxy's own encoding is used") {
		t.Fatalf("warnings %v", diags)
	}
	hcms := hcmsOf(t, Generate(m, proxy(t, productpage)))
	if len(hcms) == 0 {
		t.Fatal("no HTTP connection manager")
	}
	got := map[string]string{}
	for _, al := range hcms[0].h.GetAccessLog() {
		var f fileal.FileAccessLog
		if err := al.GetTypedConfig().UnmarshalTo(&f); err != nil {
			t.Fatal(err)
		}
		switch lf := f.GetLogFormat(); {
		case lf.GetTextFormatSource() != nil:
			got[f.GetPath()] = "text " + lf.GetTextFormatSource().GetInlineString()
		case lf.GetJsonFormat() != nil:
			got[f.GetPath()] = fmt.Sprintf("json %d %s", len(lf.GetJsonFormat().GetFields()), lf.GetJsonFormat().GetFields()["code"].GetStringValue()+lf.GetJsonFormat().GetFields()["response_code"].GetStringValue())
		default:
			got[f.GetPath()] = "none"
		}
	}
	want := map[string]string{"/var/log/text.log": "text %REQ(:METHOD)% %RESPONSE_CODE%\n", "/var/log/json.log": "json 1 %RESPONSE_CODE%",
		"/var/log/istio.log": "json 24 %RESPONSE_CODE%", "/var/log/bad.log": "none"}
	if !maps.Equal(got, want) {
		t.Errorf("formats %q\nwant %q", got, want)
	}
}
