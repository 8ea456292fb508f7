// Command kubescale is the Kubernetes scale check: a real kube-apiserver and
// etcd (internal/testutil/kubetest) filled through the API with 1,000 Services, 10,000 endpoints
// (EndpointSlices written as the EndpointSlice controller would, plus their Pods) and
// DestinationRules with subsets; `lucid discovery --kubernetes` serving them to N connected
// sidecars; then the time from an API change (an endpoint removed or added, a pod's version
// label flipped, a Service created) until every sidecar has it in its decoded endpoints,
// and the control plane's memory and CPU. It prints a Markdown report.
//
// The control plane runs in a child process (this program with -role=discovery: the same
// discovery.Run `lucid discovery --kubernetes` runs, plus a profiling port) so its memory
// and CPU are its own. The sidecars are lightweight: each is a real xdsclient (stream,
// decoding, validation, ACK/NACK) whose Applier keeps the decoded snapshot instead of
// running a proxy. Addresses: 127.0.85.0/24 (see README.md); nothing sends traffic.
//
// It is not a test: `make bench-kube` runs it (bench/kubescale/README.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/lucid-mesh/lucid/internal/testutil/kubetest"
)

// options of one run.
type options struct {
	layout
	changes, creates, workers int
	changeTimeout             time.Duration
	results, profileDir       string
	keep                      bool
}

func main() {
	var o options
	role := flag.String("role", "", "internal: \"discovery\" runs the control-plane child")
	kubeconfig := flag.String("kubeconfig", "", "internal: the child's kubeconfig")
	ip := flag.String("ip", "127.0.85.1", "address the control plane listens on (ADS and profiling, random ports)")
	flag.IntVar(&o.services, "services", 1000, "Services")
	flag.IntVar(&o.endpoints, "endpoints", 10, "endpoints (pods) per Service (at most 80)")
	flag.IntVar(&o.namespaces, "namespaces", 4, "namespaces the Services are spread over")
	flag.IntVar(&o.drEvery, "dr-every", 4, "a DestinationRule with subsets v1/v2 for every n-th Service")
	flag.IntVar(&o.sidecars, "sidecars", 50, "connected sidecars (at most 150)")
	flag.IntVar(&o.changes, "changes", 20, "EndpointSlice/pod changes to time")
	flag.IntVar(&o.creates, "creates", 5, "Service creations to time")
	flag.IntVar(&o.workers, "workers", 16, "parallel API requests while populating")
	flag.DurationVar(&o.changeTimeout, "change-timeout", 2*time.Minute, "longest wait for one change to reach every sidecar")
	flag.StringVar(&o.results, "results", "", "also write the report to this file")
	flag.StringVar(&o.profileDir, "profile-dir", "", "write the control plane's CPU profile (changes phase) and heap profile (after sync) here")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (control-plane log) after a successful run")
	flag.Parse()
	log.SetFlags(log.Ltime)

	if *role == "discovery" {
		if err := runDiscoveryChild(*kubeconfig, *ip, o.profileDir); err != nil {
			fmt.Fprintln(os.Stderr, "discovery:", err)
			os.Exit(1)
		}
		return
	}
	if err := o.validate(); err != nil {
		log.Fatal(err)
	}
	if err := run(o, *ip); err != nil {
		log.Fatal(err)
	}
}

func (o options) validate() error {
	switch {
	case o.services < 1 || o.namespaces < 1 || o.drEvery < 1 || o.changes < 0 || o.creates < 0 || o.workers < 1:
		return fmt.Errorf("-services, -namespaces, -dr-every, -workers must be positive, -changes and -creates not negative")
	case o.endpoints < 2 || o.endpoints > 80:
		return fmt.Errorf("-endpoints %d: want 2..80 (endpoint i's pod is at 127.0.85.(20+i))", o.endpoints)
	case o.sidecars < 1 || o.sidecars > 150:
		return fmt.Errorf("-sidecars %d: want 1..150 (sidecar i is at 127.0.85.(100+i))", o.sidecars)
	case (o.services+o.creates)*o.endpoints > 250*250:
		return fmt.Errorf("at most %d endpoints in all", 250*250)
	}
	return nil
}

