// Package up runs a whole local mesh from a directory of Istio YAML: `lucid up DIR`. It
// sits beside the flow rather than in it: it reads the directory once (config.LoadDir)
// to plan which processes to start, then starts them as children of the same binary:
//
//	lucid discovery (control plane) → one lucid sidecar per WorkloadEntry → the apps
//
// streams their output with a prefix per process, prints where to send requests, and
// stops everything in reverse order on Ctrl-C or when a child dies.
package up

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// Annotations on a WorkloadEntry that tell `lucid up` how to run the workload's app.
const (
	// AnnotationApp holds the app's command line, split like a shell would (no shell
	// runs) after $VARIABLE expansion; a first word "lucid" runs this binary. A
	// WorkloadEntry without it is a client workload: a sidecar with no app behind it.
	AnnotationApp = "lucid.dev/app"
	// AnnotationAppAddress is the IP the app listens on (default 127.0.0.1); the sidecar
	// forwards inbound traffic there.
	AnnotationAppAddress = "lucid.dev/app-address"
)

// Variables an app command line may use; they are also in the app's environment.
const (
	EnvAppAddress      = "LUCID_APP_ADDRESS"
	EnvWorkloadAddress = "LUCID_WORKLOAD_ADDRESS"
	EnvProxy           = "LUCID_PROXY"
	EnvWorkload        = "LUCID_WORKLOAD"
	EnvNamespace       = "LUCID_NAMESPACE"
)

// Sidecar ports on the workload's address (Istio's numbers).
const (
	AdminPort      = 15000
	OutboundPort   = 15001
	StatusPort     = 15020
	HealthPort     = 15021
	PrometheusPort = 15090
)

// Role says what a process is. Processes stop in reverse role order.
type Role int

// Roles, in start order.
const (
	RoleDiscovery Role = iota
	RoleSidecar
	RoleApp
	RoleGateway // last to start, first to stop: the mesh's front door
)

// Process is one child process to run.
type Process struct {
	Name  string   // log prefix: "discovery", "reviews-v1 sidecar", "reviews-v1 app"
	Role  Role     // start and stop order
	Path  string   // executable
	Args  []string // arguments, without argv[0]
	Env   []string // KEY=value added to the inherited environment
	Ready string   // URL that answers 200 once the process is ready; "" when not checked
	Binds []string // host:port the process will listen on, checked free before starting
	// Listens are the host:port an app serves on (its address, each port of the services
	// selecting its workload): up waits until they accept connections before it says the
	// mesh is up, so a request right after that does not find an app not listening yet.
	Listens []string
	// Secret is written into a pipe the process reads as fd 3 (identity.go: the workload
	// token), so it appears in neither argv nor the environment.
	Secret []byte
}

// Workload is one WorkloadEntry as `lucid up` runs it.
type Workload struct {
	Name       string
	Namespace  string
	Address    string // the sidecar's loopback IP (spec.address)
	AppAddress string // where the app listens
	Labels     map[string]string
	HasApp     bool   // false: a client workload (send requests through its sidecar)
	Router     bool   // a gateway (AnnotationProxy: router) instead of a sidecar
	Admin      string // its proxy's admin API address, private (admin.go)
}

// Port is one ServiceEntry port.
type Port struct {
	Number   uint32
	Name     string
	Protocol string
}

// Service is one ServiceEntry host.
type Service struct {
	Host      string
	Namespace string
	Ports     []Port
	Workloads []string // names of the workloads its workloadSelector selects
}

// Plan is everything `lucid up` will start, in order.
type Plan struct {
	Discovery Process
	Sidecars  []Process
	Apps      []Process
	Gateways  []Process
	Workloads []Workload
	// GatewayServers lists, per router workload ("ns/name"), the Gateway servers it runs.
	GatewayServers map[string][]GatewayServer
	Services       []Service
	GRPCAddr       string
	DebugAddr      string
}

// PlanOptions says how to build a Plan. Zero values take the documented defaults.
type PlanOptions struct {
	Dir        string // the config directory (required)
	Executable string // the lucid binary (required)
	GRPCAddr   string // discovery's ADS address; default 127.0.0.1:15010
	DebugAddr  string // discovery's debug address; default 127.0.0.1:15014
	LogLevel   string // --log-level for discovery and sidecars; default info
}

