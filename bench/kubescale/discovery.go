package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	rpprof "runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
)

// The control plane runs in a child process (this program with -role=discovery), so its
// memory and CPU are its own: it is `lucid discovery --kubernetes --kubeconfig FILE`
// (discovery.Run with the same options the command sets) plus a profiling port.
//
// Child → parent protocol on stdout: "debug <addr>" once the profiling port listens, then
// "ads <addr>" when the first configuration is published.

// runDiscoveryChild is the child's main: `discovery --kubernetes` with kubeconfig, or
// `discovery --config-dir` with configDir.
func runDiscoveryChild(kubeconfig, configDir, ip, profileDir string) error {
	dl, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return fmt.Errorf("profiling listener: %w", err)
	}
	prof := &cpuProfile{path: filepath.Join(profileDir, "discovery-cpu.pprof")}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/stats", serveStats)
	mux.HandleFunc("POST /cpuprofile/start", prof.start)
	mux.HandleFunc("POST /cpuprofile/stop", prof.stop)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(dl) }()
	defer srv.Close()
	defer prof.flush() // a profile still running when the parent stops us is kept
	fmt.Printf("debug %s\n", dl.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return discovery.Run(ctx, discovery.Options{
		GRPCAddr:  net.JoinHostPort(ip, "0"),
		DebugAddr: net.JoinHostPort(ip, "15014"), // /metrics: the pilot_* histograms
		ConfigDir: configDir,
		Logger:    log,
		Ready:     func(a string) { fmt.Printf("ads %s\n", a) },
		Kube:      discovery.KubeOptions{Enabled: kubeconfig != "", Kubeconfig: kubeconfig},
		Push:      discovery.DefaultPush(),
	})
}

// stats is what the child reports about itself.
type stats struct {
	HeapLive    uint64  `json:"heap_live"`    // /gc/heap/live:bytes: live heap at the last GC
	HeapObjects uint64  `json:"heap_objects"` // /memory/classes/heap/objects:bytes: live + unswept
	GoTotal     uint64  `json:"go_total"`     // /memory/classes/total:bytes: all the runtime maps
	Goroutines  uint64  `json:"goroutines"`
	CPUSeconds  float64 `json:"cpu_seconds"` // user + system, from getrusage
	MaxRSS      int64   `json:"max_rss_kib"` // getrusage's ru_maxrss
}

// serveStats answers /stats; ?gc=1 runs a GC first, so heap_live is current.
func serveStats(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("gc") == "1" {
		// Twice: objects only sync.Pools hold (gRPC's buffers) survive the first
		// collection. Then the freed memory goes back to the OS, so RSS is what is in use.
		runtime.GC()
		debug.FreeOSMemory()
	}
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"}, {Name: "/sched/goroutines:goroutines"},
	}
	metrics.Read(samples)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := stats{
		HeapLive: samples[0].Value.Uint64(), HeapObjects: samples[1].Value.Uint64(),
		GoTotal: samples[2].Value.Uint64(), Goroutines: samples[3].Value.Uint64(),
		CPUSeconds: tvSeconds(ru.Utime) + tvSeconds(ru.Stime), MaxRSS: int64(ru.Maxrss),
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s)
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// cpuProfile starts and stops a CPU profile written to path (in -profile-dir).
type cpuProfile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func (p *cpuProfile) start(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f != nil {
		http.Error(w, "already profiling", http.StatusConflict)
		return
	}
	path := p.path
	if name := r.URL.Query().Get("name"); name != "" {
		path = filepath.Join(filepath.Dir(p.path), filepath.Base(name))
	}
	f, err := os.Create(path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := rpprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	p.f = f
}

func (p *cpuProfile) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f != nil {
		rpprof.StopCPUProfile()
		_ = p.f.Close()
		p.f = nil
	}
}

func (p *cpuProfile) stop(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil {
		http.Error(w, "not profiling", http.StatusConflict)
		return
	}
	rpprof.StopCPUProfile()
	_ = p.f.Close()
	p.f = nil
}

// child is the running control-plane process, seen from the parent.
type child struct {
	cmd   *exec.Cmd
	debug string        // profiling address
	ads   string        // ADS address, once published
	ready chan struct{} // closed when ads is set
	done  chan struct{} // closed when the process has exited; err is then its exit
	err   error
	http  *http.Client
}

// startChild runs this program as the control plane (args: the backend's) with its log in
// logPath. It returns once the profiling port is known; ready closes when the first
// configuration is out.
func startChild(args []string, ip, profileDir, logPath string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program: %w", err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("discovery log: %w", err)
	}
	cmd := exec.Command(self, append([]string{"-role=discovery", "-ip=" + ip, "-profile-dir=" + profileDir}, args...)...)
	cmd.Stderr = logf
	cmd.SysProcAttr = childAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("discovery stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("starting discovery: %w", err)
	}
	c := &child{cmd: cmd, ready: make(chan struct{}), done: make(chan struct{}), http: &http.Client{Timeout: 2 * time.Minute}}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
		c.err = cmd.Wait()
		_ = logf.Close()
		close(c.done)
	}()
	select {
	case l, ok := <-lines:
		if !ok || !strings.HasPrefix(l, "debug ") {
			c.kill()
			return nil, fmt.Errorf("discovery did not start (see %s): %q", logPath, l)
		}
		c.debug = strings.TrimPrefix(l, "debug ")
	case <-time.After(time.Minute):
		c.kill()
		return nil, fmt.Errorf("discovery did not start within a minute (see %s)", logPath)
	}
	go func() {
		for l := range lines {
			if a, ok := strings.CutPrefix(l, "ads "); ok && c.ads == "" {
				c.ads = a // read only after ready is closed
				close(c.ready)
			}
		}
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// kill stops the child: SIGTERM, then SIGKILL after 10 s.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func (c *child) stats(gc bool) (stats, error) {
	u := "http://" + c.debug + "/stats"
	if gc {
		u += "?gc=1"
	}
	var s stats
	resp, err := c.http.Get(u)
	if err != nil {
		return s, fmt.Errorf("discovery stats: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("discovery stats: %w", err)
	}
	return s, nil
}

// post calls one of the child's POST endpoints.
func (c *child) post(path string) error {
	resp, err := c.http.Post("http://"+c.debug+path, "text/plain", nil)
	if err != nil {
		return fmt.Errorf("discovery %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("discovery %s: %s %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// saveHeapProfile writes the child's heap profile to path.
func (c *child) saveHeapProfile(path string) error {
	resp, err := c.http.Get("http://" + c.debug + "/debug/pprof/heap?gc=1")
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	return nil
}
