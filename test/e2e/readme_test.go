package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestReadme follows README.md as a newcomer would, on a fresh copy of the tree: every
// command in its fenced sh blocks, literally, in order (make build, lucid up, the tour, the
// pieces run by hand, ...), each checked against what the README says it shows. A command
// the test does not know, or a known command the README lost, fails the test: the README
// and this table change together.
func TestReadme(t *testing.T) {
	if !begin(t, "builds lucid and follows README.md against `lucid up examples/bookinfo-lite`") {
		return
	}
	dir := t.TempDir()
	copyTree(t, dir)
	gitInit(t, dir)
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cmds := readmeCommands(string(readme))
	tr := &tour{t: t, sh: newShell(dir, filepath.Join(dir, "bin")), dir: dir}
	steps := tr.steps()
	seen := map[string]bool{}
	for _, c := range cmds {
		st, ok := steps[c.key]
		if !ok {
			t.Fatalf("README.md:%d (%s): %q has no expected result in TestReadme; add one", c.line, c.section, c.key)
		}
		seen[c.key] = true
		if st.skip != "" {
			t.Logf("README.md:%d not run: %s", c.line, st.skip)
			continue
		}
		if st.before != nil {
			st.before(tr)
		}
		st.do(tr, c.text)
		if t.Failed() {
			t.Fatalf("README.md:%d (%s) failed; lucid up said:\n%s", c.line, c.section, tr.meshOutput())
		}
	}
	for key := range steps {
		if !seen[key] {
			t.Errorf("TestReadme expects %q, which README.md no longer has", key)
		}
	}
	tr.stopPieces()
}

// proxylessSkip: the tour's mesh is bookinfo-lite; the gRPC commands need
// examples/grpc-proxyless's mesh and a gRPC application.
const proxylessSkip = "needs examples/grpc-proxyless's mesh and a gRPC app: test/proxyless runs lucid grpc-agent and grpc-go clients and servers against it"

// readmeCommand is one command of a fenced sh block.
type readmeCommand struct {
	text    string // as written (continuation lines and loops joined with newlines)
	key     string // without comments, for the table of expected results
	line    int
	section string
}

var shComment = regexp.MustCompile(`\s+#\s.*$`)

