package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/lucid-mesh/lucid/bench/internal/httpload"
)

// env is one run's fixed parts: addresses, binaries, the work and state directories.
type env struct {
	net     string // 127.0.N
	lucid   string // the lucid binary
	work    string // scratch: configurations, logs
	state   string // the mesh CA's state, kept for the whole run
	profile string // with -profile: where CPU profiles go
}

// Hosts in the run's /24.
const (
	upstreamHost      byte = 1 // nginx answering 1 KiB
	haproxyClientHost byte = 2
	haproxyServerHost byte = 3
	webSidecarHost    byte = 5 // web's sidecar, inbound :8080; web's app is the upstream
	clientSidecarHost byte = 6 // the client workload's sidecar, explicit proxy :15001
	discoveryHost     byte = 9
)

// webHost is the service the load asks for.
const webHost = "web.default.svc.cluster.local"

// bodySize is the upstream's answer.
const bodySize = 1024

func (e *env) ip(host byte) string { return e.net + "." + strconv.Itoa(int(host)) }

func (e *env) addr(host byte, port int) string {
	return net.JoinHostPort(e.ip(host), strconv.Itoa(port))
}

// variant is what one measurement's pair is configured for.
type variant struct {
	h2      bool // HTTP/2 between the two proxies (else HTTP/1.1)
	newConn bool // a new connection (and handshake) per request (else keep-alive)
}

// pair is the two proxies of one measurement and the processes started for it.
type pair struct {
	env            *env
	cmds           []*exec.Cmd
	client, server int    // the two proxies' pids
	addr, head     string // where the load goes and its request head
	// serverConns is how many connections the second proxy has accepted so far.
	serverConns func() (int64, error)
}

// start runs a process (on CPU cpu when not empty) with secret on fd 3, logging to
// the work directory; it returns the pid. It dies with the bench (Pdeathsig).
func (p *pair) start(name string, env []string, secret []byte, cpu, bin string, args ...string) (int, error) {
	if cpu != "" {
		args = append([]string{"-c", cpu, bin}, args...)
		bin = "taskset"
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(p.env.work, name+".log"))
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if len(secret) > 0 {
		r, w, err := os.Pipe()
		if err != nil {
			return 0, err
		}
		_, _ = w.Write(secret) // far below a pipe's buffer
		_ = w.Close()
		defer r.Close()
		cmd.ExtraFiles = []*os.File{r}
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	p.cmds = append(p.cmds, cmd)
	return cmd.Process.Pid, nil
}

// stop kills every process of the pair (a benchmark has no use for their drain).
func (p *pair) stop() {
	for _, c := range p.cmds {
		_ = c.Process.Kill()
		_, _ = c.Process.Wait()
	}
	p.cmds = nil
}

// fail stops the pair and returns err with the logs' place.
func (p *pair) fail(err error) error {
	p.stop()
	return fmt.Errorf("%w (logs in %s)", err, p.env.work)
}

// ready waits until a request gets through the pair (configuration and certificates in).
func (p *pair) ready() error {
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if last = httpload.OneShot(p.addr, []byte(p.head+"Connection: close\r\n\r\n"), bodySize, time.Now().Add(2*time.Second)); last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p.fail(fmt.Errorf("no answer through the pair at %s: %w", p.addr, last))
}

// waitHTTP waits for a 200 from url.
func waitHTTP(url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no 200 from %s within %s", url, d)
}

// startUpstream runs nginx answering 1 KiB from memory on the run's first address (on
// the bench's CPU: it inherits the affinity).
func (e *env) startUpstream(p *pair) error {
	dir := filepath.Join(e.work, "upstream")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	body := make([]byte, bodySize)
	for i := range body {
		body[i] = 'x'
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path %[1]s;
  server {
    listen %[2]s;
    keepalive_requests 1000000;
    location / { default_type text/plain; return 200 "%[3]s"; }
  }
}
`, dir, e.addr(upstreamHost, 8080), body)
	f := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
		return err
	}
	if _, err := p.start("upstream", nil, nil, "", "nginx", "-c", f, "-p", dir); err != nil {
		return err
	}
	return waitHTTP("http://"+e.addr(upstreamHost, 8080)+"/", 10*time.Second)
}
