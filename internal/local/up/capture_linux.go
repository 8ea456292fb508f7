package up

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/lucid-mesh/lucid/internal/contract/resolvconf"
	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
)

// captureMesh is what `lucid up --capture` created; close removes all of it.
type captureMesh struct {
	out    *Output
	run    string // RunDir()
	bridge netlink.Link
	dns    *clusterDNS // the pods' cluster resolver, on the bridge's address
	nss    string      // the pods' nsswitch.conf (podNameService)
	pods   []*pod
	relays []net.Listener
	stop   context.CancelFunc // the mirror's follower
	wg     sync.WaitGroup
	lock   string // run/up.pid
}

// pod is one workload's pod.
type pod struct {
	w      Workload
	key    string
	dir    string
	ip     netip.Addr
	holder *exec.Cmd
}

func (p *pod) pid() int { return p.holder.Process.Pid }

// Linux capability numbers (linux/capability.h) `up --capture` needs.
var captureCaps = []struct {
	bit  uint
	name string
	why  string
}{
	{6, "CAP_SETGID", "run the sidecars and apps under their own uids"},
	{7, "CAP_SETUID", "run the sidecars and apps under their own uids"},
	{12, "CAP_NET_ADMIN", "create the bridge, the veth pairs and the capture rules"},
	{21, "CAP_SYS_ADMIN", "create the pods' network and mount namespaces"},
}

// CaptureRequirements says what `up --capture` lacks to run here, or nil.
func CaptureRequirements() error {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("lucid up --capture: reading the process's capabilities: %w", err)
	}
	var eff uint64
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			eff, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	var missing []string
	for _, c := range captureCaps {
		if eff&(1<<c.bit) == 0 {
			missing = append(missing, c.name+" (to "+c.why+")")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("lucid up --capture needs root: it lacks %s; run it with sudo (it changes nothing of the machine's network but the %s bridge and the lucidv* veth pairs it creates and removes)",
			strings.Join(missing, ", "), CaptureBridge)
	}
	for _, tool := range []string{"iptables-restore", "iptables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("lucid up --capture needs %s (the iptables package) to install the pods' capture rules: %w", tool, err)
		}
	}
	return nil
}

