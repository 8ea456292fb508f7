package config

import "testing"

// TestProxyConfigAnnotation: a WorkloadEntry's proxy.istio.io/config annotation that is
// not a ProxyConfig is a warning naming the annotation (the control plane ignores it); a
// good one is accepted silently.
func TestProxyConfigAnnotation(t *testing.T) {
	const head = "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: gw\n  annotations:\n    proxy.istio.io/config: '"
	const tail = "'\nspec: {address: 127.0.0.1}\n"
	for _, c := range []struct {
		annotation string
		want       []string
	}{
		{annotation: `{"gatewayTopology": {"numTrustedProxies": 1}}`},
		{annotation: `gatewayTopology: {numTrustedProxies: 2}`},
		{annotation: `{"gatewayTopology": {"numTrustedProxies": "one"}}`, want: []string{
			`t.yaml:2: WorkloadEntry default/gw: metadata.annotations[proxy.istio.io/config]: not a ProxyConfig (`}},
		{annotation: `{"gatewayTopolgy": {}}`, want: []string{
			`t.yaml:2: WorkloadEntry default/gw: metadata.annotations[proxy.istio.io/config]: not a ProxyConfig (`}},
	} {
		objs, diags := Parse("t.yaml", []byte(head+c.annotation+tail))
		if len(objs) != 1 {
			t.Errorf("%s: not accepted: %v", c.annotation, diags)
		}
		if len(diags) != len(c.want) {
			t.Errorf("%s: diagnostics %v, want %q", c.annotation, diags, c.want)
			continue
		}
		for i, d := range diags {
			if got := d.String(); d.Level != Warning || len(got) < len(c.want[i]) || got[:len(c.want[i])] != c.want[i] {
				t.Errorf("%s: %q, want it to start with %q", c.annotation, got, c.want[i])
			}
		}
	}
}
