package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

func TestParseProxyConfig(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     downstream
		err      string
	}{
		{name: "none"},
		{name: "istio's keys, YAML", in: `runtimeValues:
  "envoy.reloadable_features.max_request_headers_size_kb": "96"
  "envoy.reloadable_features.max_request_headers_count": "200"
proxyMetadata:
  ISTIO_META_HTTP10: "1"
  ISTIO_META_IDLE_TIMEOUT: 30m
concurrency: 2
`, want: downstream{limits: http1.Limits{MaxRequestHeadersKB: 96, MaxHeadersCount: 200, AcceptHTTP10: true}, idle: 30 * time.Minute}},
		{name: "JSON", in: `{"proxyMetadata":{"ISTIO_META_HTTP10":"true"}}`, want: downstream{limits: http1.Limits{AcceptHTTP10: true}}},
		{name: "not a number", in: `{"runtimeValues":{"envoy.reloadable_features.max_request_headers_count":"many"}}`,
			err: `runtimeValues["envoy.reloadable_features.max_request_headers_count"] = "many": want a positive number`},
		{name: "beyond Envoy's most", in: `{"runtimeValues":{"envoy.reloadable_features.max_request_headers_size_kb":"9000"}}`, err: "Envoy's most is 8192"},
		{name: "bad duration", in: `{"proxyMetadata":{"ISTIO_META_IDLE_TIMEOUT":"soon"}}`, err: "want a duration"},
		{name: "not YAML", in: `{`, err: "proxy config:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseProxyConfig(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v %v, want %+v", got, err, c.want)
			}
		})
	}
}
