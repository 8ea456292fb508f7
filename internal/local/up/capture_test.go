package up

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

const reviewsEntries = `# reviews: two versions
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: reviews-v1
  annotations:
    lucid.dev/app-address: "127.0.20.2"
    lucid.dev/app: lucid demo-app --listen $LUCID_APP_ADDRESS:9080
spec:
  address: 127.0.10.2   # the sidecar
  labels: {app: reviews, version: v1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, namespace: shop}
spec: {address: '127.0.10.3', labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: gateway}
spec: {address: 127.0.10.9}
`

func TestRewriteWorkloadEntriesChangesOnlyTheAddresses(t *testing.T) {
	got := string(rewriteWorkloadEntries([]byte(reviewsEntries), map[string]string{
		"default/reviews-v1": "10.213.0.5",
		"shop/reviews-v2":    "10.213.0.6",
	}))
	want := strings.NewReplacer(
		`"127.0.20.2"`, `"127.0.0.1"`,
		"address: 127.0.10.2   #", "address: 10.213.0.5   #",
		"'127.0.10.3'", `"10.213.0.6"`,
	).Replace(reviewsEntries)
	if got != want {
		t.Fatalf("rewritten:\n%s\nwant:\n%s", got, want)
	}
	// The control plane reads it as the user wrote it, but for the addresses.
	objs, diags := config.Parse("reviews.yaml", []byte(got))
	if len(diags) != 0 || len(objs) != 3 {
		t.Fatalf("parsed %d objects, diagnostics %v", len(objs), diags)
	}
	orig, _ := config.Parse("reviews.yaml", []byte(reviewsEntries))
	for i := range objs {
		if objs[i].Line != orig[i].Line {
			t.Fatalf("%s moved from line %d to %d", objs[i].Key(), orig[i].Line, objs[i].Line)
		}
	}
}

func TestRewriteWorkloadEntriesLeavesOtherFilesAlone(t *testing.T) {
	for _, in := range []string{"", "kind: ServiceEntry\nspec: {address: 127.0.10.2}\n", "kind: [WorkloadEntry\n", "- a\n- b\n"} {
		if got := rewriteWorkloadEntries([]byte(in), map[string]string{"default/x": "10.213.0.2"}); string(got) != in {
			t.Errorf("%q became %q", in, got)
		}
	}
}

func FuzzRewriteWorkloadEntries(f *testing.F) {
	f.Add([]byte(reviewsEntries))
	f.Add([]byte("kind: WorkloadEntry\nmetadata: {name: x}\nspec: {address: \"\"}\n"))
	f.Add([]byte("kind: WorkloadEntry\nmetadata: {name: x}\nspec:\n  address: |\n    127.0.10.1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := rewriteWorkloadEntries(data, map[string]string{"default/x": "10.213.0.2", "default/reviews-v1": "10.213.0.5"})
		if !bytes.Contains(data, []byte("WorkloadEntry")) && !bytes.Equal(out, data) {
			t.Fatalf("a file without WorkloadEntry changed: %q → %q", data, out)
		}
		if bytes.Count(out, []byte("\n")) != bytes.Count(data, []byte("\n")) {
			t.Fatalf("lines changed: %q → %q", data, out)
		}
	})
}

