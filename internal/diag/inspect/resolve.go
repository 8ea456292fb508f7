package inspect

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// Proxy identifies one sidecar: its node id, workload, namespace and address.
type Proxy struct {
	ID        string // sidecar~<ip>~<workload>.<namespace>~<namespace>.svc.cluster.local
	Workload  string
	Namespace string
	IP        string
	// Admin is where the proxy's admin API listens, as it told the control plane (node
	// metadata ADMIN_ADDRESS); "" when it did not say (then <IP>:15000).
	Admin string
}

// Name is how the CLI prints a proxy: "<workload>.<namespace>", as istioctl prints pods.
func (p Proxy) Name() string { return p.Workload + "." + p.Namespace }

// ParseNodeID splits Istio's node id. ok is false for ids of another shape.
func ParseNodeID(id string) (p Proxy, ok bool) {
	parts := strings.Split(id, "~")
	if len(parts) != 4 {
		return Proxy{ID: id}, false
	}
	name, ns, found := strings.Cut(parts[2], ".")
	if !found {
		ns = strings.TrimSuffix(parts[3], ".svc.cluster.local")
	}
	return Proxy{ID: id, Workload: name, Namespace: ns, IP: parts[1]}, true
}

// NotFoundError says no connected proxy has the name asked for.
type NotFoundError struct {
	Name  string
	Known []string // the proxies the control plane knows, "<workload>.<namespace>"
}

func (e *NotFoundError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("no proxy named %q: the control plane knows no proxy (is any sidecar running?)", e.Name)
	}
	return fmt.Sprintf("no proxy named %q; the control plane knows: %s", e.Name, strings.Join(e.Known, ", "))
}

// FindProxy picks the proxy named "<workload>" or "<workload>.<namespace>" (namespace
// default "default") from a sync status.
func FindProxy(status []contract.ProxyStatus, name string) (Proxy, error) {
	wl, ns, ok := strings.Cut(name, ".")
	if !ok {
		ns = "default"
	}
	var known []string
	for _, s := range status {
		p, ok := ParseNodeID(s.ID)
		if !ok {
			continue
		}
		if p.Workload == wl && p.Namespace == ns {
			p.Admin = s.Metadata[AdminMetadata]
			return p, nil
		}
		known = append(known, p.Name())
	}
	slices.Sort(known)
	return Proxy{}, &NotFoundError{Name: name, Known: known}
}

// Target is where the CLI reads one sidecar: its admin address, and its node id when the
// control plane was asked.
type Target struct {
	Admin string // host:port of the admin API
	Proxy Proxy  // zero when addressed with --admin
}

// Resolve finds a workload's admin API. With admin set it is used as is; otherwise the
// workload is looked up in the control plane's /debug/syncz and its admin API is where
// the proxy said (node metadata ADMIN_ADDRESS), else <ip>:adminPort.
func (c *Client) Resolve(ctx context.Context, debug, admin, workload string, adminPort int) (Target, error) {
	if admin != "" {
		return Target{Admin: admin}, nil
	}
	if workload == "" {
		return Target{}, fmt.Errorf("name a workload, or give --admin host:port")
	}
	st, err := c.SyncStatus(ctx, debug)
	if err != nil {
		return Target{}, fmt.Errorf("ask the control plane at %s which proxies exist (or give --admin host:port): %w", debug, err)
	}
	p, err := FindProxy(st, workload)
	if err != nil {
		return Target{}, err
	}
	admin = p.Admin
	if admin == "" {
		admin = net.JoinHostPort(p.IP, strconv.Itoa(adminPort))
	}
	return Target{Admin: admin, Proxy: p}, nil
}

// AdminMetadata is the node metadata key under which a proxy says where its admin API
// listens (the sidecar binds it to localhost or, in local mode, a private address).
const AdminMetadata = contract.AdminMetadata