// NewPlan decides which processes to run for the objects loaded from opts.Dir.
func NewPlan(objs []*config.Object, opts PlanOptions) (*Plan, error) {
	opts.GRPCAddr = cmp.Or(opts.GRPCAddr, "127.0.0.1:15010")
	opts.DebugAddr = cmp.Or(opts.DebugAddr, "127.0.0.1:15014")
	opts.LogLevel = cmp.Or(opts.LogLevel, "info")
	p := &Plan{GRPCAddr: opts.GRPCAddr, DebugAddr: opts.DebugAddr}

	args := []string{"discovery", "--config-dir", opts.Dir}
	if mc := filepath.Join(opts.Dir, config.MeshConfigFile); fileExists(mc) {
		args = append(args, "--mesh-config", mc)
	}
	args = append(args, "--grpc-addr", opts.GRPCAddr, "--debug-addr", opts.DebugAddr, "--log-level", opts.LogLevel)
	p.Discovery = Process{
		Name:  "discovery",
		Role:  RoleDiscovery,
		Path:  opts.Executable,
		Args:  args,
		Ready: "http://" + opts.DebugAddr + "/ready",
		Binds: []string{opts.GRPCAddr, opts.DebugAddr},
	}

	var entries []*config.Object
	for _, o := range objs {
		switch o.Kind {
		case config.KindWorkloadEntry:
			entries = append(entries, o)
		case config.KindServiceEntry:
			se, ok := o.Spec.(*networkingv1alpha3.ServiceEntry)
			if !ok {
				continue
			}
			var ports []Port
			for _, sp := range se.GetPorts() {
				ports = append(ports, Port{Number: sp.GetNumber(), Name: sp.GetName(), Protocol: sp.GetProtocol()})
			}
			for _, h := range se.GetHosts() {
				p.Services = append(p.Services, Service{Host: h, Namespace: o.Namespace, Ports: ports})
			}
		}
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("no WorkloadEntry in %s: nothing to run (each WorkloadEntry becomes a sidecar, and its %s annotation its app)", opts.Dir, AnnotationApp)
	}
	slices.SortStableFunc(entries, func(a, b *config.Object) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	slices.SortStableFunc(p.Services, func(a, b Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Host, b.Host))
	})

	used := map[string]string{} // address -> workload key
	for _, o := range entries {
		w, err := workload(o, used)
		if err != nil {
			return nil, err
		}
		p.Workloads = append(p.Workloads, w)
	}
	if err := planAdmin(p); err != nil { // admin.go
		return nil, err
	}
	proxyEnv, err := proxyConfigEnv(opts.Dir) // proxyconfig.go
	if err != nil {
		return nil, err
	}
	selected := selectWorkloads(objs, p)
	p.GatewayServers = gatewayServers(opts.Dir, objs, p.Workloads)

	for _, w := range p.Workloads {
		if w.Router {
			gw := gatewayProcess(w, p.GatewayServers[w.Namespace+"/"+w.Name], opts)
			gw.Env = append(gw.Env, proxyEnv...)
			p.Gateways = append(p.Gateways, gw)
			continue
		}
		label := w.Name
		if w.Namespace != "default" {
			label = w.Name + "." + w.Namespace
		}
		binds := []string{
			hostPort(w.Admin, AdminPort), hostPort(w.Address, OutboundPort),
			hostPort(w.Address, StatusPort), hostPort(w.Address, HealthPort), hostPort(w.Address, PrometheusPort),
		}
		for _, port := range selected[w.Namespace+"/"+w.Name] {
			binds = appendNew(binds, hostPort(w.Address, port))
		}
		args := []string{"sidecar", "--ip", w.Address, "--workload", w.Name, "--namespace", w.Namespace, "--admin-address", w.Admin}
		if len(w.Labels) > 0 {
			args = append(args, "--labels", labelString(w.Labels))
		}
		args = append(args, "--app-address", w.AppAddress,
			// Apps stop first, so a sidecar may exit as soon as its inbound connections are gone.
			"--exit-on-zero-active-connections", "--minimum-drain-duration", "100ms",
			"--discovery-address", opts.GRPCAddr, "--access-log", "/dev/stdout", "--log-level", opts.LogLevel)
		p.Sidecars = append(p.Sidecars, Process{
			Name:  label + " sidecar",
			Role:  RoleSidecar,
			Path:  opts.Executable,
			Args:  args,
			Ready: "http://" + hostPort(w.Address, StatusPort) + "/healthz/ready",
			Binds: binds,
			Env:   proxyEnv,
		})
		if !w.HasApp {
			continue
		}
		app, err := appProcess(entryByName(entries, w), w, opts.Executable)
		if err != nil {
			return nil, err
		}
		app.Name = label + " app"
		for _, port := range selected[w.Namespace+"/"+w.Name] {
			app.Listens = appendNew(app.Listens, hostPort(w.AppAddress, port))
		}
		p.Apps = append(p.Apps, app)
	}
	return p, nil
}

