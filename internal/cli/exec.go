package cli

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lucid-mesh/lucid/internal/local/up"
)

func init() {
	register(newExecCmd)
	register(newPodHoldCmd)
	register(newPodRunCmd)
}

// addCaptureFlags adds `lucid up`'s --capture flags.
func addCaptureFlags(f *pflag.FlagSet, opts *up.Options) {
	f.BoolVar(&opts.Capture, "capture", false, "run each workload in its own network namespace with its traffic captured by iptables, as in a Kubernetes pod (Linux, root); then: lucid exec WORKLOAD -- CMD")
	f.Func("capture-range", "the pods' private IPv4 range with --capture (default "+up.DefaultCaptureRange.String()+"; the bridge takes its first address)", func(s string) error {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() || p.Bits() > 28 {
			return fmt.Errorf("want an IPv4 range of at least 16 addresses, like %s", up.DefaultCaptureRange)
		}
		opts.CaptureRange = p
		return nil
	})
}

func newExecCmd() *cobra.Command {
	var uid int
	cmd := &cobra.Command{
		Use:   "exec WORKLOAD -- COMMAND [ARGS...]",
		Short: "Run a command inside a workload's pod of lucid up --capture (its traffic captured by the sidecar)",
		Long: `Run any unmodified program inside the pod of a workload that lucid up --capture runs: in the
pod's network namespace (its connections are captured to the workload's sidecar, as an app's
in a Kubernetes pod) and with the pod's /etc/hosts and /etc/resolv.conf, as a uid other than the
sidecar's 1337 (default: the user sudo was run by, else nobody; --uid 1337 runs beside the
sidecar, uncaptured). WORKLOAD is the
WorkloadEntry's name (name.namespace outside the default namespace). Needs root, as lucid up
--capture does. The command's exit status is lucid exec's.`,
		Example: `  sudo lucid exec curl -- curl -s http://reviews:9080/
  sudo lucid exec curl -- curl -s -i http://reviews:9080/v3     # the explained 503 UH
  sudo lucid exec productpage -- sh`,
		Args: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			if len(args) == 0 {
				return errors.New("exec needs a workload and a command: lucid exec curl -- curl http://reviews:9080/")
			}
			if dash != 1 || len(args) < 2 {
				return fmt.Errorf("exec: give the command after --: lucid exec %s -- curl http://reviews:9080/", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if uid == up.ProxyUID {
				_, _ = fmt.Fprintf(cmd.ErrOrStderr(), "lucid exec: uid %d is the sidecar's: the pod's rules do not capture this command's connections\n", up.ProxyUID)
			}
			if !cmd.Flags().Changed("uid") {
				uid = defaultExecUID()
			}
			holder, err := up.PodHolder(args[0])
			if err != nil {
				return err
			}
			if err := up.JoinPod(holder); err != nil {
				return fmt.Errorf("exec %s: %w", args[0], err)
			}
			return up.ExecAs(uid, uid, false, args[1:])
		},
	}
	cmd.Flags().IntVar(&uid, "uid", up.AppUID, "the uid (and gid) the command runs as")
	return cmd
}

// defaultExecUID is the user who ran sudo, else nobody; never root's 0 or the sidecar's.
func defaultExecUID() int {
	if v, err := strconv.Atoi(os.Getenv("SUDO_UID")); err == nil && v > 0 && v != up.ProxyUID {
		return v
	}
	return up.AppUID
}

// newPodHoldCmd is the holder of a pod of lucid up --capture (started by up, in the pod's new
// namespaces; not for users).
func newPodHoldCmd() *cobra.Command {
	var hosts, resolv, nsswitch string
	cmd := &cobra.Command{
		Use:    "internal-pod-hold",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return up.HoldPod(hosts, resolv, nsswitch, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&hosts, "hosts", "", "file bind-mounted over /etc/hosts")
	cmd.Flags().StringVar(&resolv, "resolv", "", "file bind-mounted over /etc/resolv.conf")
	cmd.Flags().StringVar(&nsswitch, "nsswitch", "", "file bind-mounted over /etc/nsswitch.conf")
	return cmd
}

// newPodRunCmd runs one of a pod's processes (capture rules, sidecar, app) for lucid up
// --capture: joins the pod, changes uid, execs (not for users).
func newPodRunCmd() *cobra.Command {
	var (
		holder, uid int
		copyFile    string
	)
	cmd := &cobra.Command{
		Use:    "internal-pod-run --pod PID [--uid UID] [--copy SRC:DST] -- COMMAND...",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if src, dst, ok := strings.Cut(copyFile, ":"); ok {
				b, err := os.ReadFile(src)
				if err != nil {
					return err
				}
				if err := os.WriteFile(dst, b, 0o644); err != nil { //nolint:gosec // G306: public CA roots, read by the sidecar's uid
					return err
				}
			}
			if err := up.JoinPod(holder); err != nil {
				return err
			}
			return up.ExecAs(uid, uid, true, args)
		},
	}
	f := cmd.Flags()
	f.IntVar(&holder, "pod", 0, "pid of the pod's holder")
	f.IntVar(&uid, "uid", -1, "uid and gid to run as (-1: unchanged)")
	f.StringVar(&copyFile, "copy", "", "copy SRC to DST (mode 0644) before the uid changes")
	f.SetInterspersed(false)
	return cmd
}