// startCapture builds the pods for p's sidecars and rewrites p's processes to run in them:
// leftovers of an earlier run removed, the bridge, one pod per sidecar workload with its
// capture rules, the control plane's config mirror, admin relays. On error everything
// created is removed again.
func startCapture(ctx context.Context, p *Plan, opts Options, own map[string]netip.Addr, out *Output) (_ *captureMesh, err error) {
	cm := &captureMesh{out: out, run: RunDir()}
	defer func() {
		if err != nil {
			cm.close()
		}
	}()
	if err := cm.takeLock(); err != nil {
		return nil, err
	}
	if removed, err := cleanLinks(); err != nil {
		return nil, err
	} else if len(removed) > 0 {
		out.Printf("up", "removed %s left by an earlier lucid up --capture", strings.Join(removed, ", "))
	}
	if err := os.RemoveAll(filepath.Join(cm.run, "pods")); err != nil {
		return nil, err
	}
	r := cmpPrefix(opts.CaptureRange)
	routes, err := hostRoutes()
	if err != nil {
		return nil, err
	}
	if err := checkRangeFree(r, routes); err != nil {
		return nil, err
	}
	gw := r.Addr().Next()
	if cm.bridge, err = createBridge(netip.PrefixFrom(gw, r.Bits())); err != nil {
		return nil, err
	}
	cm.startClusterDNS(gw)
	if b, err := os.ReadFile("/etc/nsswitch.conf"); err == nil {
		cm.nss = string(b)
	}
	// The WorkloadEntries' own addresses first, then the range's free ones for the rest.
	ips, used := map[string]netip.Addr{}, map[netip.Addr]bool{gw: true}
	for _, w := range p.Workloads {
		key := w.Namespace + "/" + w.Name
		a, ok := own[key]
		if !ok || w.Router {
			continue
		}
		if usable, why := podAddress(a, gw, routes); !usable || used[a] {
			if used[a] {
				why = "the address of another pod"
			}
			out.Printf("up", "%s: spec.address %s cannot be its pod's (%s); the pod gets one of %s", key, a, why, r)
			continue
		}
		ips[key], used[a] = a, true
	}
	next := gw
	addrs := map[string]string{}
	for _, w := range p.Workloads {
		if w.Router {
			continue // gateways run beside the control plane, as Istio's ingress gateway
		}
		key := w.Namespace + "/" + w.Name
		ip, bits := ips[key], r.Bits()
		if !ip.IsValid() {
			next = nextFree(next, used)
			if !r.Contains(next) || next == lastAddr(r) {
				return nil, fmt.Errorf("the pod range %s has no address left for %s", r, key)
			}
			ip = next
		} else if !r.Contains(ip) {
			bits = 32
		}
		if _, err := cm.startPod(w, ip, gw, bits, opts.Executable); err != nil {
			return nil, fmt.Errorf("pod for %s: %w", key, err)
		}
		addrs[key] = ip.String()
	}
	if err := routeOwnAddresses(cm.bridge, cm.pods, r); err != nil {
		return nil, err
	}

	// The control plane reads the mirror with the pods' addresses.
	m := &mirror{src: opts.Dir, dst: filepath.Join(discovery.StateDirFor(opts.Dir), "capture-config"), addrs: addrs}
	if err := os.MkdirAll(m.dst, 0o700); err != nil {
		return nil, err
	}
	if err := m.sync(); err != nil {
		return nil, err
	}
	mctx, stop := context.WithCancel(ctx)
	cm.stop = stop
	cm.wg.Go(func() {
		m.follow(mctx, 300*time.Millisecond, func(err error) { out.Printf("up", "%v", err) })
	})
	p.Discovery.Args = setFlag(p.Discovery.Args, "--config-dir", m.dst)
	return cm, cm.rewrite(p, opts.Executable)
}

// startPod creates w's pod with address ip: holder, veth, capture rules.
func (cm *captureMesh) startPod(w Workload, ip, gw netip.Addr, bits int, exe string) (*pod, error) {
	pd := &pod{w: w, key: podKey(w.Name, w.Namespace), ip: ip}
	pd.dir = filepath.Join(cm.run, "pods", pd.key)
	if err := os.MkdirAll(pd.dir, 0o711); err != nil { //nolint:gosec // G301: the sidecar's uid opens its root-cert.pem here
		return nil, err
	}
	hosts, resolv, nss := podNameService(w, ip, gw, cm.nss)
	files := map[string]string{"hosts": hosts, "resolv.conf": resolv, "nsswitch.conf": nss}
	for name, body := range files {
		if body == "" {
			delete(files, name)
			continue
		}
		files[name] = filepath.Join(pd.dir, name)
		if err := os.WriteFile(files[name], []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	h, err := startHolder(exe, files["hosts"], files["resolv.conf"], files["nsswitch.conf"])
	if err != nil {
		return nil, err
	}
	pd.holder = h
	cm.pods = append(cm.pods, pd)
	if err := connectPod(cm.bridge, len(cm.pods)-1, pd.pid(), netip.PrefixFrom(ip, bits), gw); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(pd.dir, "holder.pid"), []byte(strconv.Itoa(pd.pid())+"\n"), 0o644); err != nil {
		return nil, err
	}
	// istio-init: the same command, flags and DNS capture setting the injector gives it.
	rules := inPod(Process{Path: exe, Args: podRulesArgs()}, exe, pd.pid(), -1, "")
	cmd := exec.Command(rules.Path, rules.Args...)
	cmd.Env = append(os.Environ(), podDNSEnv[0])
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("capture rules (lucid %s): %w\n%s", strings.Join(podRulesArgs(), " "), err, b)
	}
	return pd, nil
}

