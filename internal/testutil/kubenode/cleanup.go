package kubenode

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// What a node leaves on the machine outside its directory, and what sweep removes: the
// bridge, the FORWARD rule, the kubelet's iptables chains, the kubepods cgroups, the CNI
// network namespaces' files, mounts under node directories, and leftover containerd shims.
// sweep runs before a node starts (a crashed run's remains) and after it stops; it only
// touches things with the node's names, under the node lock.

// forwardRule keeps pods from reaching any address outside the pod subnet.
var forwardRule = []string{"FORWARD", "-s", PodSubnet, "!", "-d", PodSubnet, "-m", "comment", "--comment", "lucid-kubenode", "-j", "DROP"}

// kubeletChains are the iptables chains kubelet creates on the host.
var kubeletChains = []string{"KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT"}

const dirPrefix = "lucid-kubenode-"

func sweep(logf func(string, ...any)) {
	killShims(logf)
	killCgroupTasks(logf)
	unmountUnder(logf)
	for _, f := range cniNetns() {
		_ = syscall.Unmount(f, syscall.MNT_DETACH)
		if err := os.Remove(f); err == nil {
			logf("kubenode: removed leftover network namespace file %s", f)
		}
	}
	if exec.Command("ip", "link", "show", Bridge).Run() == nil {
		if out, err := exec.Command("ip", "link", "del", Bridge).CombinedOutput(); err != nil {
			logf("kubenode: ip link del %s: %v: %s", Bridge, err, out)
		}
	}
	for exec.Command("iptables", append([]string{"-D"}, forwardRule...)...).Run() == nil { //nolint:revive // deleting every copy
	}
	removeKubeletChains()
	if exec.Command("iptables", "-t", "nat", "-S", natChain).Run() == nil {
		for exec.Command("iptables", "-t", "nat", "-D", "PREROUTING", "-d", NodeIP+"/32", "-j", natChain).Run() == nil { //nolint:revive // deleting every copy
		}
		_ = exec.Command("iptables", "-t", "nat", "-F", natChain).Run()
		_ = exec.Command("iptables", "-t", "nat", "-X", natChain).Run()
	}
	removeCgroups(logf)
	if dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*")); len(dirs) > 0 {
		for _, d := range dirs {
			if err := os.RemoveAll(d); err != nil {
				logf("kubenode: remove %s: %v", d, err)
			}
		}
	}
}

// leftovers lists what sweep looks for that is still there (empty: nothing).
func leftovers() []string {
	var out []string
	if exec.Command("ip", "link", "show", Bridge).Run() == nil {
		out = append(out, "bridge "+Bridge)
	}
	if exec.Command("iptables", append([]string{"-C"}, forwardRule...)...).Run() == nil {
		out = append(out, "iptables FORWARD rule for "+PodSubnet)
	}
	for _, bin := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle"} {
			rules, _ := exec.Command(bin, "-t", table, "-S").Output()
			for _, ch := range kubeletChains {
				if bytes.Contains(rules, []byte("-N "+ch+"\n")) {
					out = append(out, fmt.Sprintf("%s -t %s chain %s", bin, table, ch))
				}
			}
		}
	}
	if exec.Command("iptables", "-t", "nat", "-S", natChain).Run() == nil {
		out = append(out, "iptables -t nat chain "+natChain)
	}
	out = append(out, cgroupDirs()...)
	out = append(out, cniNetns()...)
	for _, m := range nodeMounts() {
		out = append(out, "mount "+m)
	}
	for _, pid := range shimPIDs() {
		out = append(out, "containerd shim pid "+strconv.Itoa(pid))
	}
	if dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*")); len(dirs) > 0 {
		out = append(out, dirs...)
	}
	return out
}

