package up

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// Options configure Run. Zero values take the documented defaults.
type Options struct {
	Dir string // the config directory (required)
	// Load reads the config directory (config.LoadDir). Required.
	Load func(dir string) ([]*config.Object, []config.Diagnostic)
	// Executable is the lucid binary the children run; default os.Executable().
	Executable string
	Out        io.Writer // where everything is printed; default os.Stdout
	Color      bool      // color the prefixes
	LogLevel   string    // children's --log-level; default info
	// ReadyTimeout bounds the wait for discovery's /ready and for the sidecars'
	// /healthz/ready; default 15 s.
	ReadyTimeout time.Duration
	// StopGrace is how long a child has to exit after SIGTERM before SIGKILL; default 10 s.
	StopGrace time.Duration
	// GRPCAddr and DebugAddr are discovery's addresses (defaults 127.0.0.1:15010, :15014).
	GRPCAddr, DebugAddr string
	// Capture runs every sidecar workload in a pod of its own with its traffic captured
	// (capture.go), in CaptureRange (default DefaultCaptureRange). Linux, root.
	Capture      bool
	CaptureRange netip.Prefix
}

// Run plans and starts the mesh in opts.Dir and supervises it until ctx is cancelled
// (Ctrl-C: returns nil) or a child exits on its own (returns an error naming it). Every
// child is stopped, in reverse order, before Run returns.
func Run(ctx context.Context, opts Options) error {
	if opts.Load == nil {
		return errors.New("up: no config loader")
	}
	if opts.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the lucid binary: %w", err)
		}
		opts.Executable = exe
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	opts.ReadyTimeout = cmp.Or(opts.ReadyTimeout, 15*time.Second)
	opts.StopGrace = cmp.Or(opts.StopGrace, 10*time.Second) // longer than a sidecar's 5 s drain
	if opts.Capture {
		if err := CaptureRequirements(); err != nil { // capture.go
			return err
		}
		opts.GRPCAddr = captureGRPCAddr(opts.GRPCAddr, cmpPrefix(opts.CaptureRange))
	}

	if st, err := os.Stat(opts.Dir); err != nil {
		return fmt.Errorf("config directory: %w", err)
	} else if !st.IsDir() {
		return fmt.Errorf("config directory %s: not a directory", opts.Dir)
	}
	objs, diags := opts.Load(opts.Dir)
	generated, err := EnsureCertificates(opts.Dir, objs, gatewayIPs(objs))
	if err != nil {
		return fmt.Errorf("generating example certificates: %w", err)
	}
	if len(generated) > 0 {
		objs, diags = opts.Load(opts.Dir) // the Gateways' certificate files exist now
	}
	planned, own := objs, map[string]netip.Addr(nil)
	if opts.Capture {
		planned, own = captureObjects(objs) // apps on the pod's loopback; the entries' own addresses
	}
	plan, err := NewPlan(planned, PlanOptions{
		Dir: opts.Dir, Executable: opts.Executable, LogLevel: opts.LogLevel,
		GRPCAddr: opts.GRPCAddr, DebugAddr: opts.DebugAddr,
	})
	out := NewOutput(opts.Out, prefixWidth(plan), opts.Color)
	for _, d := range diags {
		out.Printf("up", "config: %s: %s", d.Level, d)
	}
	if err != nil {
		return err
	}
	if err := enableIdentity(plan, objs, opts.Dir); err != nil { // identity.go: the mesh CA, a token per sidecar
		return err
	}
	for _, g := range generated {
		out.Printf("up", "generated a certificate for %s port %d: %s (key %s), signed by %s", g.Gateway, g.Port, g.Cert, g.Key, g.CA)
	}
	var pods *captureMesh
	if opts.Capture {
		if pods, err = startCapture(ctx, plan, opts, own, out); err != nil { // capture_linux.go
			return err
		}
		defer pods.close()
	}
	if err := CheckFree(plan); err != nil {
		return err
	}
	s := &supervisor{out: out, exited: make(chan *Child, 1)}
	err = s.start(ctx, plan, opts.ReadyTimeout)
	if err == nil {
		printWelcome(out, plan, pods)
		err = s.wait(ctx)
	}
	out.Printf("up", "stopping: gateways, apps, then sidecars, then discovery")
	stopping := time.Now()
	StopAll(s.tiers(), opts.StopGrace, func(left []*Child, kill time.Duration) {
		out.Printf("up", "waiting for %s (SIGKILL in %s)", waitingFor(left), kill.Round(100*time.Millisecond))
	})
	out.Printf("up", "stopped in %s", time.Since(stopping).Round(10*time.Millisecond))
	if errors.Is(err, errInterrupted) {
		return nil
	}
	return err
}