// podRulesArgs is the istio-init command of every pod: Istio's REDIRECT rule set (the
// injector's defaults), the sidecar's status and metrics ports excluded from inbound capture.
func podRulesArgs() []string {
	return []string{"iptables", "-p", strconv.Itoa(OutboundPort), "-z", strconv.Itoa(InboundCapturePort),
		"-u", strconv.Itoa(ProxyUID), "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020"}
}

// podDNSEnv is the proxy metadata of every pod (on istio-init and the sidecar, as the
// injector sets a pod's proxyMetadata): DNS capture, auto-allocated addresses for
// ServiceEntries without one.
var podDNSEnv = []string{"ISTIO_META_DNS_CAPTURE=true", "ISTIO_META_DNS_AUTO_ALLOCATE=true"}

// startClusterDNS starts the pods' cluster resolver on the bridge's address (capture_dns.go),
// forwarding to the machine's resolvers. Without it the pods still resolve the mesh's names
// (their agents answer them); up says what they lack.
func (cm *captureMesh) startClusterDNS(gw netip.Addr) {
	rc, err := resolvconf.Read("/etc/resolv.conf")
	if err != nil {
		cm.out.Printf("up", "names outside the mesh do not resolve in the pods: the machine's resolvers: %v", err)
	} else if len(rc.Upstreams) == 0 {
		cm.out.Printf("up", "names outside the mesh do not resolve in the pods: /etc/resolv.conf names no resolver")
	}
	addr := net.JoinHostPort(gw.String(), "53")
	if cm.dns, err = startClusterDNS(addr, rc.Upstreams); err != nil {
		cm.out.Printf("up", "names outside the mesh do not resolve in the pods: their resolver %s: %v", addr, err)
	}
}

// InboundCapturePort is where the rules send a pod's inbound connections (Istio's 15006).
const InboundCapturePort = 15006

// rewrite makes p's sidecars and apps run in their pods.
func (cm *captureMesh) rewrite(p *Plan, exe string) error {
	byKey := map[string]*pod{}
	for _, pd := range cm.pods {
		byKey[pd.w.Namespace+"/"+pd.w.Name] = pd
	}
	for i := range p.Sidecars {
		sc := &p.Sidecars[i]
		w := processWorkload(p, sc)
		if w == nil || byKey[w.Namespace+"/"+w.Name] == nil {
			return fmt.Errorf("%s: no pod", sc.Name)
		}
		pd := byKey[w.Namespace+"/"+w.Name]
		sc.Args = setFlag(sc.Args, "--ip", pd.ip.String())
		sc.Args = setFlag(sc.Args, "--app-address", "127.0.0.1")
		copyRoot := ""
		for j := 0; j+1 < len(sc.Args); j++ {
			if sc.Args[j] == "--ca-root-cert" {
				// The state directory is root's: the roots are copied where the sidecar reads.
				dst := filepath.Join(pd.dir, "root-cert.pem")
				copyRoot = sc.Args[j+1] + ":" + dst
				sc.Args[j+1] = dst
			}
		}
		sc.Env = setEnv(sc.Env, "ISTIO_META_INTERCEPTION_MODE", "REDIRECT")
		for _, kv := range podDNSEnv {
			k, v, _ := strings.Cut(kv, "=")
			sc.Env = setEnv(sc.Env, k, v)
		}
		sc.Ready = "http://" + hostPort(pd.ip.String(), StatusPort) + "/healthz/ready"
		sc.Binds = nil // in the pod; the admin relay checks the host side
		*sc = inPod(*sc, exe, pd.pid(), ProxyUID, copyRoot)
		ln, err := net.Listen("tcp", hostPort(w.Admin, AdminPort))
		if err != nil {
			return fmt.Errorf("%s needs %s for its admin API, which is not free: %w", sc.Name, hostPort(w.Admin, AdminPort), err)
		}
		cm.relays = append(cm.relays, ln)
		cm.wg.Go(func() { relay(ln, pd.pid(), hostPort(w.Admin, AdminPort)) })
	}
	for i := range p.Apps {
		ap := &p.Apps[i]
		pd := byKey[envValue(ap.Env, EnvNamespace)+"/"+envValue(ap.Env, EnvWorkload)]
		if pd == nil {
			return fmt.Errorf("%s: no pod", ap.Name)
		}
		ap.Env = setEnv(ap.Env, EnvWorkloadAddress, pd.ip.String())
		ap.Env = setEnv(ap.Env, EnvProxy, "") // no proxy setting: the pod's rules capture the calls
		ap.Listens = nil                      // in the pod, out of reach from here
		*ap = inPod(*ap, exe, pd.pid(), AppUID, "")
	}
	return nil
}

