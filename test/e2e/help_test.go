package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil/kubetest"
)

// TestHelpExamples runs every example of every `lucid <command> --help` as printed, with
// the built binary: the client commands against `lucid up examples/bookinfo-lite` (itself
// started from up's example), the servers (discovery, sidecar, gateway, demo-app) together
// as a mesh of their own, `install --apply` against a real API server. Examples live in one
// place, each command's Example: a command line in a command's long help fails the test.
func TestHelpExamples(t *testing.T) {
	if !begin(t, "builds lucid and runs every --help example against `lucid up examples/bookinfo-lite`") {
		return
	}
	bin := buildLucid(t)
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "examples"), os.DirFS(filepath.Join(repoRoot(t), "examples"))); err != nil {
		t.Fatal(err)
	}
	_ = os.RemoveAll(filepath.Join(dir, "examples", "bookinfo-lite", "certs"))
	tr := &tour{t: t, sh: newShell(dir, filepath.Dir(bin)), dir: dir}

	examples := helpExamples(t, tr.sh, "lucid")
	want := tr.exampleChecks()
	byPhase := map[string][]helpExample{}
	for _, ex := range examples {
		c, ok := want[ex.key]
		if !ok {
			t.Logf("%s: %q has no expected result in TestHelpExamples: it must at least exit 0 against the mesh", ex.command, ex.key)
			c = exampleCheck{phase: "mesh", do: run(0)}
		}
		ex.check = c
		byPhase[c.phase] = append(byPhase[c.phase], ex)
	}
	seen := map[string]bool{}
	for _, ex := range examples {
		seen[ex.key] = true
	}
	for key := range want {
		if !seen[key] {
			t.Errorf("TestHelpExamples expects the example %q, which no --help shows any more", key)
		}
	}

	// 1. The mesh, from up's example; then every client example against it.
	if len(byPhase["up"]) != 1 {
		t.Fatalf("want one example that starts the mesh (lucid up), got %d", len(byPhase["up"]))
	}
	runExample(tr, byPhase["up"][0])
	for _, ex := range byPhase["mesh"] {
		runExample(tr, ex)
	}
	// 2. The servers' examples together, as a mesh run by hand, the control plane first.
	tr.ctrlC()
	pieces := byPhase["piece"]
	slices.SortStableFunc(pieces, func(a, b helpExample) int {
		return boolRank(!strings.Contains(a.key, "lucid discovery")) - boolRank(!strings.Contains(b.key, "lucid discovery"))
	})
	for _, ex := range pieces {
		runExample(tr, ex)
	}
	tr.check(tr.sh.run(t, "curl -s http://127.0.0.1:8080/productpage", time.Minute), 0, `"service": "productpage"`)
	tr.stopPieces()
	// 3. Kubernetes: a real API server, found through $KUBECONFIG.
	t.Run("kubernetes", func(t *testing.T) {
		if len(byPhase["kube"]) == 0 {
			return
		}
		c := kubetest.New(t, kubetest.Options{}) // skips without the binaries (make kube-bins), fails under CI
		ktr := &tour{t: t, sh: &shell{dir: dir, env: append(slices.Clone(tr.sh.env), "KUBECONFIG="+c.Kubeconfig)}, dir: dir}
		for _, ex := range byPhase["kube"] {
			runExample(ktr, ex)
		}
	})
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// helpExample is one command line of a command's Examples.
type helpExample struct {
	command string // "lucid proxy-config log"
	text    string // as printed
	key     string // without comments
	check   exampleCheck
}

// exampleCheck is where an example runs and what it must show.
type exampleCheck struct {
	phase string // up (starts the mesh), mesh (runs against it), piece (a server of the hand-run mesh), kube, capture and proxyless (not run here)
	do    func(*tour, string)
}

func runExample(tr *tour, ex helpExample) {
	tr.t.Helper()
	tr.mark = len(tr.meshOutput())
	ex.check.do(tr, ex.text)
	if tr.t.Failed() {
		tr.t.Fatalf("the example of `%s --help` failed:\n%s", ex.command, ex.text)
	}
}

