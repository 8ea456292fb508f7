// Package kubenode runs a real single-node Kubernetes for tests: internal/testutil/kubetest's
// etcd, kube-apiserver and kube-controller-manager (all controllers), plus kube-scheduler, a
// kubelet and containerd with runc and the CNI bridge plugin, so Pods really run: the
// injected istio-init applies its rules in the pod's network namespace, the sidecar runs
// beside the app, and the kubelet probes, restarts and deletes containers. It sits under
// test/node, which installs Lucid onto it with `lucid install --apply`.
//
// Images are built from the working tree (lucid, statically linked) and packed without a
// Docker daemon or a registry (go-containerregistry), then imported into containerd; nothing
// is ever pulled. Pods live in network namespaces on a bridge the harness creates
// (PodSubnet, the node is its gateway address NodeIP), with no masquerading, no route out and
// a FORWARD rule that drops anything leaving the subnet. The Service CIDR is loopback
// (kubetest's), and there is no kube-proxy and no cluster DNS: on NodeIP, a forwarder stands
// in for the API server's address and DNAT rules for chosen Services' (forward.go).
//
// One node runs per machine at a time (a file lock, LockPath); Stop removes everything the
// node put on the machine (processes, mounts, cgroups, the bridge, iptables rules, network
// namespace files) and reports anything left. Requirements (root, Linux, the binaries of
// `make kube-bins`, Debian's containerd, runc and containernetworking-plugins, iptables)
// are checked by Require, which skips a test where they are missing, but fails it under CI.
// See docs/kubernetes-node.md.
package kubenode

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lucid-mesh/lucid/internal/testutil/kubetest"
)

// The node's names and addresses.
const (
	NodeName  = "lucid-node"
	Bridge    = "lucidnode0"
	PodSubnet = "10.213.0.0/24"
	NodeIP    = "10.213.0.1" // the bridge's address: the kubelet's, and the forwarders'
	cniBinDir = "/usr/lib/cni"

	// APIServerName is the name pods reach the API server by (a name in its serving
	// certificate), mapped to NodeIP with a host alias (InClusterAPI); APIServerPort is the
	// forwarder's port there.
	APIServerName = "kubernetes.default.svc"
	APIServerPort = 6443
)

// Options configure Start. The zero value works.
type Options struct {
	// Logf receives progress and timings; default log.Printf.
	Logf func(format string, args ...any)
	// LockTimeout is how long to wait for another test process's node; default 20 min.
	LockTimeout time.Duration
}

// Node is a running node and its control plane.
type Node struct {
	*kubetest.Cluster
	// Dir holds the node's files: containerd's root and state, the kubelet's root, pod
	// logs, the CNI configuration and the processes' logs.
	Dir string
	// Timings are how long each start step took, in order.
	Timings []Timing

	logf                           func(string, ...any)
	lockFile                       *os.File
	containerd, scheduler, kubelet *proc
	ipForward, bridgeNF            []byte // sysctls to restore
	mu                             sync.Mutex
	forwarders                     []*forwarder
	natReady                       bool
	services                       services
	watchCtx                       context.Context
	stopWatch                      context.CancelFunc
	watchers                       sync.WaitGroup
	stopOnce                       sync.Once
	stopErr                        error
}

// Timing is one step of Start.
type Timing struct {
	Step string
	Took time.Duration
}

// ErrUnavailable wraps why this machine cannot run a node (Require turns it into a skip).
var ErrUnavailable = errors.New("kubenode: this machine cannot run a Kubernetes node")

// Check reports why this machine cannot run a node, or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root (containerd, network namespaces, cgroups)", ErrUnavailable)
	}
	var missing []string
	for _, b := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "etcd"} {
		if _, err := os.Stat(filepath.Join(kubetest.BinDir(), b)); err != nil {
			missing = append(missing, b+" (run `make kube-bins`)")
		}
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "iptables", "ip", "go"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, p)); err != nil {
			missing = append(missing, cniBinDir+"/"+p)
		}
	}
	if _, err := exec.LookPath("xtables-nft-multi"); err != nil {
		missing = append(missing, "xtables-nft-multi")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s (apt-get install containerd runc containernetworking-plugins iptables)",
			ErrUnavailable, strings.Join(missing, ", "))
	}
	return nil
}