// relay serves the host side of a sidecar's admin API: the proxy binds it on its private
// loopback address inside the pod, where `lucid proxy-config`, `lucid why` and the
// dashboard cannot reach; the relay listens on the same address here and connects from
// inside the pod (a caller on the pod's loopback, which the admin API admits).
func relay(ln net.Listener, holder int, addr string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := dialInPod(holder, addr)
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{})
			go func() { _, _ = io.Copy(up, c); _ = up.(*net.TCPConn).CloseWrite(); close(done) }()
			_, _ = io.Copy(c, up)
			_ = c.(*net.TCPConn).CloseWrite()
			<-done
		}()
	}
}

// close removes everything startCapture created: relays, pods (their namespaces, veths
// and rules go with their holders), the bridge, the pods' files.
func (cm *captureMesh) close() {
	if cm.stop != nil {
		cm.stop()
	}
	for _, ln := range cm.relays {
		_ = ln.Close()
	}
	for _, pd := range cm.pods {
		stopHolder(pd.holder)
	}
	if cm.dns != nil {
		cm.dns.close()
	}
	if cm.bridge != nil {
		if err := netlink.LinkDel(cm.bridge); err != nil && !errors.Is(err, syscall.ENODEV) {
			cm.out.Printf("up", "removing bridge %s: %v", CaptureBridge, err)
		}
	}
	// A pod's veth goes with its namespace, asynchronously: wait until the kernel dropped them.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if left, err := cleanLinks(); err != nil || len(left) == 0 {
			break
		}
	}
	_ = os.RemoveAll(filepath.Join(cm.run, "pods"))
	if cm.lock != "" {
		_ = os.Remove(cm.lock)
	}
	cm.wg.Wait()
}

// takeLock refuses a second `up --capture` while one runs (it would remove the first's
// bridge as a leftover).
func (cm *captureMesh) takeLock() error {
	if err := os.MkdirAll(cm.run, 0o711); err != nil { //nolint:gosec // G301: the sidecars' uid passes through to their pod's files
		return fmt.Errorf("lucid up --capture: %w", err)
	}
	lock := filepath.Join(cm.run, "up.pid")
	if b, err := os.ReadFile(lock); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == nil {
			if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmdline), "up") {
				return fmt.Errorf("another lucid up --capture is running (pid %d, lock %s): stop it first", pid, lock)
			}
		}
	}
	if err := os.WriteFile(lock, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	cm.lock = lock
	return nil
}

// welcome prints the pods and how to send requests from inside one.
func (cm *captureMesh) welcome(say func(string, ...any), p *Plan) {
	say("pods (traffic captured: apps call services by name, no proxy setting; bridge %s):", CaptureBridge)
	for _, pd := range cm.pods {
		say("  %-20s %-12s sidecar uid %d, app uid %d", pd.key, pd.ip, ProxyUID, AppUID)
	}
	for _, pd := range cm.pods {
		if pd.w.HasApp {
			continue
		}
		say("run any program in %s's pod; its connections go through the sidecar:", pd.key)
		for _, svc := range p.Services {
			for _, port := range svc.Ports {
				say("  lucid exec %s -- curl -s http://%s:%d/", pd.key, shortHost(svc.Host, pd.w.Namespace), port.Number)
			}
		}
	}
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// lastAddr is r's broadcast address.
func lastAddr(r netip.Prefix) netip.Addr {
	a := r.Addr().As4()
	host := uint32(1)<<(32-r.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
