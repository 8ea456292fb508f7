package kubenode

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// The node has no kube-proxy and no cluster DNS: its Service CIDR is loopback, so a ClusterIP
// routes nowhere from a pod. Two stand-ins give pods the few addresses they need before the
// mesh can carry anything, both on the node's address (the bridge's, reachable from every
// pod): the API server through a forwarder (a userspace proxy: the API server authenticates
// by token, the client's address does not matter), and chosen Services through DNAT rules
// kept in step with their ready endpoints, as kube-proxy's iptables mode does for a ClusterIP,
// so the client's address is kept (the control plane checks that a sidecar reports about its
// own pod). Replies pass the host's conntrack because bridged traffic goes through iptables
// (br_netfilter, net.bridge.bridge-nf-call-iptables=1).

// forwarder is one listening address and its connections.
type forwarder struct {
	ln     net.Listener
	target func(context.Context) (string, error)
	logf   func(string, ...any)
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func startForwarder(addr string, target func(context.Context) (string, error), logf func(string, ...any)) (*forwarder, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kubenode: forwarder: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &forwarder{ln: ln, target: target, logf: logf, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go f.handle(c)
	}
}

func (f *forwarder) track(c net.Conn, add bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if add {
		if f.ctx.Err() != nil {
			return false
		}
		f.conns[c] = struct{}{}
	} else {
		delete(f.conns, c)
	}
	return true
}

func (f *forwarder) handle(down net.Conn) {
	defer f.wg.Done()
	defer down.Close()
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	addr, err := f.target(ctx)
	var up net.Conn
	if err == nil {
		up, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	cancel()
	if err != nil {
		f.logf("kubenode: forwarder %s: %v", f.ln.Addr(), err)
		return // the client sees its connection closed, as with no endpoint behind kube-proxy
	}
	defer up.Close()
	if !f.track(down, true) || !f.track(up, true) {
		return
	}
	defer f.track(down, false)
	defer f.track(up, false)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, down)
	go pipe(down, up)
	<-done
	<-done
}

func (f *forwarder) close() {
	if f == nil {
		return
	}
	f.cancel()
	_ = f.ln.Close()
	f.mu.Lock()
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

var endpointSlices = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}

// serviceEndpoints are the ready endpoints (address:port) of Service ns/name for its port
// named portName, from the Service's EndpointSlices, sorted.
func serviceEndpoints(ctx context.Context, dyn dynamic.Interface, ns, name, portName string) ([]string, error) {
	list, err := dyn.Resource(endpointSlices).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		return nil, fmt.Errorf("endpoints of %s/%s: %w", ns, name, err)
	}
	var addrs []string
	for _, item := range list.Items {
		var s discoveryv1.EndpointSlice
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(item.Object, &s); err != nil {
			return nil, err
		}
		port := int32(-1)
		for _, p := range s.Ports {
			if p.Port != nil && (p.Name == nil && portName == "" || p.Name != nil && *p.Name == portName) {
				port = *p.Port
			}
		}
		if port < 0 {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				addrs = append(addrs, net.JoinHostPort(a, strconv.Itoa(int(port))))
			}
		}
	}
	slices.Sort(addrs)
	return addrs, nil
}

// natChain holds the node's DNAT rules for exposed Services (nat table, jumped to from
// PREROUTING for packets to NodeIP).
const natChain = "LUCID-KUBENODE"

// services are the exposed Services and their current endpoints; apply rewrites natChain.
type services struct {
	mu    sync.Mutex
	ports map[int][]string // node port → endpoints
}

func (s *services) set(port int, eps []string) (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ports == nil {
		s.ports = map[int][]string{}
	}
	if old, ok := s.ports[port]; ok && slices.Equal(old, eps) {
		return false, nil
	}
	s.ports[port] = eps
	// One iptables-restore input: the chain is replaced atomically, as kube-proxy does.
	var b strings.Builder
	b.WriteString("*nat\n:" + natChain + " - [0:0]\n")
	for p, eps := range s.ports {
		for i, ep := range eps {
			rule := fmt.Sprintf("-A %s -d %s/32 -p tcp --dport %d", natChain, NodeIP, p)
			if left := len(eps) - i; left > 1 {
				rule += fmt.Sprintf(" -m statistic --mode random --probability %.5f", 1/float64(left))
			}
			b.WriteString(rule + " -j DNAT --to-destination " + ep + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	cmd := exec.Command("iptables-restore", "--noflush")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return false, fmt.Errorf("kubenode: iptables-restore: %w: %s\n%s", err, out, b.String())
	}
	return true, nil
}