// Start builds the images, starts the node and returns once it is Ready. Call Stop.
func Start(ctx context.Context, o Options) (n *Node, err error) {
	if o.Logf == nil {
		o.Logf = log.Printf
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = 20 * time.Minute
	}
	if err := Check(); err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, o.LockTimeout)
	lf, err := lock(lctx, o.Logf)
	cancel()
	if err != nil {
		return nil, err
	}
	n = &Node{logf: o.Logf, lockFile: lf}
	defer func() {
		if err != nil {
			o.Logf("kubenode: start failed: %v\n%s", err, n.Logs(40))
			_ = n.Stop()
		}
	}()
	sweep(o.Logf) // what a crashed run left
	if n.Dir, err = os.MkdirTemp("", dirPrefix); err != nil {
		return n, fmt.Errorf("kubenode: %w", err)
	}
	step := n.stepper()

	tars, err := buildImages(ctx, n.Dir)
	if err != nil {
		return n, err
	}
	step("build and pack images (lucid, demo-app, pause) from the working tree")

	if err := n.network(); err != nil {
		return n, err
	}
	if err := n.startContainerd(ctx, tars); err != nil {
		return n, err
	}
	step("bridge, containerd, images imported")

	p, err := writeNodePKI(n.Dir)
	if err != nil {
		return n, err
	}
	n.Cluster, err = kubetest.Start(ctx, kubetest.Options{
		Controllers: []string{"*"},
		APIServerArgs: []string{
			"--client-ca-file=" + p.caCert,
			"--kubelet-client-certificate=" + p.apiserverClient,
			"--kubelet-client-key=" + p.apiserverKy,
			"--kubelet-certificate-authority=" + p.caCert,
			"--kubelet-preferred-address-types=InternalIP",
			"--enable-admission-plugins=NodeRestriction",
			// Webhooks and aggregated APIs are called at an endpoint of their Service:
			// ClusterIPs route nowhere here.
			"--enable-aggregator-routing=true",
		},
	})
	if err != nil {
		return n, err
	}
	step("etcd, kube-apiserver, kube-controller-manager")

	api, err := url.Parse(n.Config.Host)
	if err != nil {
		return n, fmt.Errorf("kubenode: %w", err)
	}
	if err := n.forward(net.JoinHostPort(NodeIP, strconv.Itoa(APIServerPort)), func(context.Context) (string, error) { return api.Host, nil }); err != nil {
		return n, err
	}
	if err := n.startNode(ctx, p); err != nil {
		return n, err
	}
	step("kube-scheduler, kubelet, node Ready")
	return n, nil
}

func (n *Node) stepper() func(string) {
	last := time.Now()
	return func(what string) {
		now := time.Now()
		n.Timings = append(n.Timings, Timing{Step: what, Took: now.Sub(last)})
		n.logf("kubenode: %s: %s", what, now.Sub(last).Round(10*time.Millisecond))
		last = now
	}
}

