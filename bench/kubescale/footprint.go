package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// footprint is one real sidecar's cost with the run's configuration: `lucid sidecar` (the
// agent, the xDS client and the proxy binding its listeners) for the extra client workload
// (footprintClient), started after the fleet synced.
type footprint struct {
	ready    time.Duration // start → /healthz/ready (configuration received and applied)
	rss, hwm int64         // KiB, 3 s after ready
	services int           // outbound services in its configuration
}

// footprintClient is the workload the real sidecar runs for: one beyond the fleet.
func (l layout) footprintClient() int { return l.sidecars }

// buildLucid builds the lucid binary into dir.
func buildLucid(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "lucid")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/lucid-mesh/lucid/cmd/lucid")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building lucid: %w\n%s", err, out)
	}
	return bin, nil
}

// measureSidecar runs the real sidecar of the footprint client against ads until it is
// ready, then reads its memory.
func measureSidecar(ctx context.Context, bin, ads string, l layout, logPath string) (footprint, error) {
	i := l.footprintClient()
	ip := sidecarAddr(i)
	logf, err := os.Create(logPath)
	if err != nil {
		return footprint{}, err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, bin, "sidecar", "--ip", ip, "--workload", clientName(i), "--namespace", l.ns(i),
		"--discovery-address", ads, "--prometheus-port", "0", "--log-level", "warning")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return footprint{}, fmt.Errorf("starting the sidecar: %w", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	var fp footprint
	client := &http.Client{Timeout: time.Second}
	ready := "http://" + net.JoinHostPort(ip, "15020") + "/healthz/ready"
	for {
		if time.Since(start) > 5*time.Minute {
			return fp, fmt.Errorf("the sidecar was not ready after 5 minutes (log: %s)", logPath)
		}
		resp, err := client.Get(ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	fp.ready = time.Since(start)
	time.Sleep(3 * time.Second)
	m, err := readProcMem(cmd.Process.Pid)
	if err != nil {
		return fp, err
	}
	fp.rss, fp.hwm = m.rss, m.hwm
	for s := range l.services {
		if l.sees(i, s) {
			fp.services++
		}
	}
	return fp, nil
}
