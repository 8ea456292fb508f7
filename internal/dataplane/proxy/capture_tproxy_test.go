package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/testutil/netns"
)

// TPROXY interception: connections arriving from another namespace are delivered to the
// IP_TRANSPARENT socket on 15006 with their destination kept (mangle TPROXY, fwmark 1337,
// Istio's table 133); the proxy dispatches them by that destination and dials the app from
// the client's address (original source: transparent, mark 1337, whose replies CONNMARK
// routes back to it).
func TestCaptureTProxyNetns(t *testing.T) {
	netns.Run(t, "TestCaptureTProxyChild", "iptables", "nsenter", "curl")
}

func TestCaptureTProxyChild(t *testing.T) {
	netns.Child(t)
	pid := netns.Peer(t) // the client's namespace
	netns.Sh(t, fmt.Sprintf(`ip link add pod0 type veth peer name peer0 && ip link set peer0 netns %d &&
ip addr add 10.78.0.1/24 dev pod0 && ip link set pod0 up &&
nsenter -t %d -n sh -c 'ip link set lo up && ip link set peer0 up && ip addr add 10.78.0.9/24 dev peer0' &&
iptables -t mangle -A PREROUTING -p tcp -i pod0 -j TPROXY --on-port 15006 --tproxy-mark 1337/0xffffffff &&
iptables -t mangle -A PREROUTING -p tcp -m mark --mark 1337 -j CONNMARK --save-mark &&
iptables -t mangle -A OUTPUT -p tcp -m connmark --mark 1337 -j CONNMARK --restore-mark &&
ip rule add fwmark 1337 lookup 133 && ip route add local default dev lo table 133`, pid, pid))

	ln, err := net.Listen("tcp", "10.78.0.1:7777") // the app's undeclared port: answers its peer's address
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.RemoteAddr) })}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	lg := &infoLog{}
	px := newCaptureProxy(t, lg)
	px.opts.Transparent = true
	s := snapshot("10.78.0.1", 9080, "127.0.54.2:9080", "127.0.54.3:9080")
	s.Listeners["virtualInbound"].DefaultChain = &resource.FilterChain{TCP: &resource.TCPProxy{Cluster: "InboundPassthroughCluster"}}
	s.Clusters["InboundPassthroughCluster"] = &resource.Cluster{Name: "InboundPassthroughCluster", Type: resource.OriginalDst, ConnectTimeout: time.Second,
		BindAddress: netip.MustParseAddr("127.0.0.6")}
	if err := px.Apply(s); err != nil {
		t.Fatal(err)
	}
	outb, err := exec.Command("nsenter", "-t", fmt.Sprint(pid), "-n", "curl", "-sS", "-m", "5", "http://10.78.0.1:7777/").CombinedOutput()
	out := string(outb)
	if err != nil {
		lg.mu.Lock()
		t.Logf("proxy records: %+v", lg.infos)
		lg.mu.Unlock()
	}
	if !strings.HasPrefix(out, "10.78.0.9:") {
		t.Fatalf("the app saw %q, want InboundPassthroughCluster's connection from the client's own address (original source)", out)
	}
}
