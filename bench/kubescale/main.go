// Command kubescale is the control plane's scale check: 1,000 Services and 10,000 endpoints
// (by default), up to 1,000 connected sidecars, and the time from a change (an endpoint
// removed or added, a pod's version label flipped, a VirtualService changed, a Service
// created) until every sidecar that sees it has it, the control plane's memory and CPU,
// sustained endpoint churn, and one real sidecar's footprint. It prints a Markdown report.
//
// Two backends hold the mesh (-mode): "kube", a real kube-apiserver and etcd
// (internal/testutil/kubetest) filled through the API (EndpointSlices written as the
// EndpointSlice controller would, plus their Pods) with the control plane running
// `discovery --kubernetes`; and "local", the twin without Kubernetes: the same mesh as Istio
// YAML in a config directory (one file per Service: ServiceEntry, WorkloadEntries,
// DestinationRule) served by `discovery --config-dir`, as `lucid up` does. -scoped adds a
// Sidecar per namespace limiting egress to the namespace and a shared one.
//
// The control plane runs in a child process (this program with -role=discovery: the same
// discovery.Run the command runs, plus a profiling port) so its memory and CPU are its own.
// The sidecars are lightweight: each is a real xdsclient (delta stream, decoding,
// validation, ACK/NACK) whose Applier keeps the decoded snapshot instead of running a
// proxy. Addresses: 127.85.0.0/16 and 127.86.0.0/16 (see README.md); nothing sends traffic.
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
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/lucid-mesh/lucid/internal/dataplane/xdsclient"
	"github.com/lucid-mesh/lucid/internal/testutil/kubetest"
)

// options of one run.
type options struct {
	layout
	mode, protocol                       string
	changes, vsChanges, creates, workers int
	rate                                 int
	sustain, changeTimeout               time.Duration
	footprint, shareDecode               bool
	wave, clientsGOGC                    int
	results, profileDir, ip              string
	keep                                 bool
}

func main() {
	var o options
	role := flag.String("role", "", "internal: \"discovery\" runs the control-plane child")
	kubeconfig := flag.String("kubeconfig", "", "internal: the child's kubeconfig")
	configDir := flag.String("config-dir", "", "internal: the child's config directory")
	ip := flag.String("ip", "127.85.255.1", "address the control plane listens on (ADS and profiling, random ports)")
	flag.StringVar(&o.mode, "mode", "kube", "where the mesh lives: kube (a real API server) or local (a config directory)")
	flag.StringVar(&o.protocol, "protocol", xdsclient.ProtocolAuto, "the sidecars' xDS protocol: \"\" (delta, as offered), delta or sotw")
	flag.IntVar(&o.services, "services", 1000, "Services")
	flag.IntVar(&o.endpoints, "endpoints", 10, "endpoints (pods) per Service")
	flag.IntVar(&o.namespaces, "namespaces", 10, "namespaces the Services (and sidecars) are spread over; scale-0 is the shared one")
	flag.IntVar(&o.drEvery, "dr-every", 4, "a DestinationRule with subsets v1/v2 for every n-th Service")
	flag.IntVar(&o.sidecars, "sidecars", 1000, "connected sidecars (at most 60,000)")
	flag.BoolVar(&o.scoped, "scoped", false, "a Sidecar per namespace: egress to the namespace and scale-0 only")
	flag.IntVar(&o.changes, "changes", 20, "endpoint changes to time, one at a time")
	flag.IntVar(&o.vsChanges, "vs-changes", 6, "VirtualService changes to time, one at a time")
	flag.IntVar(&o.creates, "creates", 3, "Service creations to time")
	flag.DurationVar(&o.sustain, "sustain", time.Minute, "sustained endpoint churn: how long (0: none)")
	flag.IntVar(&o.rate, "rate", 100, "sustained endpoint churn: changes per second")
	flag.BoolVar(&o.footprint, "footprint", true, "measure one real `lucid sidecar` with the run's configuration")
	flag.BoolVar(&o.shareDecode, "share-decode", true, "the sidecars share decoded resources (xdsclient.DecodeCache): without, each decodes on its own (about 20 MiB and its CPU per all-to-all sidecar)")
	flag.IntVar(&o.wave, "wave", 100, "sidecars connected at a time for the first sync")
	flag.IntVar(&o.clientsGOGC, "clients-gogc", 0, "GOGC of this process, which runs the sidecars' clients (0: Go's default); see README.md")
	flag.IntVar(&o.workers, "workers", 16, "parallel API requests while populating")
	flag.DurationVar(&o.changeTimeout, "change-timeout", 2*time.Minute, "longest wait for one change to reach every sidecar")
	flag.StringVar(&o.results, "results", "", "also write the report to this file")
	flag.StringVar(&o.profileDir, "profile-dir", "", "write the control plane's CPU profile (changes phase) and heap profile (after sync) here")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (control-plane log) after a successful run")
	flag.Parse()
	log.SetFlags(log.Ltime)

	if *role == "discovery" {
		if err := runDiscoveryChild(*kubeconfig, *configDir, *ip, o.profileDir); err != nil {
			fmt.Fprintln(os.Stderr, "discovery:", err)
			os.Exit(1)
		}
		return
	}
	if err := o.validate(); err != nil {
		log.Fatal(err)
	}
	o.ip = *ip
	if err := run(o, *ip); err != nil {
		log.Fatal(err)
	}
}

