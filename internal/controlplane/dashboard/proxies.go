package dashboard

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// proxy is one connected proxy as the dashboard reads it.
type proxy struct {
	ID        string
	Name      string // <workload>.<namespace>
	Workload  string
	Namespace string
	IP        string
	Gateway   bool // a router (gateway), not a sidecar
	Connected bool
	Labels    map[string]string
	Status    contract.ProxyStatus
}

// parseNodeID splits Istio's node id: <type>~<ip>~<workload>.<namespace>~<namespace>.svc.cluster.local.
func parseNodeID(id string) (proxy, bool) {
	parts := strings.Split(id, "~")
	if len(parts) != 4 || (parts[0] != "sidecar" && parts[0] != "router") {
		return proxy{}, false
	}
	wl, ns, ok := strings.Cut(parts[2], ".")
	if !ok {
		ns = strings.TrimSuffix(parts[3], ".svc.cluster.local")
	}
	if wl == "" || net.ParseIP(parts[1]) == nil {
		return proxy{}, false
	}
	return proxy{ID: id, Name: wl + "." + ns, Workload: wl, Namespace: ns, IP: parts[1], Gateway: parts[0] == "router"}, true
}

// proxies are the proxies the control plane knows, by name; a name connected twice keeps
// its connected entry.
func (d *Dashboard) proxies() map[string]proxy {
	out := map[string]proxy{}
	if d.o.Proxies == nil {
		return out
	}
	for _, st := range d.o.Proxies() {
		p, ok := parseNodeID(st.ID)
		if !ok {
			continue
		}
		if ip := st.Metadata["INSTANCE_IPS"]; ip != "" && net.ParseIP(strings.Split(ip, ",")[0]) != nil {
			p.IP = strings.Split(ip, ",")[0]
		}
		p.Connected, p.Status, p.Labels = st.Connected, st, parseLabels(st.Metadata["LABELS"])
		if prev, ok := out[p.Name]; ok && prev.Connected && !p.Connected {
			continue
		}
		out[p.Name] = p
	}
	return out
}

// find resolves "<workload>" (namespace default) or "<workload>.<namespace>".
func (d *Dashboard) find(name string) (proxy, error) {
	if !strings.Contains(name, ".") {
		name += ".default"
	}
	all := d.proxies()
	if p, ok := all[name]; ok {
		return p, nil
	}
	known := make([]string, 0, len(all))
	for n := range all {
		known = append(known, n)
	}
	slices.Sort(known)
	if len(known) == 0 {
		return proxy{}, fmt.Errorf("no proxy named %q: the control plane knows no proxy (is any sidecar running?)", name)
	}
	return proxy{}, fmt.Errorf("no proxy named %q; the control plane knows: %s", name, strings.Join(known, ", "))
}

// adminAddr is where the proxy said its admin API listens (node metadata ADMIN_ADDRESS:
// localhost, or a private address in local mode), else its address and AdminPort.
func (d *Dashboard) adminAddr(p proxy) string {
	if a := p.Status.Metadata[contract.AdminMetadata]; a != "" {
		return a
	}
	return net.JoinHostPort(p.IP, strconv.Itoa(d.o.AdminPort))
}

func (d *Dashboard) statusAddr(p proxy) string {
	return net.JoinHostPort(p.IP, strconv.Itoa(d.o.StatusPort))
}

// parseLabels reads node metadata LABELS ("app=reviews,version=v1").
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for kv := range strings.SplitSeq(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			out[k] = v
		}
	}
	return out
}