// waitingFor says what a stop waits for: proxies finish the requests in flight on their
// open connections (the drain), apps and discovery exit.
func waitingFor(left []*Child) string {
	var parts []string
	for _, c := range left {
		switch c.Role {
		case RoleGateway, RoleSidecar:
			parts = append(parts, c.Name+" to drain its open connections")
		default:
			parts = append(parts, c.Name+" to exit")
		}
	}
	return strings.Join(parts, ", ")
}

// prefixWidth is the widest process name, so every prefix lines up.
func prefixWidth(p *Plan) int {
	width := len("discovery")
	if p == nil {
		return width
	}
	for _, pr := range slices.Concat(p.Sidecars, p.Apps, p.Gateways) {
		width = max(width, len(pr.Name))
	}
	return width
}

// CheckFree fails, naming the address, if something already listens where the plan's
// processes will.
func CheckFree(p *Plan) error {
	all := slices.Concat([]Process{p.Discovery}, p.Sidecars, p.Gateways)
	for _, pr := range all {
		for _, addr := range pr.Binds {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("%s needs %s, which is not free: %w (is another lucid up, Envoy or Istio running?)", pr.Name, addr, err)
			}
			_ = ln.Close()
		}
	}
	return nil
}

// supervisor owns the started children.
type supervisor struct {
	out *Output

	mu       sync.Mutex
	children [4][]*Child // by Role
	stopping bool

	exited chan *Child // the first child that exited on its own
}

func (s *supervisor) tiers() [][]*Child {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopping = true
	return [][]*Child{s.children[RoleGateway], s.children[RoleApp], s.children[RoleSidecar], s.children[RoleDiscovery]}
}

func (s *supervisor) onExit(c *Child) {
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		return
	}
	if c.Role == RoleApp {
		// An app is the workload, not the mesh: like a crashed container, its absence is
		// something to watch the mesh handle (503s explained, streams reset), so the mesh
		// keeps running. Discovery, a sidecar or a gateway exiting stops everything.
		what := "exited (status 0)"
		if c.Err() != nil {
			what = "exited: " + c.Err().Error()
		}
		s.out.Printf("up", "%s %s; the mesh keeps running without it (Ctrl-C stops everything)", c.Name, what)
		return
	}
	select {
	case s.exited <- c:
	default:
	}
}

func (s *supervisor) launch(p Process) (*Child, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := Start(p, s.out, s.onExit)
	if err != nil {
		return nil, err
	}
	s.children[p.Role] = append(s.children[p.Role], c)
	return c, nil
}

// start runs discovery, then the sidecars, then the apps, waiting for readiness between.
func (s *supervisor) start(ctx context.Context, p *Plan, timeout time.Duration) error {
	s.out.Printf("up", "starting discovery (control plane) on %s", p.GRPCAddr)
	d, err := s.launch(p.Discovery)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, d, timeout); err != nil {
		return err
	}
	var sidecars []*Child
	for _, sp := range p.Sidecars {
		c, err := s.launch(sp)
		if err != nil {
			return err
		}
		sidecars = append(sidecars, c)
	}
	for _, c := range sidecars {
		if err := waitReady(ctx, c, timeout); err != nil {
			return err
		}
	}
	var apps []*Child
	for _, ap := range p.Apps {
		c, err := s.launch(ap)
		if err != nil {
			return err
		}
		apps = append(apps, c)
	}
	until := time.Now().Add(timeout) // one bound for the whole tier
	for i, c := range apps {
		if err := s.waitListening(ctx, c, p.Apps[i].Listens, until, timeout); err != nil {
			return err
		}
	}
	var gateways []*Child
	for _, gp := range p.Gateways {
		c, err := s.launch(gp)
		if err != nil {
			return err
		}
		gateways = append(gateways, c)
	}
	for _, c := range gateways {
		if err := waitReady(ctx, c, timeout); err != nil {
			return err
		}
	}
	return nil
}

// wait blocks until ctx is cancelled (nil) or a child exits on its own (an error).
func (s *supervisor) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case c := <-s.exited:
		return exitError(c)
	}
}

func exitError(c *Child) error {
	if c.Err() != nil {
		return fmt.Errorf("%s exited: %w", c.Name, c.Err())
	}
	return fmt.Errorf("%s exited (status 0) while the mesh was running", c.Name)
}

// errInterrupted: Ctrl-C came while starting; not a failure.
var errInterrupted = errors.New("interrupted while starting")