func (o options) validate() error {
	switch {
	case o.mode != "kube" && o.mode != "local":
		return fmt.Errorf("-mode %q: want kube or local", o.mode)
	case o.services < 1 || o.namespaces < 1 || o.drEvery < 1 || o.changes < 0 || o.creates < 0 || o.vsChanges < 0 || o.workers < 1 || o.rate < 1:
		return fmt.Errorf("-services, -namespaces, -dr-every, -workers, -rate must be positive, the counts of changes not negative")
	case o.endpoints < 2:
		return fmt.Errorf("-endpoints %d: want at least 2", o.endpoints)
	case o.wave < 1:
		return fmt.Errorf("-wave must be positive")
	case o.sidecars < 1 || o.sidecars >= 250*240:
		return fmt.Errorf("-sidecars %d: want 1..59999 (sidecar i is at 127.85.(i/250).(i%%250+1))", o.sidecars)
	case (o.services+o.creates)*o.endpoints > 250*250:
		return fmt.Errorf("at most %d endpoints in all (endpoints are at 127.86.x.y)", 250*250)
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
	var bin string
	if o.footprint {
		log.Printf("building lucid for the footprint sidecar")
		if bin, err = buildLucid(ctx, work); err != nil {
			return err
		}
	}

	// 1. The mesh.
	var b backend
	clusterDir := ""
	if o.mode == "kube" {
		log.Printf("starting kube-apiserver and etcd (%s)", kubetest.BinDir())
		t0 := time.Now()
		cluster, err := kubetest.Start(ctx, kubetest.Options{})
		if err != nil {
			return fmt.Errorf("starting the API server: %w", err)
		}
		defer cluster.Stop()
		clusterDir = cluster.Dir
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
		b = &kubeBackend{dyn: dyn, l: o.layout, workers: o.workers, kubeconfig: cluster.Kubeconfig}
	} else {
		dir := filepath.Join(work, "config")
		if err := os.Mkdir(dir, 0o750); err != nil {
			return err
		}
		b = newLocalBackend(dir, o.layout)
	}
	log.Printf("%s: creating %d Services, %d endpoints, %d sidecar workloads", b.name(), o.services, o.services*o.endpoints, o.sidecars+1)
	t0 := time.Now()
	if rep.phases, err = b.populate(ctx); err != nil {
		return err
	}
	rep.populate = time.Since(t0)
	for _, p := range rep.phases {
		log.Printf("  %-36s %6d in %6.1fs (%.0f/s)", p.what, p.count, p.took.Seconds(), p.rate())
	}

	// 2. The control plane.
	log.Printf("starting lucid discovery (%s)", b.name())
	t0 = time.Now()
	cp, err := startChild(b.discoveryArgs(), ip, o.profileDir, filepath.Join(work, "discovery.log"))
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
	time.Sleep(2 * time.Second) // the idle base: built, nobody connected
	if rep.atReady, err = sample(cp, clusterDir); err != nil {
		return err
	}
	log.Printf("first configuration published after %s", rep.cpReady.Round(time.Millisecond))

	// 3. The sidecars' first full sync.
	log.Printf("connecting %d sidecars to %s, %d at a time", o.sidecars, cp.ads, o.wave)
	xlog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if o.clientsGOGC > 0 {
		debug.SetGCPercent(o.clientsGOGC)
	}
	var cache *xdsclient.DecodeCache
	if o.shareDecode {
		cache = &xdsclient.DecodeCache{}
	}
	fl := newFleet(o.layout, cp.ads, o.protocol, cache, xlog)
	defer fl.stop()
	t0 = time.Now()
	for from := 0; from < o.sidecars; from += o.wave {
		to := min(from+o.wave, o.sidecars)
		p := fl.armAllowMet(fullConfig(o.layout), func(i int) bool { return i >= from && i < to })
		fl.start(from, to)
		r, err := fl.wait(ctx, p, t0, 30*time.Minute)
		if err != nil {
			return fmt.Errorf("first sync of sidecars %d..%d: %w", from, to-1, err)
		}
		if from == 0 {
			rep.sync.first, rep.sync.p50 = r.first, r.p50
		}
		rep.sync.all, rep.sync.n = r.all, to
		log.Printf("  sidecars %d..%d synced after %s", from, to-1, r.all.Round(time.Millisecond))
	}
	rep.protocol = fl.clients[0].Status().Protocol
	log.Printf("every sidecar has its full configuration (%s): first after %s, all after %s",
		rep.protocol, rep.sync.first.Round(time.Millisecond), rep.sync.all.Round(time.Millisecond))
	settle(fl, cp)
	if rep.afterSync, err = sample(cp, clusterDir); err != nil {
		return err
	}
	if o.profileDir != "" {
		if err := cp.saveHeapProfile(filepath.Join(o.profileDir, "discovery-heap.pprof")); err != nil {
			return err
		}
		if err := cp.post("/cpuprofile/start"); err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(o.profileDir, "sidecars-changes-cpu.pprof"))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}

	// 4. Changes, one at a time.
	appliesBefore := fl.applies()
	log.Printf("endpoint changes")
	if err := timeChanges(ctx, b, fl, cp, o, rep); err != nil {
		return err
	}
	log.Printf("VirtualService changes")
	if err := timeVirtualServices(ctx, b, fl, cp, o, rep); err != nil {
		return err
	}
	log.Printf("Service creations")
	if err := timeCreates(ctx, b, fl, cp, o, rep); err != nil {
		return err
	}
	rep.pushes = fl.applies() - appliesBefore
	if o.profileDir != "" {
		pprof.StopCPUProfile()
		if err := cp.post("/cpuprofile/stop"); err != nil {
			return err
		}
	}
	if rep.atEnd, err = sample(cp, clusterDir); err != nil {
		return err
	}

	// 5. Sustained churn.
	if o.sustain > 0 {
		log.Printf("sustained endpoint churn: %d/s for %s", o.rate, o.sustain)
		settle(fl, cp)
		stopProfiles, err := profileSustain(cp, o.profileDir)
		if err != nil {
			return err
		}
		s, err := sustain(ctx, b, fl, cp, o)
		stopProfiles()
		if err != nil {
			return fmt.Errorf("sustained churn: %w", err)
		}
		rep.sustained = &s
		if o.profileDir != "" {
			if err := cp.saveHeapProfile(filepath.Join(o.profileDir, "discovery-heap-sustain.pprof")); err != nil {
				return err
			}
		}
	}

	// 6. One real sidecar.
	if o.footprint {
		settle(fl, cp)
		log.Printf("measuring a real sidecar")
		fp, err := measureSidecar(ctx, bin, cp.ads, o.layout, filepath.Join(work, "sidecar.log"))
		if err != nil {
			return err
		}
		rep.footprint = &fp
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

// profileSustain starts CPU profiles of the control plane and of this process (the
// sidecars) for the sustained churn, when -profile-dir is set.
func profileSustain(cp *child, dir string) (func(), error) {
	if dir == "" {
		return func() {}, nil
	}
	if err := cp.post("/cpuprofile/start?name=discovery-sustain-cpu.pprof"); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, "sidecars-sustain-cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		_ = cp.post("/cpuprofile/stop")
	}, nil
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
	if clusterDir == "" {
		return u, nil // local mode: no API server
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
