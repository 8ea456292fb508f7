package kubenode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// The node has no kube-proxy and no cluster DNS: its Service CIDR is loopback, so a ClusterIP
// routes nowhere from a pod. A forwarder stands in for kube-proxy for the few addresses pods
// need before the mesh can carry anything: it listens on the node's address (the bridge's,
// reachable from every pod) and passes each connection to the API server or to a ready
// endpoint of a Service, chosen when the connection comes in, as kube-proxy's DNAT does.

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

// serviceEndpoint picks a ready endpoint of Service ns/name for its port named portName
// (a ready address and that port's number, from the Service's EndpointSlices).
func serviceEndpoint(ctx context.Context, dyn dynamic.Interface, ns, name, portName string) (string, error) {
	list, err := dyn.Resource(endpointSlices).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		return "", fmt.Errorf("endpoints of %s/%s: %w", ns, name, err)
	}
	var addrs []string
	for _, item := range list.Items {
		var s discoveryv1.EndpointSlice
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(item.Object, &s); err != nil {
			return "", err
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
	if len(addrs) == 0 {
		return "", errors.New("no ready endpoint for " + ns + "/" + name + " port " + portName)
	}
	return addrs[rand.IntN(len(addrs))], nil //nolint:gosec // load spreading, not security
}