// network creates the bridge (its address is the node's, so it must exist before the
// kubelet starts) and the FORWARD rule that keeps pods inside the subnet.
func (n *Node) network() error {
	n.ipForward, _ = os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	// Bridged traffic must pass iptables, so that replies to DNATed connections (ExposeService)
	// are translated back, as kube-proxy requires of a bridge CNI.
	const bridgeNF = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	switch b, err := os.ReadFile(bridgeNF); {
	case err != nil:
		return fmt.Errorf("%w: %s: %w (the kernel's br_netfilter is needed)", ErrUnavailable, bridgeNF, err)
	case strings.TrimSpace(string(b)) != "1":
		n.bridgeNF = b
		if err := os.WriteFile(bridgeNF, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("kubenode: %s: %w", bridgeNF, err)
		}
	}
	for _, args := range [][]string{
		{"ip", "link", "add", Bridge, "type", "bridge"},
		{"ip", "addr", "add", NodeIP + "/24", "dev", Bridge},
		{"ip", "link", "set", Bridge, "up"},
		append([]string{"iptables", "-I"}, forwardRule...),
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("kubenode: %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

func (n *Node) socket() string { return filepath.Join(n.Dir, "containerd", "containerd.sock") }

func (n *Node) startContainerd(ctx context.Context, tars []string) error {
	cdir := filepath.Join(n.Dir, "containerd")
	if err := writeFiles(map[string]string{
		filepath.Join(cdir, "config.toml"):                        containerdConfig(n.Dir),
		filepath.Join(n.Dir, "cni", "net.d", "10-lucid.conflist"): cniConfig(filepath.Join(n.Dir, "cni", "ipam")),
	}); err != nil {
		return err
	}
	var err error
	// Images are never pulled; should anything try, the proxy address refuses at once and
	// nothing leaves the machine.
	n.containerd, err = startProc("containerd", "containerd", []string{"--config", filepath.Join(cdir, "config.toml")},
		[]string{"HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9", "NO_PROXY=", "no_proxy="},
		filepath.Join(n.Dir, "containerd.log"))
	if err != nil {
		return err
	}
	if err := n.waitFor(ctx, n.containerd, 30*time.Second, "containerd's socket", func() bool {
		return exec.CommandContext(ctx, "ctr", "-a", n.socket(), "version").Run() == nil
	}); err != nil {
		return err
	}
	for _, tar := range tars {
		if out, err := exec.CommandContext(ctx, "ctr", "-a", n.socket(), "-n", "k8s.io", "images", "import", tar).CombinedOutput(); err != nil {
			return fmt.Errorf("kubenode: ctr images import %s: %w: %s", tar, err, out)
		}
	}
	return nil
}

func (n *Node) startNode(ctx context.Context, p *nodePKI) error {
	kubeletKubeconfig := filepath.Join(n.Dir, "kubelet.kubeconfig")
	if err := writeClientKubeconfig(kubeletKubeconfig, n.Config.Host, n.CAPEM, p.kubeletClient, p.kubeletClKey); err != nil {
		return err
	}
	kubeletCfg := filepath.Join(n.Dir, "kubelet-config.yaml")
	if err := writeFiles(map[string]string{kubeletCfg: kubeletConfig(n.Dir, p)}); err != nil {
		return err
	}
	bin := kubetest.BinDir()
	var err error
	n.scheduler, err = startProc("kube-scheduler", filepath.Join(bin, "kube-scheduler"), []string{
		"--kubeconfig=" + n.Kubeconfig,
		"--authentication-kubeconfig=" + n.Kubeconfig,
		"--authorization-kubeconfig=" + n.Kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=10259",
		"--cert-dir=" + filepath.Join(n.Dir, "scheduler"),
	}, nil, filepath.Join(n.Dir, "kube-scheduler.log"))
	if err != nil {
		return err
	}
	n.kubelet, err = startProc("kubelet", filepath.Join(bin, "kubelet"), []string{
		"--config=" + kubeletCfg,
		"--kubeconfig=" + kubeletKubeconfig,
		"--root-dir=" + filepath.Join(n.Dir, "kubelet"),
		"--cert-dir=" + filepath.Join(n.Dir, "kubelet", "pki"),
		"--hostname-override=" + NodeName,
		"--node-ip=" + NodeIP,
		"-v=2",
	}, nil, filepath.Join(n.Dir, "kubelet.log"))
	if err != nil {
		return err
	}
	dyn, err := n.Dynamic()
	if err != nil {
		return err
	}
	return n.waitFor(ctx, n.kubelet, 2*time.Minute, "node "+NodeName+" Ready", func() bool {
		if n.scheduler.exited() {
			return false
		}
		node, err := dyn.Resource(kubetest.Nodes).Get(ctx, NodeName, metav1.GetOptions{})
		return err == nil && nodeReady(node)
	})
}

func nodeReady(node *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(node.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Ready" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// waitFor polls ok every 100 ms until it holds, p exits, or timeout.
func (n *Node) waitFor(ctx context.Context, p *proc, timeout time.Duration, what string, ok func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !ok() {
		if p.exited() {
			return p.exitError()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kubenode: waiting for %s: %w; %s log ends:\n%s", what, ctx.Err(), p.name, p.tail(30))
		case <-tick.C:
		}
	}
	return nil
}

func (n *Node) forward(addr string, target func(context.Context) (string, error)) error {
	f, err := startForwarder(addr, target, n.logf)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.forwarders = append(n.forwarders, f)
	n.mu.Unlock()
	return nil
}

// ExposeService makes Service ns/name's port (named portName) reachable from pods at
// NodeIP:port, as kube-proxy would at its ClusterIP: DNAT to one of its ready endpoints,
// kept in step with them (checked every 200 ms) until the node stops. It returns the
// address once the Service has a ready endpoint.
func (n *Node) ExposeService(ctx context.Context, ns, name, portName string, port int) (string, error) {
	dyn, err := n.Dynamic()
	if err != nil {
		return "", err
	}
	n.mu.Lock()
	if !n.natReady {
		for _, args := range [][]string{
			{"-t", "nat", "-N", natChain},
			{"-t", "nat", "-I", "PREROUTING", "-d", NodeIP + "/32", "-j", natChain},
		} {
			if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
				n.mu.Unlock()
				return "", fmt.Errorf("kubenode: iptables %s: %w: %s", strings.Join(args, " "), err, out)
			}
		}
		n.natReady = true
	}
	if n.watchCtx == nil {
		n.watchCtx, n.stopWatch = context.WithCancel(context.Background())
	}
	wctx := n.watchCtx
	n.mu.Unlock()
	sync := func(ctx context.Context) (int, error) {
		eps, err := serviceEndpoints(ctx, dyn, ns, name, portName)
		if err != nil {
			return 0, err
		}
		changed, err := n.services.set(port, eps)
		if changed {
			n.logf("kubenode: %s:%d → service %s/%s endpoints %v", NodeIP, port, ns, name, eps)
		}
		return len(eps), err
	}
	if err := n.waitFor(ctx, n.kubelet, 3*time.Minute, "a ready endpoint of "+ns+"/"+name, func() bool {
		k, err := sync(ctx)
		return err == nil && k > 0
	}); err != nil {
		return "", err
	}
	n.watchers.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
				if _, err := sync(wctx); err != nil && wctx.Err() == nil {
					n.logf("kubenode: %v", err)
				}
			}
		}
	})
	return net.JoinHostPort(NodeIP, strconv.Itoa(port)), nil
}

