package node

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/lucid-mesh/lucid/internal/kube/inject"
	"github.com/lucid-mesh/lucid/internal/kube/install"
	"github.com/lucid-mesh/lucid/internal/local/demoapp"
	"github.com/lucid-mesh/lucid/internal/testutil/kubenode"
)

// probedApp is a Deployment of the demo app with liveness and readiness probes on its
// health path, in an injection-labelled namespace: the webhook injects the sidecar and
// istio-init (default interception: `lucid iptables` applies Istio's rules in the pod).
func probedApp(ns, name string, extraArgs ...string) string {
	args := []string{"--listen", "0.0.0.0:8080", "--name", name, "--health-path", "/healthz"}
	args = append(args, extraArgs...)
	argsJSON, _ := json.Marshal(args)
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata:
      labels: {app: %[2]s}
      # The proxy reaches its agent (cluster "agent", behind :15021) at the pod IP, which
      # the capture rules send to 15006 (uid 1337 to a local address): until the sidecar
      # serves 15006 or dials the agent on 127.0.0.1 as Istio does, keep 15020 out of capture.
      annotations: {traffic.sidecar.istio.io/excludeOutboundPorts: "15020"}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: %[3]s
        args: %[4]s
        ports: [{containerPort: 8080, name: http}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, initialDelaySeconds: 2, periodSeconds: 2, timeoutSeconds: 1}
        livenessProbe: {httpGet: {path: /healthz, port: 8080}, initialDelaySeconds: 2, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 2}
`, ns, name, kubenode.DemoImage, argsJSON)
}

// TestProbesThroughTheAgent is seed 004 on a real kubelet: the injected pod becomes Ready
// with its probes rewritten to the agent (:15020/app-health/web/{livez,readyz}), the
// kubelet's probe requests reach the app through the agent (the app counts them, and it
// sees at least as many as the kubelet counted successful), istio-init applied its rules,
// and the pod's Events show nothing failing.
func TestProbesThroughTheAgent(t *testing.T) {
	m := lucidMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ns = "probes"
	m.namespace(ctx, t, ns, true)
	start := time.Now()
	m.apply(ctx, t, probedApp(ns, "web"))
	if err := m.waitRollout(ctx, ns, "web"); err != nil {
		t.Fatal(err)
	}
	t.Logf("injected pod Ready %s after apply", time.Since(start).Round(10*time.Millisecond))
	p := m.pod(ctx, t, ns, "app=web")

	// What kubectl get pod -o yaml shows: the probes point at the agent.
	var web *corev1.Container
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == "web" {
			web = &p.Spec.Containers[i]
		}
	}
	if web == nil || web.LivenessProbe.HTTPGet == nil || web.ReadinessProbe.HTTPGet == nil {
		t.Fatalf("no web container with HTTP probes:\n%s", m.describe(ctx, p))
	}
	for _, c := range []struct {
		probe *corev1.Probe
		path  string
	}{{web.LivenessProbe, "/app-health/web/livez"}, {web.ReadinessProbe, "/app-health/web/readyz"}} {
		if got := c.probe.HTTPGet; got.Path != c.path || got.Port.IntValue() != 15020 {
			t.Errorf("probe rewritten to :%s%s, want :15020%s", got.Port.String(), got.Path, c.path)
		}
	}
	if len(p.Spec.InitContainers) == 0 || p.Spec.InitContainers[0].Name != inject.InitContainerName {
		t.Errorf("no %s init container", inject.InitContainerName)
	}
	for _, s := range p.Status.InitContainerStatuses {
		if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			t.Errorf("init container %s: %s", s.Name, stateString(s.State))
		}
	}
	initLog, err := m.logs(ctx, ns, p.Name, inject.InitContainerName, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("$ kubectl logs %s -c %s\n%s", p.Name, inject.InitContainerName, lastLines(initLog, 12))

	// Let the kubelet probe a few times, then compare its count with the app's.
	time.Sleep(7 * time.Second)
	kubeletOK, err := m.kubeletProbes(ctx, ns, p.Name, "web")
	if err != nil {
		t.Fatal(err)
	}
	appLog, err := m.logs(ctx, ns, p.Name, "web", false)
	if err != nil {
		t.Fatal(err)
	}
	seen := probeLines(appLog)
	t.Logf("kubelet: %d successful probes of container web (prober_probe_total); the app logged %d kubelet probes, e.g.:\n%s",
		kubeletOK, len(seen), strings.Join(seen[:min(3, len(seen))], "\n"))
	if kubeletOK < 4 {
		t.Errorf("the kubelet counted %d successful probes, want at least 4", kubeletOK)
	}
	if len(seen) < kubeletOK {
		t.Errorf("the app saw %d kubelet probes, fewer than the %d the kubelet counted successful: probes did not reach the app", len(seen), kubeletOK)
	}
	for _, l := range seen {
		if !strings.Contains(l, "user_agent=kube-probe/1.36") || !strings.Contains(l, "remote=127.0.0.6:") {
			t.Errorf("a probe that did not come from the kubelet through the agent (127.0.0.6): %s", l)
			break
		}
	}

	p, err = m.getPod(ctx, ns, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	desc := m.describe(ctx, p)
	t.Logf("$ kubectl describe pod %s\n%s", p.Name, desc)
	for _, s := range p.Status.ContainerStatuses {
		if !s.Ready || s.RestartCount != 0 {
			t.Errorf("container %s: ready=%v restarts=%d", s.Name, s.Ready, s.RestartCount)
		}
	}
	evs, err := m.events(ctx, ns, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Type == corev1.EventTypeNormal {
			continue
		}
		// The injected startup probe of istio-proxy (Istio's: every second from the
		// container's start) can find the agent not yet listening, or listening with the
		// proxy not yet configured (503), on a loaded machine, as in Istio; it is the app's
		// probes, through the agent, that must never fail. The kubelet's message names the
		// URL only for a failed connection, so the event's container tells them apart.
		if e.Reason == "Unhealthy" && strings.HasPrefix(e.Message, "Startup probe failed: ") && e.InvolvedObject.FieldPath == "spec.containers{istio-proxy}" {
			t.Logf("event %s %s (the proxy's startup probe before the agent listened): %s", e.Type, e.Reason, e.Message)
			continue
		}
		t.Errorf("event %s %s: %s", e.Type, e.Reason, e.Message)
	}
}

var probeLine = regexp.MustCompile(`(?m)^.*msg="kubelet probe".*$`)

func probeLines(log string) []string { return probeLine.FindAllString(log, -1) }

// kubeletProbes is the kubelet's own count of successful probes of a container
// (prober_probe_total on its /metrics/probes, through the API server's node proxy).
func (m *mesh) kubeletProbes(ctx context.Context, ns, pod, container string) (int, error) {
	u := fmt.Sprintf("%s/api/v1/nodes/%s/proxy/metrics/probes", m.node.Config.Host, kubenode.NodeName)
	body, err := m.get(ctx, u)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "prober_probe_total{") || !strings.Contains(line, `result="successful"`) ||
			!strings.Contains(line, `namespace="`+ns+`"`) || !strings.Contains(line, `pod="`+pod+`"`) || !strings.Contains(line, `container="`+container+`"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("kubelet metrics line %q: %w", line, err)
		}
		total += int(v)
	}
	return total, nil
}

