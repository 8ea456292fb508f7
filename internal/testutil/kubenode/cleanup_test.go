package kubenode

import (
	"strings"
	"testing"
)

func TestMountPoint(t *testing.T) {
	for _, tt := range []struct{ line, want string }{
		{`36 35 98:0 /mnt1 /mnt/with\040space rw,noatime master:1 - ext3 /dev/root rw`, "/mnt/with space"},
		{`1025 30 0:123 / /tmp/lucid-kubenode-1/kubelet/pods/x/volumes rw - tmpfs tmpfs rw`, "/tmp/lucid-kubenode-1/kubelet/pods/x/volumes"},
		{`12 1 0:5 / /a\134b rw - x x rw`, `/a\b`},
	} {
		if got, ok := mountPoint(tt.line); !ok || got != tt.want {
			t.Errorf("mountPoint(%q) = %q, %v; want %q", tt.line, got, ok, tt.want)
		}
	}
	if _, ok := mountPoint("too short"); ok {
		t.Error("a short line gave a mount point")
	}
}

// FuzzMountPoint: any line parses without panicking, and a field without escapes comes back as is.
func FuzzMountPoint(f *testing.F) {
	f.Add(`36 35 98:0 /mnt1 /mnt/with\040space rw,noatime master:1 - ext3 /dev/root rw`)
	f.Add(`1 2 3 4 \999\04`)
	f.Add("")
	f.Fuzz(func(t *testing.T, line string) {
		m, ok := mountPoint(line)
		if !ok {
			return
		}
		if field := strings.Fields(line)[4]; !strings.Contains(field, `\`) && m != field {
			t.Fatalf("%q → %q, want the field unchanged", line, m)
		}
	})
}