// waitListening waits until every address of addrs accepts a TCP connection, as a
// readiness probe of the app would, until the tier's bound (until, timeout after the apps
// started). An app that exits or does not listen by then does not stop the mesh (an app
// failing is the workload failing): up says so and goes on.
func (s *supervisor) waitListening(ctx context.Context, c *Child, addrs []string, until time.Time, timeout time.Duration) error {
	for _, a := range addrs {
		o, err := poll(ctx, c, until, 50*time.Millisecond, func() error {
			conn, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				_ = conn.Close()
			}
			return err
		})
		switch o {
		case pollInterrupted:
			return errInterrupted
		case pollExited:
			return nil // said by the exit watch
		case pollTimedOut:
			s.out.Printf("up", "%s does not listen on %s after %v (%v); requests to it get 503 until it does",
				c.Name, a, timeout, err)
			return nil
		}
	}
	return nil
}

// waitReady polls c's readiness URL until it answers 200, c exits, ctx ends or timeout.
func waitReady(ctx context.Context, c *Child, timeout time.Duration) error {
	if c.Ready == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Ready, nil)
	if err != nil {
		return fmt.Errorf("%s: readiness URL: %w", c.Name, err)
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	o, err := poll(ctx, c, time.Now().Add(timeout), 100*time.Millisecond, func() error {
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
	switch o {
	case pollInterrupted:
		return errInterrupted
	case pollExited:
		return fmt.Errorf("%s failed to start: %w", c.Name, exitError(c))
	case pollTimedOut:
		return fmt.Errorf("%s not ready after %v: GET %s: %w", c.Name, timeout, c.Ready, err)
	}
	return nil
}

// pollOutcome is how a poll of a starting child ended.
type pollOutcome int

const (
	pollDone        pollOutcome = iota // try succeeded
	pollInterrupted                    // ctx ended (Ctrl-C)
	pollExited                         // the child exited
	pollTimedOut                       // until passed
)

// poll calls try every interval until it succeeds, c exits, ctx ends or until passes; the
// error is try's last.
func poll(ctx context.Context, c *Child, until time.Time, interval time.Duration, try func() error) (pollOutcome, error) {
	deadline := time.NewTimer(time.Until(until))
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := try()
		if err == nil {
			return pollDone, nil
		}
		select {
		case <-ctx.Done():
			return pollInterrupted, err
		case <-c.Done():
			return pollExited, err
		case <-deadline.C:
			return pollTimedOut, err
		case <-tick.C:
		}
	}
}

// printWelcome tells the user where to send requests and where to look.
func printWelcome(out *Output, p *Plan, pods *captureMesh) {
	say := func(format string, args ...any) { out.Printf("up", format, args...) }
	say("the mesh is up: discovery, %s, %s, %s", count(len(p.Sidecars), "sidecar"), count(len(p.Apps), "app"), count(len(p.Gateways), "gateway"))
	say("services:")
	for _, svc := range p.Services {
		var ports []string
		for _, port := range svc.Ports {
			ports = append(ports, fmt.Sprintf("%d/%s", port.Number, cmp.Or(port.Protocol, port.Name)))
		}
		say("  %-40s %s  workloads: %s", svc.Host, strings.Join(ports, ","), cmp.Or(strings.Join(svc.Workloads, ", "), "(none)"))
	}
	say("workloads (admin API on a private address, for localhost only; readiness on :%d/healthz/ready):", StatusPort)
	for _, w := range p.Workloads {
		role := "app on " + w.AppAddress
		switch {
		case w.Router:
			role = "gateway"
		case !w.HasApp:
			role = "client (no app)"
		}
		say("  %-20s %-12s admin http://%s/  %s", w.Name, w.Address, hostPort(w.Admin, AdminPort), role)
	}
	for _, w := range p.Workloads {
		if !w.Router {
			continue
		}
		if urls := gatewayURLs(w, p.GatewayServers[w.Namespace+"/"+w.Name]); len(urls) > 0 {
			say("enter the mesh through the %s gateway:", w.Name)
			for _, u := range urls {
				say("  %s", u)
			}
		}
	}
	if pods != nil {
		pods.welcome(say, p)
	}
	for _, w := range p.Workloads {
		if w.HasApp || w.Router || pods != nil {
			continue
		}
		say("send requests through %s's sidecar:", w.Name)
		for _, svc := range p.Services {
			for _, port := range svc.Ports {
				say("  curl -x http://%s http://%s:%d/", hostPort(w.Address, OutboundPort), shortHost(svc.Host, w.Namespace), port.Number)
			}
		}
	}
	say("control plane: ADS %s, debug http://%s/", p.GRPCAddr, p.DebugAddr)
	say("press Ctrl-C to stop")
}

// shortHost is the name a workload in ns can use for host (Istio resolves short names
// within the namespace).
func shortHost(host, ns string) string {
	if short, ok := strings.CutSuffix(host, "."+ns+".svc.cluster.local"); ok {
		return short
	}
	return host
}

// count writes "1 gateway", "2 gateways".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