// TestLivenessFailureExplained is seed 000 on a real kubelet: an app whose health check
// starts failing is restarted by the kubelet, and `kubectl describe pod` shows Lucid's
// cause in an Unhealthy Event next to the kubelet's own: the app's 500 (out of memory),
// connection refused (it stopped listening), or a timeout (it hangs).
func TestLivenessFailureExplained(t *testing.T) {
	m := lucidMesh(t)
	const ns = "probes"
	ctx0, cancel0 := context.WithTimeout(context.Background(), time.Minute)
	m.namespace(ctx0, t, ns, true)
	cancel0()
	cases := []struct {
		name, mode string
		want       []string // in Lucid's Event message
	}{
		{"oom", "oom", []string{"Liveness probe failed: ", "the app answered 500 Internal Server Error", "reason status", "container web"}},
		{"refuse", "refuse", []string{"Liveness probe failed: ", "connection refused", "reason refused", "container web"}},
		{"hang", "hang", []string{"Liveness probe failed: ", "within the probe's timeout (1s)", "reason timeout", "container web"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			name := "fail-" + tc.name
			m.apply(ctx, t, probedApp(ns, name, "--fail-mode", tc.mode, "--fail-after", "8s"))
			if err := m.waitRollout(ctx, ns, name); err != nil {
				t.Fatal(err)
			}
			p := m.pod(ctx, t, ns, "app="+name)
			// The kubelet restarts the container once the liveness probe failed twice.
			err := poll(ctx, func() (bool, string) {
				cur, err := m.getPod(ctx, ns, p.Name)
				if err != nil {
					return false, err.Error()
				}
				for _, s := range cur.Status.ContainerStatuses {
					if s.Name == "web" {
						return s.RestartCount >= 1, fmt.Sprintf("restarts %d", s.RestartCount)
					}
				}
				return false, "no status"
			})
			if err != nil {
				t.Fatalf("not restarted: %v\n%s", err, m.describeApp(ctx, ns, "app="+name))
			}
			var lucid, killing *corev1.Event
			ectx, ecancel := context.WithTimeout(ctx, time.Minute)
			defer ecancel()
			err = poll(ectx, func() (bool, string) {
				evs, err := m.events(ectx, ns, p.Name)
				if err != nil {
					return false, err.Error()
				}
				lucid, killing = nil, nil
				for i, e := range evs {
					switch {
					case e.Reason == "Unhealthy" && e.Source.Component == "lucid-sidecar" && strings.HasPrefix(e.Message, "Liveness"):
						lucid = &evs[i]
					case e.Reason == "Killing" && strings.Contains(e.Message, "failed liveness probe"):
						killing = &evs[i]
					}
				}
				return lucid != nil && killing != nil, fmt.Sprintf("lucid event %v, kubelet Killing event %v", lucid != nil, killing != nil)
			})
			t.Logf("$ kubectl describe pod %s\n%s", p.Name, m.describe(ctx, p))
			if err != nil {
				t.Fatalf("events: %v\n%s", err, m.describeApp(ctx, install.DefaultNamespace, "app="+install.Name))
			}
			if lucid.Type != corev1.EventTypeWarning {
				t.Errorf("Lucid's event type %s, want Warning", lucid.Type)
			}
			for _, w := range tc.want {
				if !strings.Contains(lucid.Message, w) {
					t.Errorf("Lucid's Unhealthy event %q lacks %q", lucid.Message, w)
				}
			}
			if tc.mode == "oom" && !strings.Contains(lucid.Message, demoapp.OOMBody) {
				t.Errorf("Lucid's Unhealthy event %q does not quote what the app said (%q)", lucid.Message, demoapp.OOMBody)
			}
			if prev, err := m.logs(ctx, ns, p.Name, "web", true); err == nil {
				t.Logf("$ kubectl logs %s -c web --previous (last lines)\n%s", p.Name, lastLines(prev, 4))
			}
			if sc, err := m.logs(ctx, ns, p.Name, inject.ProxyContainerName, false); err == nil {
				var warn []string
				for _, l := range strings.Split(sc, "\n") {
					if strings.Contains(l, "livez") && (strings.Contains(l, "WARN") || strings.Contains(l, "warn")) {
						warn = append(warn, l)
					}
				}
				t.Logf("$ kubectl logs %s -c istio-proxy | grep livez (warnings)\n%s", p.Name, lastLines(strings.Join(warn, "\n"), 3))
			}
		})
	}
}