func run(o options, ip string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep := &report{opts: o, machine: machine()}

	work, err := os.MkdirTemp("", "lucid-kubescale-")
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	ok := false
	defer func() {
		if ok && !o.keep {
			_ = os.RemoveAll(work)
		} else {
			log.Printf("work directory kept: %s", work)
		}
	}()
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o750); err != nil {
			return fmt.Errorf("-profile-dir: %w", err)
		}
	}

	// 1. The API server, and the mesh created through it.
	log.Printf("starting kube-apiserver and etcd (%s)", kubetest.BinDir())
	t0 := time.Now()
	cluster, err := kubetest.Start(ctx, kubetest.Options{})
	if err != nil {
		return fmt.Errorf("starting the API server: %w", err)
	}
	defer cluster.Stop()
	rep.clusterStart = time.Since(t0)
	cfg := rest.CopyConfig(cluster.Config)
	cfg.QPS = -1 // no client-side rate limit; the workers bound the concurrency
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	if err := cluster.InstallCRDs(ctx); err != nil {
		return err
	}
	for i := range o.namespaces {
		if err := cluster.CreateNamespace(ctx, fmt.Sprintf("scale-%d", i), nil); err != nil {
			return err
		}
	}
	log.Printf("creating %d Services, %d endpoints, %d sidecar pods with %d parallel requests",
		o.services, o.services*o.endpoints, o.sidecars, o.workers)
	t0 = time.Now()
	rep.phases, err = populate(ctx, dyn, o.layout, o.workers)
	if err != nil {
		return err
	}
	rep.populate = time.Since(t0)
	for _, p := range rep.phases {
		log.Printf("  %-28s %6d in %6.1fs (%.0f/s)", p.what, p.count, p.took.Seconds(), p.rate())
	}

	// 2. The control plane.
	log.Printf("starting lucid discovery --kubernetes")
	t0 = time.Now()
	cp, err := startChild(cluster.Kubeconfig, ip, o.profileDir, filepath.Join(work, "discovery.log"))
	if err != nil {
		return err
	}
	defer cp.kill()
	select {
	case <-cp.ready:
	case <-cp.done:
		return fmt.Errorf("discovery exited (%w); log: %s", cp.err, filepath.Join(work, "discovery.log"))
	case <-time.After(10 * time.Minute):
		return fmt.Errorf("discovery published nothing within 10 minutes; log: %s", filepath.Join(work, "discovery.log"))
	case <-ctx.Done():
		return ctx.Err()
	}
	rep.cpReady = time.Since(t0)
	if rep.atReady, err = sample(cp, cluster.Dir); err != nil {
		return err
	}
	log.Printf("first configuration published after %s", rep.cpReady.Round(time.Millisecond))

	// 3. The sidecars' first full sync.
	log.Printf("connecting %d sidecars to %s", o.sidecars, cp.ads)
	xlog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t0 = time.Now()
	fl := startFleet(o.layout, cp.ads, xlog)
	defer fl.stop()
	rep.sync, err = fl.wait(ctx, fl.armAllowMet(fullConfig(o.layout)), t0, 10*time.Minute)
	if err != nil {
		return fmt.Errorf("first sync: %w", err)
	}
	log.Printf("every sidecar has the full configuration: first after %s, all after %s",
		rep.sync.first.Round(time.Millisecond), rep.sync.all.Round(time.Millisecond))
	settle(fl, cp)
	if rep.afterSync, err = sample(cp, cluster.Dir); err != nil {
		return err
	}
	if o.profileDir != "" {
		if err := cp.saveHeapProfile(filepath.Join(o.profileDir, "discovery-heap.pprof")); err != nil {
			return err
		}
		if err := cp.post("/cpuprofile/start"); err != nil {
			return err
		}
	}

	// 4. Changes, one at a time.
	appliesBefore := fl.applies()
	if err := timeChanges(ctx, dyn, fl, cp, o, rep); err != nil {
		return err
	}
	if err := timeCreates(ctx, dyn, fl, cp, o, rep); err != nil {
		return err
	}
	rep.pushes = fl.applies() - appliesBefore
	if o.profileDir != "" {
		if err := cp.post("/cpuprofile/stop"); err != nil {
			return err
		}
	}
	if rep.atEnd, err = sample(cp, cluster.Dir); err != nil {
		return err
	}

	out := rep.markdown()
	fmt.Print(out)
	if o.results != "" {
		if err := os.WriteFile(o.results, []byte(out), 0o644); err != nil {
			return fmt.Errorf("-results: %w", err)
		}
	}
	ok = true
	return nil
}

// settle waits (at most a minute) until the control plane is idle, so that a measurement
// starts from a quiet control plane: for a second the sidecars applied nothing new and the
// control plane used under 5 % of a core. (A change that alters no sidecar's configuration
// still costs a rebuild, and the next change would queue behind it.)
func settle(fl *fleet, cp *child) {
	deadline := time.Now().Add(time.Minute)
	last, lastCPU := fl.applies(), cpuOf(cp)
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		n, c := fl.applies(), cpuOf(cp)
		if n == last && c-lastCPU < 0.05 {
			return
		}
		last, lastCPU = n, c
	}
}

func cpuOf(cp *child) float64 {
	s, err := cp.stats(false)
	if err != nil {
		return 0
	}
	return s.CPUSeconds
}

// sample reads the control plane's and the API server's memory and CPU.
func sample(cp *child, clusterDir string) (usage, error) {
	var u usage
	var err error
	if u.cp, err = cp.stats(true); err != nil {
		return u, err
	}
	if u.cpMem, err = readProcMem(cp.pid()); err != nil {
		return u, err
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		for _, pid := range findProcs(name, clusterDir) {
			m, err := readProcMem(pid)
			if err != nil {
				continue
			}
			cpu, _ := procCPU(pid)
			if name == "etcd" {
				u.etcd, u.etcdCPU = m, cpu
			} else {
				u.api, u.apiCPU = m, cpu
			}
		}
	}
	return u, nil
}