// workload reads one WorkloadEntry, checking what `lucid up` needs of it.
func workload(o *config.Object, used map[string]string) (Workload, error) {
	we, ok := o.Spec.(*networkingv1alpha3.WorkloadEntry)
	if !ok {
		return Workload{}, fmt.Errorf("%s: spec is %T, want a WorkloadEntry", o.Key(), o.Spec)
	}
	where := o.Key()
	if o.File != "" {
		where = o.File + ": " + where
	}
	addr, err := netip.ParseAddr(we.GetAddress())
	if err != nil || !addr.Is4() || !addr.IsLoopback() {
		return Workload{}, fmt.Errorf("%s: spec.address %q: lucid up runs each workload on its own loopback address (127.x.y.z)", where, we.GetAddress())
	}
	if prev, dup := used[addr.String()]; dup {
		return Workload{}, fmt.Errorf("%s: spec.address %s is also the address of %s; each workload needs its own", where, addr, prev)
	}
	used[addr.String()] = o.Key()
	w := Workload{
		Name:       o.Name,
		Namespace:  o.Namespace,
		Address:    addr.String(),
		AppAddress: "127.0.0.1",
		Labels:     we.GetLabels(),
	}
	if len(w.Labels) == 0 {
		w.Labels = o.Labels
	}
	if a, ok := o.Annotations[AnnotationAppAddress]; ok {
		ip, err := netip.ParseAddr(a)
		if err != nil || !ip.IsLoopback() {
			return Workload{}, fmt.Errorf("%s: metadata.annotations[%s] %q: want a loopback IP (127.x.y.z)", where, AnnotationAppAddress, a)
		}
		w.AppAddress = ip.String()
	}
	_, w.HasApp = o.Annotations[AnnotationApp]
	w.Router = isRouter(o)
	if w.Router && w.HasApp {
		return Workload{}, fmt.Errorf("%s: metadata.annotations: a gateway (%s: %s) runs no app; remove %s", where, AnnotationProxy, ProxyRouter, AnnotationApp)
	}
	return w, nil
}

// appProcess builds the app's command from its annotation.
func appProcess(o *config.Object, w Workload, executable string) (Process, error) {
	vars := map[string]string{
		EnvAppAddress:      w.AppAddress,
		EnvWorkloadAddress: w.Address,
		EnvProxy:           "http://" + hostPort(w.Address, OutboundPort),
		EnvWorkload:        w.Name,
		EnvNamespace:       w.Namespace,
	}
	words, err := SplitCommand(o.Annotations[AnnotationApp], func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	})
	if err != nil {
		return Process{}, fmt.Errorf("%s: metadata.annotations[%s]: %w", o.Key(), AnnotationApp, err)
	}
	if len(words) == 0 {
		return Process{}, fmt.Errorf("%s: metadata.annotations[%s] is empty: give the app's command line, or remove the annotation for a client workload", o.Key(), AnnotationApp)
	}
	path := words[0]
	if path == "lucid" {
		path = executable
	}
	var env []string
	for _, k := range []string{EnvAppAddress, EnvWorkloadAddress, EnvProxy, EnvWorkload, EnvNamespace} {
		env = append(env, k+"="+vars[k])
	}
	return Process{Role: RoleApp, Path: path, Args: words[1:], Env: env}, nil
}

// selectWorkloads fills each Service's Workloads from its workloadSelector and returns,
// per workload ("ns/name"), the service ports it serves.
func selectWorkloads(objs []*config.Object, p *Plan) map[string][]int {
	ports := map[string][]int{}
	for _, o := range objs {
		se, ok := o.Spec.(*networkingv1alpha3.ServiceEntry)
		if !ok || o.Kind != config.KindServiceEntry || se.GetWorkloadSelector() == nil {
			continue
		}
		var names []string
		for _, w := range p.Workloads {
			if w.Namespace != o.Namespace || !matches(se.GetWorkloadSelector().GetLabels(), w.Labels) {
				continue
			}
			names = append(names, w.Name)
			key := w.Namespace + "/" + w.Name
			for _, sp := range se.GetPorts() {
				if !slices.Contains(ports[key], int(sp.GetNumber())) {
					ports[key] = append(ports[key], int(sp.GetNumber()))
				}
			}
		}
		for i := range p.Services {
			if p.Services[i].Namespace == o.Namespace && slices.Contains(se.GetHosts(), p.Services[i].Host) {
				p.Services[i].Workloads = names
			}
		}
	}
	return ports
}

func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func entryByName(entries []*config.Object, w Workload) *config.Object {
	for _, o := range entries {
		if o.Name == w.Name && o.Namespace == w.Namespace {
			return o
		}
	}
	return nil
}

// labelString writes labels as the sidecar's --labels flag wants them: k=v,k2=v2, sorted.
func labelString(labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, ",")
}

func hostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

func appendNew(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