// Lucid is the lucid binary the images were built from (for `lucid install --apply`, ...).
func (n *Node) Lucid() string { return filepath.Join(n.Dir, "bin", "lucid") }

// InClusterAPI is what a pod needs to reach the API server with its in-cluster
// configuration here: the environment that points client-go at APIServerName:APIServerPort
// (container env wins over the kubelet's KUBERNETES_SERVICE_* for the loopback ClusterIP)
// and the host alias that resolves that name to the node.
func InClusterAPI() ([]corev1.EnvVar, []corev1.HostAlias) {
	return []corev1.EnvVar{
			{Name: "KUBERNETES_SERVICE_HOST", Value: APIServerName},
			{Name: "KUBERNETES_SERVICE_PORT", Value: strconv.Itoa(APIServerPort)},
		}, []corev1.HostAlias{
			{IP: NodeIP, Hostnames: []string{APIServerName}},
		}
}

// Logs are the last n lines of every node process's log, for a failure message.
func (n *Node) Logs(lines int) string {
	var b strings.Builder
	for _, p := range []*proc{n.containerd, n.scheduler, n.kubelet} {
		if p != nil {
			fmt.Fprintf(&b, "--- %s (%s), last %d lines:\n%s\n", p.name, p.log, lines, p.tail(lines))
		}
	}
	if n.Cluster != nil {
		b.WriteString(n.Cluster.Logs(lines))
	}
	return b.String()
}

// Stop deletes the pods (the kubelet tears their sandboxes down: CNI, mounts), stops every
// process, removes what the node put on the machine and releases the lock. It returns an
// error naming anything still left. Safe to call more than once.
func (n *Node) Stop() error {
	n.stopOnce.Do(func() { n.stopErr = n.stop() })
	return n.stopErr
}

func (n *Node) stop() error {
	start := time.Now()
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n.scheduler.stop() // nothing new is placed on the node
	if n.Cluster != nil && n.kubelet != nil && !n.kubelet.exited() {
		if err := n.deletePods(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	n.kubelet.stop()
	if n.containerd != nil && !n.containerd.exited() {
		if k, err := removeSandboxes(ctx, n.socket()); err != nil {
			errs = append(errs, err)
		} else if k > 0 {
			n.logf("kubenode: removed %d pod sandboxes the kubelet left", k)
		}
	}
	n.containerd.stop()
	n.mu.Lock()
	for _, f := range n.forwarders {
		f.close()
	}
	n.forwarders = nil
	if n.stopWatch != nil {
		n.stopWatch()
	}
	n.mu.Unlock()
	n.watchers.Wait()
	if n.Cluster != nil {
		n.Cluster.Stop()
	}
	sweep(n.logf)
	if len(n.ipForward) > 0 {
		_ = os.WriteFile("/proc/sys/net/ipv4/ip_forward", n.ipForward, 0o644)
	}
	if len(n.bridgeNF) > 0 {
		_ = os.WriteFile("/proc/sys/net/bridge/bridge-nf-call-iptables", n.bridgeNF, 0o644)
	}
	if left := leftovers(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("kubenode: left on the machine after stop: %s", strings.Join(left, "; ")))
	}
	if n.lockFile != nil {
		_ = n.lockFile.Close()
	}
	n.logf("kubenode: stopped and cleaned up in %s", time.Since(start).Round(10*time.Millisecond))
	return errors.Join(errs...)
}

// deletePods deletes every pod on the node with a 1 s grace period and waits until the
// kubelet has removed them all.
func (n *Node) deletePods(ctx context.Context) error {
	dyn, err := n.Dynamic()
	if err != nil {
		return err
	}
	grace := int64(1)
	onNode := metav1.ListOptions{FieldSelector: "spec.nodeName=" + NodeName}
	list, err := dyn.Resource(kubetest.Pods).Namespace("").List(ctx, onNode)
	if err != nil {
		return fmt.Errorf("kubenode: list pods: %w", err)
	}
	for _, p := range list.Items {
		_ = dyn.Resource(kubetest.Pods).Namespace(p.GetNamespace()).Delete(ctx, p.GetName(), metav1.DeleteOptions{GracePeriodSeconds: &grace})
	}
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	return n.waitFor(wctx, n.kubelet, 90*time.Second, "the node's pods to be gone", func() bool {
		l, err := dyn.Resource(kubetest.Pods).Namespace("").List(wctx, onNode)
		return err == nil && len(l.Items) == 0
	})
}