// readmeCommands extracts the commands of every ```sh block: a line is a command, with the
// lines that continue it (a trailing backslash) or close its loop (for/while … done).
func readmeCommands(md string) []readmeCommand {
	var (
		out                []readmeCommand
		section, sub       string
		inBlock, sh        bool
		cur, keyCur        []string
		startLine, loopLvl int
	)
	flush := func() {
		if len(cur) > 0 {
			title := section
			if sub != "" {
				title += " / " + sub
			}
			out = append(out, readmeCommand{text: strings.Join(cur, "\n"), key: strings.Join(keyCur, "\n"), line: startLine, section: title})
		}
		cur, keyCur = nil, nil
	}
	for i, line := range strings.Split(md, "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			if inBlock {
				flush()
				inBlock = false
				continue
			}
			inBlock, sh = true, strings.TrimPrefix(line, "```") == "sh"
			continue
		case !inBlock && strings.HasPrefix(line, "## "):
			section, sub = strings.TrimPrefix(line, "## "), ""
		case !inBlock && strings.HasPrefix(line, "### "):
			sub = strings.TrimPrefix(line, "### ")
		}
		key := strings.TrimSpace(shComment.ReplaceAllString(line, ""))
		if !inBlock || !sh || (len(cur) == 0 && (key == "" || strings.HasPrefix(key, "#"))) {
			continue // outside sh blocks; blank and comment-only lines between commands
		}
		if len(cur) == 0 {
			startLine = i + 1
		}
		trimmed := strings.TrimSpace(line)
		cur = append(cur, line)
		keyCur = append(keyCur, key)
		switch {
		case strings.HasPrefix(trimmed, "for ") || strings.HasPrefix(trimmed, "while "):
			loopLvl++
		case strings.HasPrefix(trimmed, "done"):
			loopLvl--
		}
		if loopLvl == 0 && !strings.HasSuffix(key, `\`) {
			flush()
		}
	}
	return out
}

// tour is the state the README's commands build up: the tree, the running mesh, the pieces.
type tour struct {
	t      *testing.T
	sh     *shell
	dir    string
	mesh   *proc
	mark   int     // where in the mesh's output the current command's effects start
	pieces []*proc // the pieces started by hand
}

// step is what the test does with one README command.
type step struct {
	skip   string      // why the command is not run ("" runs it)
	before func(*tour) // state the command needs (stop the mesh before the pieces)
	do     func(*tour, string)
}

func (tr *tour) meshOutput() string {
	if tr.mesh == nil {
		return "(not running)"
	}
	return tr.mesh.out.String()
}

// run runs a command and checks its exit status and output.
func run(code int, want ...string) func(*tour, string) {
	return func(tr *tour, cmd string) { tr.check(tr.sh.run(tr.t, cmd, time.Minute), code, want...) }
}

// runThen runs a command like run, then checks more.
func runThen(code int, want []string, then func(*tour, result)) func(*tour, string) {
	return func(tr *tour, cmd string) {
		tr.mark = len(tr.meshOutput())
		r := tr.sh.run(tr.t, cmd, time.Minute)
		tr.check(r, code, want...)
		then(tr, r)
	}
}

func (tr *tour) check(r result, code int, want ...string) {
	tr.t.Helper()
	if r.code != code {
		tr.t.Errorf("exit status %d, want %d:\n%s", r.code, code, r)
		return
	}
	for _, w := range want {
		if !strings.Contains(r.out, w) {
			tr.t.Errorf("the output lacks %q:\n%s", w, r)
		}
	}
}

// meshSays waits until the mesh's output since the current command contains each of want,
// in order.
func (tr *tour) meshSays(timeout time.Duration, want ...string) {
	tr.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rest, missing := tr.meshOutput()[tr.mark:], ""
		for _, w := range want {
			i := strings.Index(rest, w)
			if i < 0 {
				missing = w
				break
			}
			rest = rest[i+len(w):]
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			tr.t.Errorf("lucid up did not print %q (in this order: %q) within %v", missing, want, timeout)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// meshMatches waits until a line of the mesh's output since the current command matches re.
func (tr *tour) meshMatches(timeout time.Duration, re *regexp.Regexp) {
	tr.t.Helper()
	deadline := time.Now().Add(timeout)
	for !re.MatchString(tr.meshOutput()[tr.mark:]) {
		if time.Now().After(deadline) {
			tr.t.Errorf("lucid up printed no line matching %s within %v", re, timeout)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// versions counts the "version" lines the README's counting loop prints.
func versions(out string) map[string]int {
	n := map[string]int{}
	for _, m := range regexp.MustCompile(`(\d+) "version": "(v\d)"`).FindAllStringSubmatch(out, -1) {
		c, _ := strconv.Atoi(m[1])
		n[m[2]] = c
	}
	return n
}

const countLoop = `for i in $(seq 20); do
curl -s -x http://127.0.10.9:15001 http://reviews:9080/ | grep -m1 -o '"version": "v[0-9]"'
done | sort | uniq -c`

// steps is the table: every README command, and what it must show.
func (tr *tour) steps() map[string]step {
	productpage := []string{`"service": "productpage"`, `"service": "reviews"`, `"service": "ratings"`}
	sidecarProxy := "http://127.0.10.9:15001"
	return map[string]step{
		"make build": {do: func(tr *tour, cmd string) {
			tr.check(tr.sh.run(tr.t, cmd, 10*time.Minute), 0)
			if _, err := os.Stat(filepath.Join(tr.dir, "bin", "lucid")); err != nil {
				tr.t.Errorf("make build made no bin/lucid: %v", err)
			}
		}},
		"./bin/lucid up examples/bookinfo-lite": {do: func(tr *tour, cmd string) {
			tr.mesh = tr.sh.start(tr.t, cmd)
			tr.mesh.waitFor(tr.t, "press Ctrl-C to stop", time.Minute)
			// A normal start: no proxy warns (they start once discovery is ready, and
			// "not ready yet" is no warning while they start).
			for _, l := range strings.Split(tr.meshOutput(), "\n") {
				if (strings.Contains(l, " sidecar ") || strings.HasPrefix(l, "istio-ingressgateway")) &&
					(strings.Contains(l, "level=warning") || strings.Contains(l, "level=error")) {
					tr.t.Errorf("a proxy warned during a normal start: %s", l)
				}
			}
		}},
		"make test":      {skip: "the whole test suite, this test included"},
		"make kube-bins": {skip: "builds the Kubernetes test binaries (scripts/kube-bins.sh); the Kubernetes tests use them"},
		"make test-kube": {skip: "the Kubernetes tests (test/kube, test/kubewebhook, ...)"},

		// The way the mesh is meant to be seen: lucid up --capture.
		"sudo ./bin/lucid up --capture examples/bookinfo-lite":           {skip: upCaptureSkip},
		"sudo ./bin/lucid exec curl -- curl -s http://productpage:9080/": {skip: upCaptureSkip},
		"sudo ./bin/lucid exec curl -- curl -si http://reviews:9080/v3":  {skip: upCaptureSkip},
		"sudo ./bin/lucid why curl http://reviews:9080/v3":               {skip: upCaptureSkip},
		"sudo ./bin/lucid proxy-config listeners curl":                   {skip: upCaptureSkip},

		// A tour.
		"curl http://127.0.0.1:8080/productpage":                                               {do: run(0, productpage...)},
		"curl --cacert examples/bookinfo-lite/certs/ca.crt https://127.0.0.1:8443/productpage": {do: run(0, productpage...)},
		"curl -i http://127.0.0.1:8080/nothing":                                                {do: run(0, "HTTP/1.1 404 Not Found", "X-Lucid-Error: NR: no route matches GET /nothing")},
		"curl -x http://127.0.10.9:15001 http://productpage:9080/":                             {do: run(0, productpage...)},
		countLoop: {do: func(tr *tour, cmd string) {
			r := tr.sh.run(tr.t, cmd, time.Minute)
			n := versions(r.out)
			if r.code != 0 || n["v1"]+n["v2"] != 20 || n["v1"] < 8 || n["v3"] != 0 {
				tr.t.Errorf("the 80/20 split counted %v, want 20 answers, mostly v1, no v3:\n%s", n, r)
			}
		}},
		"curl -i -x http://127.0.10.9:15001 http://reviews:9080/v3": {do: run(0, "HTTP/1.1 503 Service Unavailable", "no healthy upstream",
			`X-Lucid-Error: UH: subset "v3" of reviews.default.svc.cluster.local selects 0 of 3 endpoints (version=v3: 0 match; labels present: version=v1, version=v2, (none))`)},
		"curl -s -x http://127.0.10.9:15001 -H 'end-user: jason' http://productpage:9080/": {do: run(0, `"service": "productpage"`, `"status": 503`,
			`"x_lucid_error": "UH: subset \"v3\" of reviews.default.svc.cluster.local selects 0 of 3 endpoints`, `"body": "no healthy upstream"`)},
		"sed -i 's/weight: 80/weight: 50/; s/weight: 20/weight: 50/' examples/bookinfo-lite/reviews.yaml": {do: runThen(0, nil, func(tr *tour, _ result) {
			// "run the counting loop above again": the split is 50/50 within a second.
			deadline := time.Now().Add(10 * time.Second)
			for {
				r := tr.sh.run(tr.t, countLoop, time.Minute)
				if n := versions(r.out); n["v2"] >= 5 && n["v1"] >= 3 {
					break
				} else if time.Now().After(deadline) {
					tr.t.Errorf("after the edit, the split is still %v, want about 50/50:\n%s", n, r)
					break
				}
			}
		})},
		"git checkout examples/bookinfo-lite/reviews.yaml": {do: runThen(0, nil, func(tr *tour, _ result) {
			if r := tr.sh.run(tr.t, "git diff --exit-code examples/bookinfo-lite/reviews.yaml", time.Minute); r.code != 0 {
				tr.t.Errorf("reviews.yaml differs after git checkout:\n%s", r)
			}
		})},
		"sed -i 's/name: v2/name: v1/' examples/bookinfo-lite/reviews.yaml": {do: runThen(0, nil, func(tr *tour, _ result) {
			// The rejection, then what keeps serving, in this order; never "accepted".
			tr.meshSays(10*time.Second, `level=ERROR msg="config rejected" component=config problem="reviews.yaml:80: DestinationRule default/reviews: spec.subsets[1].name: duplicate subset \"v1\""`,
				`level=WARN msg="still serving the last good version" component=config object="DestinationRule default/reviews" file=reviews.yaml from_version=`)
			if strings.Contains(tr.meshOutput()[tr.mark:], "accepted with a warning") {
				tr.t.Errorf("after a rejected change, discovery said something was accepted:\n%s", tr.meshOutput()[tr.mark:])
			}
			tr.check(tr.sh.run(tr.t, "curl -s -x "+sidecarProxy+" http://reviews:9080/", time.Minute), 0, `"service": "reviews"`)
		})},

		// Looking inside a sidecar.
		"curl -s http://127.255.10.1:15000/config_dump":                                  {do: run(0, "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "outbound|9080|v1|reviews.default.svc.cluster.local")},
		"curl -s 'http://127.255.10.1:15000/config_dump?include_eds'":                    {do: run(0, "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump")},
		"curl -s http://127.255.10.1:15000/clusters | grep reviews":                      {do: run(0, "outbound|9080|v1|reviews.default.svc.cluster.local::127.0.10.2:9080::health_flags::healthy")},
		"curl -s http://127.255.10.1:15000/stats/prometheus | grep istio_requests_total": {do: run(0, "istio_requests_total{")},
		"curl -s -X POST 'http://127.255.10.1:15000/logging?level=debug&for=1m'":         {do: run(0, "active loggers:\n", "  router: debug\n", "pending reverts:\n  admin: info at ")},
		"curl -s http://127.255.10.1:15000/server_info":                                  {do: run(0, `"state": "LIVE"`, `/dev/Clean/RELEASE/go`)},
		"curl -s http://127.0.0.1:15014/":                                                {do: run(0, `href="/debug/syncz"`, `href="/ready"`)},

		// Diagnostics.
		`./bin/lucid analyze -f examples/bookinfo-lite; echo "exit status $?"`: {do: run(0, "Error [IST0173]", "examples/bookinfo-lite/reviews.yaml:84", "exit status 79")},
		"./bin/lucid proxy-status":                                                        {do: run(0, "curl.default", "productpage.default", "istio-ingressgateway.istio-system", "SYNCED")},
		"curl -s http://127.0.0.1:15014/metrics | grep pilot_xds_pushes":                  {do: run(0, "pilot_xds_pushes{")},
		"./bin/lucid proxy-status curl":                                                   {do: run(0, "Clusters Match", "Listeners Match", "Routes Match", "Endpoints Match")},
		"./bin/lucid proxy-config routes curl":                                            {do: run(0, "NAME", "VIRTUAL SERVICE", "reviews.default")},
		"./bin/lucid proxy-config clusters curl --fqdn reviews.default.svc.cluster.local": {do: run(0, "reviews.default.svc.cluster.local", "v3", "reviews.default")},
		"./bin/lucid proxy-config endpoints curl":                                         {do: run(0, "Clusters with no endpoint to send to", "outbound|9080|v3|reviews.default.svc.cluster.local")},
		"./bin/lucid why curl http://reviews:9080/v3":                                     {do: run(0, "outcome       503 UH", `x-lucid-error UH: subset "v3"`)},
		"./bin/lucid why istio-ingressgateway.istio-system http://127.0.0.1:8080/nothing": {do: run(0, "outcome       404 NR", `path "/nothing" is not "/productpage"`)},
		"./bin/lucid proxy-config log productpage --level router:debug --for 5m":          {do: run(0, "  router: debug\n", "pending reverts:\n", "These levels revert by themselves in 5m0s")},
		"curl -s -x http://127.0.10.9:15001 http://productpage:9080/ > /dev/null": {do: runThen(0, nil, func(tr *tour, _ result) {
			// --level router:debug: productpage's sidecar shows each request's route decision.
			tr.meshMatches(10*time.Second, regexp.MustCompile(`productpage sidecar +\| .* level=debug msg="cluster 'outbound\|9080\|v[12]\|reviews\.default\.svc\.cluster\.local' match for URL '/reviews'" component=router direction=outbound method=GET authority=reviews:9080 route=split`))
		})},
		"./bin/lucid version": {do: run(0, "version: dev\ncommit:  ", "go:      go1.")},

		// Using Istio's tools.
		"curl -s 'http://127.255.10.1:15000/config_dump?include_eds' > productpage.json": {do: func(tr *tour, cmd string) {
			tr.check(tr.sh.run(tr.t, cmd, time.Minute), 0)
			b, err := os.ReadFile(filepath.Join(tr.dir, "productpage.json"))
			if err != nil || !strings.Contains(string(b), "type.googleapis.com/envoy.admin.v3.SecretsConfigDump") ||
				!strings.Contains(string(b), "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump") {
				tr.t.Errorf("%s: productpage.json lacks the sections istioctl reads (%v):\n%.2000s", cmd, err, b)
			}
		}},
		"istioctl proxy-config all --file productpage.json": {skip: "needs istioctl: test/istioctl runs istioctl's own config-dump parsing and table writers on Lucid's proxies"},
		"curl -s 'http://127.255.10.1:15000/config_dump?resource=dynamic_active_clusters&mask=cluster.name'": {do: run(0,
			"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster", "outbound|9080|v1|reviews.default.svc.cluster.local")},
		"istioctl analyze --use-kube=false examples/bookinfo-lite/*.yaml":                                                  {skip: "needs istioctl: test/istioanalyze runs Istio's own analyzers on the same inputs as lucid analyze"},
		"./bin/lucid grpc-agent --workload echo-client --ip 127.0.171.30 --dir /tmp/echo-client":                           {skip: proxylessSkip},
		"GRPC_XDS_BOOTSTRAP=/tmp/echo-client/bootstrap.json ./your-grpc-client xds:///echo.default.svc.cluster.local:9090": {skip: proxylessSkip},

		// Seeing it.
		"./bin/lucid dashboard --open": {do: func(tr *tour, cmd string) {
			// Where no desktop browser exists it says so (exit 1); the URL is printed first either way.
			if r := tr.sh.run(tr.t, cmd, time.Minute); !strings.Contains(r.out, "http://127.0.0.1:15014/dashboard/") {
				tr.t.Errorf("%s: no URL:\n%s", cmd, r)
			}
		}},
		"./bin/lucid tap curl":        {do: live("curl -s -x http://127.0.10.9:15001 http://reviews:9080/v3", "reviews:9080/v3", "503", "UH").do},
		"./bin/lucid top productpage": {do: live("curl -s http://127.0.0.1:8080/productpage", "/productpage").do},

		// Running the pieces yourself: Ctrl-C the mesh first (the README says to).
		"./bin/lucid discovery --config-dir examples/bookinfo-lite": {before: (*tour).ctrlC, do: func(tr *tour, cmd string) {
			p := tr.piece(cmd)
			p.waitFor(tr.t, "first configuration published", time.Minute)
		}},
		"./bin/lucid sidecar --ip 127.0.10.1 --workload productpage": {do: func(tr *tour, cmd string) {
			tr.piece(cmd)
			tr.ready("http://127.0.10.1:15020/healthz/ready")
		}},
		"./bin/lucid gateway --ip 127.0.0.1 --workload istio-ingressgateway --namespace istio-system": {do: func(tr *tour, cmd string) {
			tr.piece(cmd)
			tr.ready("http://127.0.0.1:15021/healthz/ready")
		}},
		"./bin/lucid demo-app --listen 127.0.20.1:9080 --name productpage --call http://reviews:9080/reviews \\\n--proxy http://127.0.10.1:15001": {do: func(tr *tour, cmd string) {
			tr.piece(cmd).waitFor(tr.t, "demo-app serving", time.Minute)
			// "curl http://127.0.0.1:8080/productpage then reaches productpage [...]; its call to
			// reviews fails with 503 (no reviews is running), and the answer says so."
			tr.check(tr.sh.run(tr.t, "curl -s http://127.0.0.1:8080/productpage", time.Minute), 0, `"service": "productpage"`, `"status": 503`)
		}},

		// On Kubernetes: these need a cluster.
		"apt-get install -y containerd runc containernetworking-plugins iptables":   {skip: "installs Debian packages as root (.ci/run does it for CI)"},
		"make kube-bins && make test-node":                                          {skip: "the real-node tests (test/node), run by make test"},
		"lucid install --apply":                                                     {skip: "needs a Kubernetes cluster: TestInstallApply (internal/cli) applies the same to a real API server"},
		"lucid discovery --kubernetes --webhook-addr=:15017":                        {skip: "needs a Kubernetes cluster: test/kube and test/kubewebhook run it against a real API server"},
		"lucid discovery --kubernetes --kubeconfig ~/.kube/config --config-dir DIR": {skip: "needs a Kubernetes cluster and a DIR: test/kube runs the Kubernetes source against a real API server"},

		// Also in the binary (the pieces still run: sidecar wait finds productpage's sidecar).
		"./bin/lucid kube-inject -f examples/kubernetes/productpage.yaml": {do: run(0, "name: istio-proxy", "name: istio-init", "ISTIO_KUBE_APP_PROBERS", "/app-health/productpage/livez")},
		"./bin/lucid install > lucid-install.yaml": {do: runThen(0, nil, func(tr *tour, _ result) {
			if b, err := os.ReadFile(filepath.Join(tr.dir, "lucid-install.yaml")); err != nil || !strings.Contains(string(b), "kind: MutatingWebhookConfiguration") {
				tr.t.Errorf("lucid-install.yaml: %v, want the manifests", err)
			}
		})},
		"./bin/lucid iptables -p 15001 -z 15006 --dry-run": {do: run(0, "-N ISTIO_REDIRECT", "--to-ports 15001")},
		"./bin/lucid sidecar wait --ip 127.0.10.1":         {do: run(0)},
	}
}

// ctrlC stops `lucid up` as the README says: at once with nothing in flight.
func (tr *tour) ctrlC() {
	t := tr.t
	if tr.mesh == nil {
		return
	}
	took, err := tr.mesh.interrupt(t, 30*time.Second)
	out := tr.meshOutput()
	if err != nil {
		t.Errorf("lucid up after Ctrl-C: %v, want exit status 0", err)
	}
	m := regexp.MustCompile(`up +\| stopped in (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("lucid up did not say it stopped:\n%s", out)
	}
	stopped, _ := time.ParseDuration(m[1])
	t.Logf("Ctrl-C: lucid up stopped in %s (the process exited %s after the signal)", stopped, took.Round(time.Millisecond))
	// Nothing is in flight: nobody drains for its full 5 s (issue: 5–7 s before), and up
	// has nothing to wait for.
	if stopped >= 5*time.Second || regexp.MustCompile(`up +\| waiting for`).MatchString(out) {
		t.Errorf("Ctrl-C with nothing in flight took %s:\n%s", stopped, out)
	}
	for _, want := range []string{"no active downstream connection left: exiting before the drain duration", "no active inbound connection left"} {
		if !strings.Contains(out, want) {
			t.Errorf("lucid up's output lacks %q", want)
		}
	}
	tr.mesh = nil
}

// piece starts one of the pieces run by hand.
func (tr *tour) piece(cmd string) *proc {
	p := tr.sh.start(tr.t, cmd)
	tr.pieces = append(tr.pieces, p)
	return p
}

// ready waits for a readiness URL to answer 200.
func (tr *tour) ready(url string) {
	tr.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if r := tr.sh.run(tr.t, "curl -sf "+url, 10*time.Second); r.code == 0 {
			return
		} else if time.Now().After(deadline) {
			tr.t.Fatalf("%s not ready: %s", url, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stopPieces presses Ctrl-C in each piece's terminal, last started first.
func (tr *tour) stopPieces() {
	for i := len(tr.pieces) - 1; i >= 0; i-- {
		p := tr.pieces[i]
		if _, err := p.interrupt(tr.t, 30*time.Second); err != nil {
			tr.t.Errorf("%s after Ctrl-C: %v\n%s", p.cmd.Args[2], err, p.out.String())
		}
	}
	if tr.t.Failed() {
		for _, p := range tr.pieces {
			fmt.Fprintf(os.Stderr, "--- %s\n%s", p.cmd.Args[2], p.out.String())
		}
	}
}

// TestDocsStandAlone: the documentation refers only to what the repository holds: every
// relative link resolves, and no text points at documents that are not in it (a scenario
// list, issue numbers, reference sections); docs/scenarios.md is the in-repo list.
func TestDocsStandAlone(t *testing.T) {
	root := repoRoot(t)
	var docs []string
	for _, pattern := range []string{"*.md", "docs/*.md", "examples/*/README.md", "bench/*.md", "bench/*/*.md", "test/*/README.md"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, m...)
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	outside := regexp.MustCompile(`SCENARIOS\.md|\b[Ii]ssue \d+|reference §`)
	for _, doc := range docs {
		rel, _ := filepath.Rel(root, doc)
		if rel == filepath.Join("docs", "errors.md") {
			continue // the error catalogue has its own owner and test
		}
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := outside.FindString(line); m != "" {
				t.Errorf("%s:%d refers to %q, which is not in the repository", rel, i+1, m)
			}
			for _, l := range link.FindAllStringSubmatch(line, -1) {
				target := strings.SplitN(l[1], "#", 2)[0]
				if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				if _, err := os.Stat(filepath.Join(filepath.Dir(doc), target)); err != nil {
					t.Errorf("%s:%d links to %s, which does not exist", rel, i+1, l[1])
				}
			}
		}
	}
}

// upCaptureSkip: the README's and --help's `lucid up --capture` commands change the network
// of the namespace they run in; test/upcapture runs them in one of its own.
const upCaptureSkip = "needs root and creates network namespaces: test/upcapture runs lucid up --capture and lucid exec in a private network namespace"