func removeKubeletChains() {
	for _, bin := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(bin); err != nil {
			continue
		}
		for _, table := range []string{"filter", "nat", "mangle"} {
			rules, err := exec.Command(bin, "-t", table, "-S").Output()
			if err != nil {
				continue
			}
			// First the jumps from other chains, then the chains themselves.
			sc := bufio.NewScanner(bytes.NewReader(rules))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) < 2 || f[0] != "-A" || slices.Contains(kubeletChains, f[1]) {
					continue
				}
				if i := slices.Index(f, "-j"); i > 0 && i+1 < len(f) && slices.Contains(kubeletChains, f[i+1]) {
					_ = exec.Command(bin, append([]string{"-t", table, "-D"}, f[1:]...)...).Run()
				}
			}
			for _, ch := range kubeletChains {
				if bytes.Contains(rules, []byte("-N "+ch+"\n")) {
					_ = exec.Command(bin, "-t", table, "-F", ch).Run()
					_ = exec.Command(bin, "-t", table, "-X", ch).Run()
				}
			}
		}
	}
}

// cgroupRoots are the kubelet's (cgroupRoot /, cgroupsPerQOS) and containerd's cgroups.
var cgroupRoots = []string{"kubepods", "k8s.io"}

func cgroupDirs() []string {
	var out []string
	for _, root := range cgroupRoots {
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", root))
		out = append(out, dirs...)
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", root)); err == nil { // cgroup v2
			out = append(out, filepath.Join("/sys/fs/cgroup", root))
		}
	}
	return out
}

// killCgroupTasks kills what still runs in the node's cgroups (a crashed run's containers).
func killCgroupTasks(logf func(string, ...any)) {
	pids := map[int]bool{}
	for _, d := range cgroupDirs() {
		_ = filepath.WalkDir(d, func(path string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || (e.Name() != "tasks" && e.Name() != "cgroup.procs") {
				return nil //nolint:nilerr // best effort
			}
			b, _ := os.ReadFile(path) //nolint:gosec // cgroupfs: root-owned, no symlinks
			for _, s := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(s); err == nil && pid > 1 {
					pids[pid] = true
				}
			}
			return nil
		})
	}
	killed := 0
	for pid := range pids {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	if killed > 0 {
		logf("kubenode: killed %d leftover container processes", killed)
	}
}

// removeCgroups removes the node's cgroups depth-first, retrying briefly while the kernel
// lets go of killed tasks.
func removeCgroups(logf func(string, ...any)) {
	deadline := time.Now().Add(10 * time.Second)
	for _, d := range cgroupDirs() {
		var dirs []string
		_ = filepath.WalkDir(d, func(path string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		slices.Reverse(dirs)
		for _, dir := range dirs {
			for {
				err := os.Remove(dir)
				if err == nil || os.IsNotExist(err) {
					break
				}
				if time.Now().After(deadline) {
					logf("kubenode: remove cgroup %s: %v", dir, err)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
}

func cniNetns() []string {
	files, _ := filepath.Glob("/run/netns/cni-*")
	return files
}

// nodeMounts are the mount points under node directories, deepest first.
func nodeMounts() []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	prefix := filepath.Join(os.TempDir(), dirPrefix)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if m, ok := mountPoint(line); ok && strings.HasPrefix(m, prefix) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// mountPoint is the mount point (5th field, octal escapes such as \040 decoded) of a
// /proc/self/mountinfo line.
func mountPoint(line string) (string, bool) {
	f := strings.Fields(line)
	if len(f) < 5 {
		return "", false
	}
	var b strings.Builder
	s := f[4]
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String(), true
}

func unmountUnder(logf func(string, ...any)) {
	for _, m := range nodeMounts() {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			logf("kubenode: unmount %s: %v", m, err)
		}
	}
}

// shimPIDs are containerd shims serving a node directory's containerd.
func shimPIDs() []int {
	entries, _ := os.ReadDir("/proc")
	prefix := filepath.Join(os.TempDir(), dirPrefix)
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmd, []byte("containerd-shim")) || !bytes.Contains(cmd, []byte(prefix)) {
			continue
		}
		out = append(out, pid)
	}
	return out
}

func killShims(logf func(string, ...any)) {
	for _, pid := range shimPIDs() {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			logf("kubenode: killed leftover containerd shim %d", pid)
		}
	}
}
