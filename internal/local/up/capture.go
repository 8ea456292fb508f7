package up

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// `lucid up --capture DIR`: the mesh as Kubernetes runs it. Each workload with a sidecar
// runs in a pod of its own (network and mount namespaces, capture_pod_linux.go) on a bridge
// (capture_net_linux.go), with an address from the pod range; `lucid iptables` installs
// Istio's capture rules in it, the sidecar runs as uid 1337 and the app as AppUID, and the
// app calls http://reviews:9080/ with no proxy setting: its connections are captured.
// Discovery and the gateways stay in the namespace `lucid up` runs in, the control plane on
// the bridge's address. `lucid exec WORKLOAD -- CMD` runs a command in a pod (ExecInPod).

// Uids inside the pods: Istio's proxy uid (its traffic is never captured) and the apps'.
const (
	ProxyUID = 1337
	AppUID   = 65534 // nobody
)

// DefaultCaptureRange is the pods' private range: the bridge takes its first address.
var DefaultCaptureRange = netip.MustParsePrefix("10.213.0.0/24")

// EnvRunDir overrides where `lucid up --capture` keeps the pods' files (DefaultRunDir):
// their hosts, resolv.conf and nsswitch.conf, the holders' pids `lucid exec` joins.
const (
	EnvRunDir     = "LUCID_RUN_DIR"
	DefaultRunDir = "/run/lucid"
)

// RunDir is the directory of the running pods' files.
func RunDir() string { return cmp.Or(os.Getenv(EnvRunDir), DefaultRunDir) }

// podKey names a workload's pod: "name" in namespace default, else "name.namespace" (the
// name `lucid exec` takes).
func podKey(name, ns string) string {
	if ns == "default" || ns == "" {
		return name
	}
	return name + "." + ns
}

// PodDir is the directory of a pod's files; key is a workload as `lucid exec` takes it
// (name, name.namespace or namespace/name).
func PodDir(key string) string {
	if ns, name, ok := strings.Cut(key, "/"); ok {
		key = podKey(name, ns)
	}
	return filepath.Join(RunDir(), "pods", key)
}

// PodHolder reads the pid of the process holding a pod's namespaces.
func PodHolder(key string) (int, error) {
	dir := PodDir(key)
	b, err := os.ReadFile(filepath.Join(dir, "holder.pid"))
	if err != nil {
		var running []string
		if es, err := os.ReadDir(filepath.Join(RunDir(), "pods")); err == nil {
			for _, e := range es {
				running = append(running, e.Name())
			}
		}
		if len(running) == 0 {
			return 0, fmt.Errorf("no pod %q: is `lucid up --capture` running? (it keeps its pods in %s)", key, RunDir())
		}
		return 0, fmt.Errorf("no pod %q; the pods are: %s", key, strings.Join(running, ", "))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", filepath.Join(dir, "holder.pid"), err)
	}
	// After a crash the pid may be another process's: never join that one's namespaces.
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || !strings.Contains(string(cmdline), "internal-pod-hold") {
		return 0, fmt.Errorf("pod %q is gone (its holder, pid %d, is not running): is `lucid up --capture` running?", key, pid)
	}
	return pid, nil
}

// captureObjects returns objs with every sidecar WorkloadEntry's app on 127.0.0.1 (in a pod
// the app listens on its own loopback, where the sidecar reaches it without capture), and
// the WorkloadEntries whose address is not loopback ("namespace/name" → address): the
// plan gives them a stand-in loopback address of ownStandIn (its admin address derives from
// it), their pod gets their own address when it is usable (podAddress).
func captureObjects(objs []*config.Object) ([]*config.Object, map[string]netip.Addr) {
	out := slices.Clone(objs)
	own := map[string]netip.Addr{}
	taken := map[netip.Addr]bool{}
	for _, o := range objs {
		if we, ok := o.Spec.(*networkingv1alpha3.WorkloadEntry); ok {
			if a, err := netip.ParseAddr(we.GetAddress()); err == nil {
				taken[a] = true
			}
		}
	}
	standIn := ownStandIn.Addr()
	for i, o := range out {
		we, ok := o.Spec.(*networkingv1alpha3.WorkloadEntry)
		if o.Kind != config.KindWorkloadEntry || isRouter(o) || !ok {
			continue
		}
		c := *o
		c.Annotations = maps.Clone(o.Annotations)
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[AnnotationAppAddress] = "127.0.0.1"
		if a, err := netip.ParseAddr(we.GetAddress()); err == nil && a.Is4() && !a.IsLoopback() {
			standIn = nextFree(standIn, taken)
			own[o.Namespace+"/"+o.Name] = a
			spec := proto.Clone(we).(*networkingv1alpha3.WorkloadEntry)
			spec.Address = standIn.String()
			c.Spec = spec
		}
		out[i] = &c
	}
	return out, own
}