func TestMirrorFollowsTheUsersFiles(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("reviews.yaml", reviewsEntries)
	write("certs/ca.crt", "not yaml: 127.0.10.2")
	write(".hidden.yaml", "x")
	m := &mirror{src: src, dst: dst, addrs: map[string]string{"default/reviews-v1": "10.213.0.5"}}
	if err := m.sync(); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("reviews.yaml"); !strings.Contains(got, "address: 10.213.0.5") {
		t.Fatalf("mirror:\n%s", got)
	}
	if got := read("certs/ca.crt"); got != "not yaml: 127.0.10.2" {
		t.Fatalf("certs/ca.crt: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dst, ".hidden.yaml")); !os.IsNotExist(err) {
		t.Fatalf("hidden file mirrored (%v)", err)
	}
	// An unchanged file is not written again (the control plane would see a change).
	st, _ := os.Stat(filepath.Join(dst, "reviews.yaml"))
	if err := m.sync(); err != nil {
		t.Fatal(err)
	}
	if st2, _ := os.Stat(filepath.Join(dst, "reviews.yaml")); !os.SameFile(st, st2) {
		t.Fatal("an unchanged file was rewritten")
	}
	// An edit arrives, a removed file goes.
	write("reviews.yaml", strings.Replace(reviewsEntries, "version: v1", "version: v3", 1))
	if err := os.RemoveAll(filepath.Join(src, "certs")); err != nil {
		t.Fatal(err)
	}
	if err := m.sync(); err != nil {
		t.Fatal(err)
	}
	if got := read("reviews.yaml"); !strings.Contains(got, "version: v3") || !strings.Contains(got, "10.213.0.5") {
		t.Fatalf("after the edit:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(dst, "certs")); !os.IsNotExist(err) {
		t.Fatalf("a removed directory stayed (%v)", err)
	}
}

func TestPodNameServiceIsKubernetesDNS(t *testing.T) {
	const machine = "# the machine's\npasswd: files systemd\nhosts:   files mdns4_minimal [NOTFOUND=return] resolve dns\nnetworks: files\n"
	hosts, resolv, nss := podNameService(Workload{Name: "curl", Namespace: "shop"},
		netip.MustParseAddr("10.213.0.2"), netip.MustParseAddr("10.213.0.1"), machine)
	// The pod's own names only: services resolve through DNS.
	if !strings.HasSuffix(hosts, "127.0.0.1\tlocalhost\n10.213.0.2\tcurl\n") || strings.Count(hosts, "\n") != 3 {
		t.Fatalf("hosts:\n%s", hosts)
	}
	// Kubernetes' search path for the pod's namespace, ndots:5, the cluster resolver the
	// capture rules take.
	for _, want := range []string{"\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\n", "\nnameserver 10.213.0.1\n", "\noptions ndots:5\n"} {
		if !strings.Contains(resolv, want) {
			t.Errorf("resolv.conf lacks %q:\n%s", want, resolv)
		}
	}
	// Host names from files then DNS, never a daemon of the machine; the rest as it was.
	if want := strings.Replace(machine, "hosts:   files mdns4_minimal [NOTFOUND=return] resolve dns", "hosts: files dns", 1); nss != want {
		t.Errorf("nsswitch.conf:\n%s\nwant:\n%s", nss, want)
	}
	if _, _, nss := podNameService(Workload{Name: "x"}, netip.MustParseAddr("10.213.0.3"), netip.MustParseAddr("10.213.0.1"), "passwd: files"); nss != "passwd: files\nhosts: files dns\n" {
		t.Errorf("nsswitch.conf without a hosts line: %q", nss)
	}
	if _, _, nss := podNameService(Workload{Name: "x"}, netip.MustParseAddr("10.213.0.3"), netip.MustParseAddr("10.213.0.1"), ""); nss != "" {
		t.Errorf("a machine without nsswitch.conf got %q", nss)
	}
}

func TestCaptureWrapsProcessesForTheirPod(t *testing.T) {
	p := inPod(Process{Path: "/bin/app", Args: []string{"--x", "1"}}, "/usr/bin/lucid", 42, ProxyUID, "/s/root.pem:/run/p/root.pem")
	want := "/usr/bin/lucid internal-pod-run --pod 42 --uid 1337 --copy /s/root.pem:/run/p/root.pem -- /bin/app --x 1"
	if got := p.Path + " " + strings.Join(p.Args, " "); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := setFlag([]string{"--ip", "127.0.10.2", "--x"}, "--ip", "10.213.0.2"); strings.Join(got, " ") != "--ip 10.213.0.2 --x" {
		t.Fatalf("setFlag: %v", got)
	}
	if got := captureGRPCAddr("127.0.0.1:15010", DefaultCaptureRange); got != "10.213.0.1:15010" {
		t.Fatalf("captureGRPCAddr: %s", got)
	}
	if got := lastAddr(netip.MustParsePrefix("10.213.0.0/24")); got != netip.MustParseAddr("10.213.0.255") {
		t.Fatalf("lastAddr: %s", got)
	}
}

func TestCaptureKeepsUsableOwnAddresses(t *testing.T) {
	objs, diags := config.Parse("w.yaml", []byte(`apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm, namespace: shop}
spec: {address: 192.168.77.5}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: local}
spec: {address: 127.0.10.2}
`))
	if len(diags) != 0 {
		t.Fatal(diags)
	}
	planned, own := captureObjects(objs)
	if len(own) != 1 || own["shop/vm"] != netip.MustParseAddr("192.168.77.5") {
		t.Fatalf("own addresses: %v", own)
	}
	p, err := NewPlan(planned, PlanOptions{Dir: "d", Executable: "lucid"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range p.Workloads {
		if w.AppAddress != "127.0.0.1" || (w.Name == "vm") != ownStandIn.Contains(netip.MustParseAddr(w.Address)) {
			t.Errorf("%s: address %s, app %s", w.Name, w.Address, w.AppAddress)
		}
	}
	gw := netip.MustParseAddr("10.213.0.1")
	routes := []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}
	for addr, want := range map[string]string{
		"192.168.77.5": "",
		"192.168.1.7":  "inside 192.168.1.0/24, a network of this machine",
		"8.8.8.8":      "not a private IPv4 address",
		"10.213.0.1":   "the bridge's address",
	} {
		ok, why := podAddress(netip.MustParseAddr(addr), gw, routes)
		if ok != (want == "") || why != want {
			t.Errorf("%s: usable %v (%q), want %q", addr, ok, why, want)
		}
	}
}

func FuzzPodNameServiceNSSwitch(f *testing.F) {
	f.Add("passwd: files\nhosts: files resolve [!UNAVAIL=return] dns\n")
	f.Add("hosts:\n")
	f.Add("# no hosts line")
	f.Add("hosts:files mdns4")
	f.Fuzz(func(t *testing.T, machine string) {
		_, _, nss := podNameService(Workload{Name: "x", Namespace: "default"}, netip.MustParseAddr("10.213.0.2"), netip.MustParseAddr("10.213.0.1"), machine)
		if machine == "" {
			if nss != "" {
				t.Fatalf("no machine file, got %q", nss)
			}
			return
		}
		// Host names from files then DNS, every other line as the machine has it.
		var kept []string
		for line := range strings.Lines(nss) {
			if strings.HasPrefix(strings.TrimSpace(line), "hosts:") {
				if line != "hosts: files dns\n" {
					t.Fatalf("hosts line %q in %q", line, nss)
				}
				continue
			}
			kept = append(kept, line)
		}
		var want []string
		for line := range strings.Lines(machine) {
			if !strings.HasPrefix(strings.TrimSpace(line), "hosts:") {
				want = append(want, line)
			}
		}
		if strings.TrimSuffix(strings.Join(kept, ""), "\n") != strings.TrimSuffix(strings.Join(want, ""), "\n") {
			t.Fatalf("other lines changed: %q → %q", machine, nss)
		}
	})
}
