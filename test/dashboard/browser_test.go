// Package dashboard tests the control plane's web dashboard in a real browser (headless
// Chromium driven with chromedp) against examples/bookinfo-lite running in this process
// with traffic: the topology's edges and their rates, the reviews subset v3 failure shown
// red with its cause, the workload page's live requests, keyboard navigation, a narrow
// window, and the page after a control-plane restart. Screenshots are saved as artifacts
// ($LUCID_ARTIFACTS, default a temporary directory; the log names it).
package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// chromium finds Debian's chromium, or skips (fails under CI, where it must be installed).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH: install it (apt-get install chromium) to run the dashboard's browser tests"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser starts headless Chromium with a fresh profile, at 1280×800.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // running as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LUCID_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "lucid-dashboard-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// eval runs JavaScript in the page with a bound on the call.
func eval[T any](ctx context.Context, js string) (T, error) {
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(c, chromedp.Evaluate[T](js))
}

// do runs browser actions with a bound.
func do(ctx context.Context, t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls a JavaScript condition until it is true or d passes; what describes it
// on failure, with the page's edges and status.
func waitFor(ctx context.Context, t *testing.T, d time.Duration, what, js string) {
	t.Helper()
	deadline := time.Now().Add(d)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := eval[bool](ctx, js)
		if lastErr = err; err == nil && ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	state, _ := eval[string](ctx, `document.getElementById("live").textContent + "\n" + [...document.querySelectorAll("#edges tbody tr")].map(r => r.innerText).join("\n")`)
	t.Fatalf("after %s: %s (last error %v); the page shows:\n%s", d, what, lastErr, state)
}

// edgeJS is true when the topology draws from → to with a rate > 0 (and the health, if given).
func edgeJS(from, to, health string) string {
	cond := fmt.Sprintf(`document.querySelector('#graph .edge[data-from=%q][data-to=%q]')`, from, to)
	js := fmt.Sprintf(`(() => { const e = %s; return !!e && Number(e.dataset.rps) > 0`, cond)
	if health != "" {
		js += fmt.Sprintf(` && e.dataset.health === %q`, health)
	}
	return js + "; })()"
}

const (
	gatewayNode = "wl:istio-ingressgateway.istio-system"
	productpage = "wl:productpage.default"
	reviewsV1   = "wl:reviews-v1.default"
	reviewsV2   = "wl:reviews-v2.default"
	ratings     = "wl:ratings.default"
	curlNode    = "wl:curl.default"
	reviewsSvc  = "svc:reviews.default.svc.cluster.local"
)

// healthyEdges are the edges bookinfo's traffic through the gateway draws.
var healthyEdges = [][2]string{
	{gatewayNode, productpage},
	{productpage, reviewsV1}, {productpage, reviewsV2},
	{reviewsV1, ratings}, {reviewsV2, ratings},
}

func TestDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs bookinfo-lite and a headless browser (drop -short to run)")
	}
	ctx := browser(t)
	mesh := startBookinfo(t)
	tr := startTraffic(t, 10)
	out := artifacts(t)
	t.Logf("screenshots in %s", out)
	url := "http://" + mesh.Debug() + "/dashboard/"

	do(ctx, t, chromedp.Navigate(url))

	t.Run("topology", func(t *testing.T) {
		for _, e := range healthyEdges {
			waitFor(ctx, t, 30*time.Second, fmt.Sprintf("edge %s → %s with a rate and healthy", e[0], e[1]), edgeJS(e[0], e[1], "ok"))
		}
	})

	t.Run("v3 turns red with its cause", func(t *testing.T) {
		tr.startV3()
		waitFor(ctx, t, 30*time.Second, "edge curl → reviews (subset v3) red", edgeJS(curlNode, reviewsSvc, "bad"))
		waitFor(ctx, t, 10*time.Second, "the UH cause on the graph", `[...document.querySelectorAll('#graph .edge.bad .cause')].some(e => e.textContent === "UH: empty subset v3")`)
		waitFor(ctx, t, 5*time.Second, "the reviews node names subset v3", `[...document.querySelectorAll('#graph .node.service')].some(n => n.textContent.includes("subset v3"))`)
		waitFor(ctx, t, 5*time.Second, "the traffic table explains the failure", `document.querySelector('#edges tr.bad') !== null && document.querySelector('#edges tr.bad').innerText.includes('selects 0 of 3 endpoints')`)
		shot := screenshot(ctx, t, out, "topology.png")
		checkGraphPicture(t, shot)
		if testutil.Updating() { // the one -update flag also rewrites the docs' screenshot
			_, self, _, _ := runtime.Caller(0)
			if err := os.WriteFile(filepath.Join(filepath.Dir(self), "..", "..", "docs", "dashboard.png"), shot, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("keyboard", func(t *testing.T) {
		// The gateway node takes focus, the right arrow moves to productpage, Enter opens it.
		if _, err := eval[chromedp.Void](ctx, fmt.Sprintf(`document.querySelector('#graph .node[data-id=%q]').focus()`, gatewayNode)); err != nil {
			t.Fatal(err)
		}
		do(ctx, t, chromedp.KeyEvent(kb.ArrowRight))
		waitFor(ctx, t, 2*time.Second, "the right arrow focuses productpage", fmt.Sprintf(`document.activeElement.dataset.id === %q`, productpage))
		do(ctx, t, chromedp.KeyEvent(kb.Enter))
		waitFor(ctx, t, 2*time.Second, "Enter opens productpage's page", `location.hash === "#/workload/productpage.default"`)
	})

	t.Run("workload page", func(t *testing.T) {
		waitFor(ctx, t, 10*time.Second, "the live tap connected", `document.getElementById("tap-state").textContent.startsWith("(live")`)
		// A request with a path no other traffic uses: it must show within 2 s.
		sent := time.Now()
		resp, err := http.Get("http://" + gatewayAddr + "/api/tap-probe")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		waitFor(ctx, t, 2*time.Second-time.Since(sent), "the workload page's tap shows /api/tap-probe within 2 s",
			`[...document.querySelectorAll('#tap tbody tr')].some(r => r.innerText.includes('/api/tap-probe'))`)
		t.Logf("tap showed the request %s after it was sent", time.Since(sent).Round(time.Millisecond))
		waitFor(ctx, t, 10*time.Second, "golden signals drawn", `document.querySelectorAll('#chart-rate path').length > 0 && document.querySelectorAll('#chart-latency path').length > 0`)
		waitFor(ctx, t, 10*time.Second, "configuration listed", `[...document.querySelectorAll('#cfg-clusters td')].some(c => c.textContent === "outbound|9080|v3|reviews.default.svc.cluster.local")`)
		waitFor(ctx, t, 5*time.Second, "sync status listed", `[...document.querySelectorAll('#wl-sync td')].some(c => c.textContent === "SYNCED")`)
		waitFor(ctx, t, 5*time.Second, "readiness shown", `document.getElementById("wl-ready").textContent === "ready"`)
		screenshot(ctx, t, out, "workload.png")
	})

	t.Run("findings", func(t *testing.T) {
		do(ctx, t, chromedp.Navigate(url+"#/findings"))
		waitFor(ctx, t, 10*time.Second, "analyze's finding on subset v3", `[...document.querySelectorAll('#findings td')].some(c => c.textContent.includes("v3"))`)
		screenshot(ctx, t, out, "findings.png")
	})

	t.Run("narrow window", func(t *testing.T) {
		do(ctx, t, chromedp.EmulateViewport(420, 800), chromedp.Navigate(url))
		waitFor(ctx, t, 15*time.Second, "the graph at 420 px", edgeJS(gatewayNode, productpage, ""))
		waitFor(ctx, t, 2*time.Second, "no page-wide horizontal scrolling", `document.documentElement.scrollWidth <= window.innerWidth + 1`)
		screenshot(ctx, t, out, "narrow.png")
		do(ctx, t, chromedp.EmulateViewport(1280, 800))
	})

	t.Run("control plane restart", func(t *testing.T) {
		restarted := time.Now()
		mesh.RestartControlPlane()
		// The open page reconnects by itself (no reload) and draws the new control plane's
		// graph, whose figures start from the restart.
		waitFor(ctx, t, 20*time.Second, "a graph from the restarted control plane",
			fmt.Sprintf(`new Date(document.getElementById("graph").dataset.time).getTime() > %d`, restarted.UnixMilli()))
		for _, e := range healthyEdges {
			waitFor(ctx, t, 40*time.Second, fmt.Sprintf("after the restart, edge %s → %s", e[0], e[1]), edgeJS(e[0], e[1], "ok"))
		}
		waitFor(ctx, t, 5*time.Second, "live again", `document.getElementById("live").textContent === "live"`)
		screenshot(ctx, t, out, "after-restart.png")
	})
}

func screenshot(ctx context.Context, t *testing.T, dir, name string) []byte {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	buf, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
	return buf
}

// checkGraphPicture checks the screenshot shows a drawn graph: enough non-background
// pixels, and the failing edge's red.
func checkGraphPicture(t *testing.T, shot []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	b := img.Bounds()
	var ink, red int
	bad := color.RGBA{0xcf, 0x22, 0x2e, 0xff}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			if c.R < 0xf0 || c.G < 0xf0 || c.B < 0xf0 {
				ink++
			}
			if near(c, bad) {
				red++
			}
		}
	}
	total := b.Dx() * b.Dy()
	if ink < total/50 {
		t.Errorf("screenshot looks empty: %d of %d pixels drawn", ink, total)
	}
	if red < 200 {
		t.Errorf("screenshot shows %d red pixels: the failing edge is not drawn red", red)
	}
}

func near(a, b color.RGBA) bool {
	d := func(x, y uint8) int {
		if x > y {
			return int(x - y)
		}
		return int(y - x)
	}
	return d(a.R, b.R) < 24 && d(a.G, b.G) < 24 && d(a.B, b.B) < 24
}
