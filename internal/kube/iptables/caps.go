package iptables

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Linux capability numbers (linux/capability.h).
const (
	capNetAdmin = 12
	capNetRaw   = 13
)

// CheckCapabilities returns an error naming the capability the process lacks to install the
// rules: NET_ADMIN always, NET_RAW too for legacy iptables (it talks to the kernel through
// a raw socket). The istio-init container adds both and runs as root.
func CheckCapabilities(b Backend) error {
	effective, err := effectiveCaps()
	if err != nil {
		return fmt.Errorf("reading the process's capabilities: %w", err)
	}
	need := []struct {
		bit  uint
		name string
	}{{capNetAdmin, "NET_ADMIN"}}
	if b.Variant == VariantLegacy {
		need = append(need, struct {
			bit  uint
			name string
		}{capNetRaw, "NET_RAW"})
	}
	for _, c := range need {
		if effective&(1<<c.bit) == 0 {
			return fmt.Errorf("missing capability %s: installing the capture rules needs NET_ADMIN (and NET_RAW for iptables-legacy); run as root or add the capability to the container", c.name)
		}
	}
	return nil
}

// effectiveCaps reads CapEff from /proc/self/status.
func effectiveCaps() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no CapEff line in /proc/self/status")
}