// helpExamples walks the command tree from command's --help and returns every example.
func helpExamples(t *testing.T, sh *shell, command string) []helpExample {
	t.Helper()
	r := sh.run(t, command+" --help", time.Minute)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	var out []helpExample
	section := "long"
	var cur, keys []string
	flush := func() {
		if len(cur) > 0 {
			out = append(out, helpExample{command: command, text: strings.Join(cur, "\n"), key: strings.Join(keys, "\n")})
		}
		cur, keys = nil, nil
	}
	var subcommands []string
	for _, line := range strings.Split(r.out, "\n") {
		if line != "" && !strings.HasPrefix(line, " ") {
			flush()
			section = strings.TrimSuffix(line, ":")
			continue
		}
		trimmed := strings.TrimSpace(line)
		switch section {
		case "long":
			if strings.HasPrefix(trimmed, "lucid ") {
				t.Errorf("`%s --help` shows %q in its description: examples belong in the command's Example, where this test runs them", command, trimmed)
			}
		case "Examples":
			key := strings.TrimSpace(shComment.ReplaceAllString(line, ""))
			if len(cur) == 0 && (key == "" || strings.HasPrefix(key, "#")) {
				continue
			}
			cur = append(cur, trimmed)
			keys = append(keys, key)
			if !strings.HasSuffix(key, `\`) {
				flush()
			}
		case "Available Commands":
			if f := strings.Fields(line); len(f) > 0 && f[0] != "help" && f[0] != "completion" {
				subcommands = append(subcommands, f[0])
			}
		}
	}
	flush()
	for _, sub := range subcommands {
		out = append(out, helpExamples(t, sh, command+" "+sub)...)
	}
	return out
}

// live checks a command that streams until interrupted: it is started, traffic is sent,
// the output must show want, then it gets Ctrl-C.
func live(traffic string, want ...string) exampleCheck {
	return exampleCheck{phase: "mesh", do: func(tr *tour, cmd string) {
		p := tr.sh.start(tr.t, cmd)
		tr.sh.run(tr.t, "sleep 1; "+traffic, time.Minute)
		for _, w := range want {
			p.waitFor(tr.t, w, 30*time.Second)
		}
		if _, err := p.interrupt(tr.t, 10*time.Second); err != nil {
			tr.t.Errorf("%s: after Ctrl-C: %v", cmd, err)
		}
	}}
}

// exampleChecks is the table: every example, where it runs and what it shows.
func (tr *tour) exampleChecks() map[string]exampleCheck {
	productpage := []string{`"service": "productpage"`, `"service": "reviews"`}
	mesh := func(code int, want ...string) exampleCheck {
		return exampleCheck{phase: "mesh", do: run(code, want...)}
	}
	file := func(name, want string) exampleCheck {
		return exampleCheck{phase: "mesh", do: runThen(0, nil, func(tr *tour, _ result) {
			if b, err := os.ReadFile(filepath.Join(tr.dir, name)); err != nil || !strings.Contains(string(b), want) {
				tr.t.Errorf("%s: %v, want it to contain %q", name, err, want)
			}
		})}
	}
	return map[string]exampleCheck{
		// Not run here (upCaptureSkip): test/upcapture runs them in a namespace of its own.
		"sudo lucid up --capture examples/bookinfo-lite":            {phase: "capture"},
		"sudo lucid exec curl -- curl -s http://productpage:9080/":  {phase: "capture"},
		"sudo lucid exec curl -- curl -s http://reviews:9080/":      {phase: "capture"},
		"sudo lucid exec curl -- curl -s -i http://reviews:9080/v3": {phase: "capture"},
		"sudo lucid exec productpage -- sh":                         {phase: "capture"},
		// Not run here: they need examples/grpc-proxyless's mesh and a gRPC server binary;
		// test/proxyless runs lucid grpc-agent against that mesh with grpc-go servers.
		"lucid grpc-agent --config-dir examples/grpc-proxyless --workload echo-v1 --ip 127.0.171.21 --dir /tmp/echo-v1": {phase: "proxyless"},
		"GRPC_XDS_BOOTSTRAP=/tmp/echo-v1/bootstrap.json ./echo-server":                                                  {phase: "proxyless"},
		"lucid up examples/bookinfo-lite": {phase: "up", do: func(tr *tour, cmd string) {
			tr.mesh = tr.sh.start(tr.t, cmd)
			tr.mesh.waitFor(tr.t, "press Ctrl-C to stop", time.Minute)
		}},
		"curl http://127.0.0.1:8080/productpage":                   mesh(0, productpage...),
		"curl -x http://127.0.10.9:15001 http://productpage:9080/": mesh(0, productpage...),

		"lucid version":         mesh(0, "version: dev\n", "go:      go1."),
		"lucid version -o json": mesh(0, `"version": "dev"`, `"go": "go1.`),

		"lucid proxy-status":                                                        mesh(0, "curl.default", "istio-ingressgateway.istio-system", "SYNCED"),
		"lucid proxy-status curl":                                                   mesh(0, "Clusters Match", "Routes Match"),
		"lucid proxy-config listeners curl":                                         mesh(0, "ADDRESSES", "9080"),
		"lucid proxy-config listeners curl --port 9080 -o json":                     mesh(0, `"name": "0.0.0.0_9080"`),
		"lucid proxy-config routes curl":                                            mesh(0, "reviews.default"),
		"lucid proxy-config routes istio-ingressgateway.istio-system":               mesh(0, "http.8080", "/productpage"),
		"lucid proxy-config clusters curl --fqdn reviews.default.svc.cluster.local": mesh(0, "v3"),
		"lucid proxy-config endpoints curl":                                         mesh(0, "Clusters with no endpoint to send to"),
		"lucid proxy-config endpoints curl --cluster 'outbound|9080|v3|reviews.default.svc.cluster.local'": mesh(0, `subset "v3" of reviews.default.svc.cluster.local selects 0 of 3 endpoints`),
		"lucid proxy-config bootstrap productpage":                                                         mesh(0, "Envoy Version: 0.0.0-dev/", "/RELEASE/go1."),
		"lucid proxy-config secret productpage":                                                            mesh(0, "RESOURCE NAME", "Cert Chain", "ROOTCA", "ACTIVE"),
		"lucid proxy-config log productpage":                                                               mesh(0, "active loggers:\n", "  router: info\n"),
		"lucid proxy-config log productpage --level router:debug --for 5m":                                 mesh(0, "  router: debug\n", "pending reverts:\n  router: info at ", "These levels revert by themselves in 5m0s"),

		"lucid why curl http://reviews:9080/v3":                                                          mesh(0, "outcome       503 UH"),
		"lucid why productpage reviews:9080/ -H 'end-user: jason'":                                       mesh(0, `2. "v3" (prefix "/", header "end-user"): matched`, "outcome       503 UH"),
		"lucid why istio-ingressgateway.istio-system http://127.0.0.1:8080/productpage":                  mesh(0, "outcome       forwarded to 127.0.10.1:9080"),
		"lucid why istio-ingressgateway.istio-system https://bookinfo.example.com:8443/productpage":      mesh(0, "tls           terminated (SIMPLE", "outcome       forwarded to 127.0.10.1:9080"),
		"lucid why istio-ingressgateway.istio-system https://127.0.0.1:8443/ --sni bookinfo.example.com": mesh(0, "SNI bookinfo.example.com", "outcome       404 NR"),
		"lucid why ratings --inbound ratings:9080/ --principal cluster.local/ns/default/sa/reviews":      mesh(0, "virtualInbound (inbound, port 9080)", "outcome       forwarded to 127.0.20.5:9080"),

		// A live view runs until Ctrl-C: started, shown a request, then interrupted.
		"lucid tap productpage":                                   live("curl -s http://127.0.0.1:8080/productpage", "GET", "/productpage"),
		"lucid tap productpage --to reviews --status 5xx -o wide": live("curl -s -x http://127.0.10.9:15001 http://productpage:9080/", ""),
		"lucid tap istio-ingressgateway -n istio-system --path /productpage -o json --count 1": {phase: "mesh", do: func(tr *tour, cmd string) {
			p := tr.sh.start(tr.t, cmd)
			tr.sh.run(tr.t, "sleep 1; curl -s http://127.0.0.1:8080/productpage", time.Minute)
			p.waitFor(tr.t, `"path":"/productpage"`, 30*time.Second)
		}},
		"lucid top productpage": live("curl -s http://127.0.0.1:8080/productpage", "/productpage"),
		"lucid top istio-ingressgateway -n istio-system --duration 3s": {phase: "mesh", do: func(tr *tour, cmd string) {
			p := tr.sh.start(tr.t, cmd)
			tr.sh.run(tr.t, "sleep 1; curl -s http://127.0.0.1:8080/productpage", time.Minute)
			p.waitFor(tr.t, "/productpage", 30*time.Second)
		}},
		"lucid dashboard": mesh(0, "http://127.0.0.1:15014/dashboard/"),
		"lucid dashboard --open": {phase: "mesh", do: func(tr *tour, cmd string) {
			// Where no desktop browser exists it says so (exit 1); the URL is printed first either way.
			if r := tr.sh.run(tr.t, cmd, time.Minute); !strings.Contains(r.out, "http://127.0.0.1:15014/dashboard/") {
				tr.t.Errorf("%s: no URL:\n%s", cmd, r)
			}
		}},

		"lucid sidecar wait --ip 127.0.10.1 --timeout 30s":                                       mesh(0),
		"lucid kube-inject -f examples/kubernetes/productpage.yaml":                              mesh(0, "name: istio-proxy", "ISTIO_KUBE_APP_PROBERS"),
		"lucid kube-inject -f examples/kubernetes/productpage.yaml -o productpage-injected.yaml": file("productpage-injected.yaml", "name: istio-proxy"),
		"lucid install > lucid-install.yaml":                                                     file("lucid-install.yaml", "kind: MutatingWebhookConfiguration"),
		"lucid install --apply":                                                                  {phase: "kube", do: run(0, "customresourcedefinitions.apiextensions.k8s.io/virtualservices.networking.istio.io created", "istio-system deployments.apps/lucid-discovery created")},

		"lucid discovery --config-dir examples/bookinfo-lite": {phase: "piece", do: func(tr *tour, cmd string) {
			tr.piece(cmd).waitFor(tr.t, "first configuration published", time.Minute)
		}},
		"lucid sidecar --ip 127.0.10.1 --workload productpage": {phase: "piece", do: func(tr *tour, cmd string) {
			tr.piece(cmd)
			tr.ready("http://127.0.10.1:15020/healthz/ready")
		}},
		"lucid gateway --ip 127.0.0.1 --name istio-ingressgateway --namespace istio-system": {phase: "piece", do: func(tr *tour, cmd string) {
			tr.piece(cmd)
			tr.ready("http://127.0.0.1:15021/healthz/ready")
		}},
		"lucid demo-app --listen 127.0.20.1:9080 --name productpage --call http://reviews:9080/reviews \\\n--proxy http://127.0.10.1:15001": {phase: "piece", do: func(tr *tour, cmd string) {
			tr.piece(cmd).waitFor(tr.t, "demo-app serving", time.Minute)
		}},
	}
}