// ownStandIn is the loopback range the plan's stand-in addresses come from.
var ownStandIn = netip.MustParsePrefix("127.0.250.0/24")

// podAddress says whether a WorkloadEntry's own address can be its pod's: a private IPv4
// address (RFC 1918) outside every route of the machine (a pod must not shadow a real
// network) and not the bridge's. Otherwise the pod gets one of the range, and why is said.
func podAddress(a netip.Addr, bridge netip.Addr, routes []netip.Prefix) (bool, string) {
	if !a.Is4() || !a.IsPrivate() {
		return false, "not a private IPv4 address"
	}
	if a == bridge {
		return false, "the bridge's address"
	}
	for _, r := range routes {
		if r.Contains(a) {
			return false, "inside " + r.String() + ", a network of this machine"
		}
	}
	return true, ""
}

// captureGRPCAddr moves discovery's ADS address to the bridge's address (same port), where
// the pods reach it.
func captureGRPCAddr(addr string, r netip.Prefix) string {
	port := "15010"
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		port = addr[i+1:]
	}
	return r.Addr().Next().String() + ":" + port
}

// podNameService is name resolution in a pod: the hosts, resolv.conf and nsswitch.conf
// files bind-mounted over the pod's /etc, as the kubelet and a container image give them.
// The hosts file names only localhost and the pod itself; resolv.conf names the cluster's
// resolver (resolver: the bridge's address, capture_dns.go) with Kubernetes' search path
// and ndots:5, and the pod's capture rules (DNS capture, as istio-init installs with
// ISTIO_META_DNS_CAPTURE) send its queries to the agent's DNS proxy on 15053, which answers
// the mesh's names from the control plane's name table (auto-allocated addresses for
// ServiceEntries without one) and forwards the rest to the resolver. nsswitch (the
// machine's nsswitch.conf, "" without one) keeps its other lines but looks host names up
// in files then DNS only: a machine's resolve/mdns modules would ask a daemon outside the
// pod, past the mesh.
func podNameService(w Workload, podIP, resolver netip.Addr, nsswitch string) (hosts, resolv, nss string) {
	hosts = fmt.Sprintf("# lucid up --capture: the pod's own names; services resolve through the agent's DNS proxy\n"+
		"127.0.0.1\tlocalhost\n%s\t%s\n", podIP, w.Name)
	resolv = fmt.Sprintf("# lucid up --capture: queries go to the agent's DNS proxy (the capture rules take port 53)\n"+
		"search %[1]s.svc.%[2]s svc.%[2]s %[2]s\nnameserver %[3]s\noptions ndots:5\n", w.Namespace, clusterDomain, resolver)
	if nsswitch == "" {
		return hosts, resolv, ""
	}
	var b strings.Builder
	hostsLine := false
	for line := range strings.Lines(nsswitch) {
		if strings.HasPrefix(strings.TrimSpace(line), "hosts:") {
			line, hostsLine = "hosts: files dns\n", true
		}
		b.WriteString(line)
	}
	if !strings.HasSuffix(b.String(), "\n") {
		b.WriteString("\n")
	}
	if !hostsLine {
		b.WriteString("hosts: files dns\n")
	}
	return hosts, resolv, b.String()
}

// setFlag sets the value of --name in args (appending it when absent).
func setFlag(args []string, name, value string) []string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == name {
			args[i+1] = value
			return args
		}
	}
	return append(args, name, value)
}

// setEnv sets KEY=value in env.
func setEnv(env []string, key, value string) []string {
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
	return append(env, key+"="+value)
}

// inPod wraps p to run in the pod held by holder as uid (`lucid internal-pod-run`); copy
// (SRC:DST, or "") is copied by root before the uid changes.
func inPod(p Process, exe string, holder, uid int, copyFile string) Process {
	args := []string{"internal-pod-run", "--pod", strconv.Itoa(holder), "--uid", strconv.Itoa(uid)}
	if copyFile != "" {
		args = append(args, "--copy", copyFile)
	}
	p.Args = append(append(args, "--", p.Path), p.Args...)
	p.Path = exe
	return p
}

// nextFree is the first address after a that is not taken.
func nextFree(a netip.Addr, taken map[netip.Addr]bool) netip.Addr {
	for a = a.Next(); taken[a]; a = a.Next() {
		continue
	}
	return a
}

// cmpPrefix is the capture range in use: the given one, masked, or DefaultCaptureRange.
func cmpPrefix(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return DefaultCaptureRange
	}
	return p.Masked()
}
