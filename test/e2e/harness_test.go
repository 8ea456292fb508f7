package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// The tests that run the README and the --help examples use the examples' fixed addresses
// (127.0.0.1:8080, 127.0.10.9:15001, ...). Each runs in a network namespace of its own when
// it can, so it neither meets another run of the mesh on this machine nor leaves one
// behind: the test binary runs itself again under `unshare -n` with lo up.

// begin skips a test that builds and runs lucid under -short (what says what it runs), and
// reports whether its body runs in this process (see isolated).
func begin(t *testing.T, what string) bool {
	t.Helper()
	if testing.Short() {
		t.Skipf("skipping: %s (drop -short to run)", what)
	}
	return isolated(t)
}

// netnsEnv marks the test process that runs inside the namespace.
const netnsEnv = "LUCID_E2E_NETNS"

// isolated reports whether the calling test should run its body in this process. As root
// with unshare and ip, the first call re-runs the test in a fresh network namespace and
// returns false (the child's result is the test's). Without them the test runs here if the
// examples' addresses are free (skipped otherwise; under CI, a failure).
func isolated(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) == t.Name() {
		return true
	}
	why := netnsUnavailable()
	if why == "" {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout())
		defer cancel()
		cmd := exec.CommandContext(ctx, "unshare", "-n", "sh", "-c",
			`ip link set lo up && exec "$0" -test.run "$1" -test.v -test.count=1 -test.timeout "$2"`,
			os.Args[0], "^"+regexp.QuoteMeta(t.Name())+"$", testTimeout().String())
		cmd.Env = append(os.Environ(), netnsEnv+"="+t.Name())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the test failed in its network namespace: %v\n%s", err, out)
		}
		if regexp.MustCompile(`(?m)^--- SKIP: ` + regexp.QuoteMeta(t.Name()) + ` `).Match(out) {
			t.Skipf("skipped in its network namespace:\n%s", out)
		}
		for _, skipped := range regexp.MustCompile(`(?m)^\s+--- SKIP: .*$`).FindAll(out, -1) {
			t.Logf("in its network namespace, a subtest was skipped: %s", strings.TrimSpace(string(skipped)))
		}
		t.Logf("passed in a fresh network namespace")
		return false
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("cannot run in a network namespace of its own (%s); CI must", why)
	}
	for _, a := range bookinfoAddrs {
		if c, err := net.DialTimeout("tcp", a, 200*time.Millisecond); err == nil {
			_ = c.Close()
			t.Skipf("no network namespace (%s) and %s is in use: is another `lucid up` running?", why, a)
		}
	}
	return true
}

func netnsUnavailable() string {
	if os.Geteuid() != 0 {
		return "not root"
	}
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " not found"
		}
	}
	return ""
}

// testTimeout is the -test.timeout this binary runs with (the child gets the same).
func testTimeout() time.Duration {
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil && d > 0 {
			return d
		}
	}
	return 10 * time.Minute
}

// shell runs commands as a user would in a terminal: sh -c, in dir, with bin first on PATH.
type shell struct {
	dir string
	env []string
}

func newShell(dir, bin string) *shell {
	return &shell{dir: dir, env: append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "NO_COLOR=1")}
}

// result is what one command did.
type result struct {
	cmd  string
	out  string // stdout and stderr
	code int    // exit status
}

func (r result) String() string {
	return fmt.Sprintf("$ %s\n%s(exit status %d)", r.cmd, r.out, r.code)
}

// run runs one command to its end (at most timeout).
func (s *shell) run(t *testing.T, command string, timeout time.Duration) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Dir, cmd.Env = s.dir, s.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	r := result{cmd: command, out: string(out)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", command, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v:\n%s", command, timeout, out)
	}
	return r
}

// proc is a long-running command (lucid up, a sidecar, ...) started by a test.
type proc struct {
	cmd    *exec.Cmd
	out    *testutil.Buffer
	exited chan error
	err    error
	done   bool
}

// start runs command in the background in its own process group; the test's cleanup kills
// the group if the test did not stop it.
func (s *shell) start(t *testing.T, command string) *proc {
	t.Helper()
	p := &proc{out: &testutil.Buffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command("sh", "-c", "exec "+command)
	p.cmd.Dir, p.cmd.Env = s.dir, s.env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", command, err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if !p.done {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			if err := <-p.exited; err != nil {
				t.Logf("%s killed at the end of the test: %v", p.cmd.Args[2], err)
			}
		}
	})
	return p
}

// waitFor waits until the output contains want, failing if the process exits without
// printing it (a process that prints it and exits, as --count 1 does, passes).
func (p *proc) waitFor(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	exited := false
	err := testutil.Poll(timeout, func() error {
		if strings.Contains(p.out.String(), want) {
			return nil
		}
		select {
		case err := <-p.exited:
			// Wait returned once the output was copied: all of it is there now.
			p.done, p.err, exited = true, err, true
			return nil
		default:
			return errors.New("not printed yet")
		}
	})
	switch {
	case exited && !strings.Contains(p.out.String(), want):
		t.Fatalf("%s exited (%v) before printing %q:\n%s", p.cmd.Args[2], p.err, want, p.out.String())
	case err != nil:
		t.Fatalf("%s did not print %q within %v:\n%s", p.cmd.Args[2], want, timeout, p.out.String())
	}
}

// interrupt sends Ctrl-C (SIGINT to the process, as a terminal does to the foreground
// process) and waits up to timeout for it to exit.
func (p *proc) interrupt(t *testing.T, timeout time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.done, p.err = true, err
		return time.Since(start), err
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v of Ctrl-C:\n%s", p.cmd.Args[2], timeout, p.out.String())
	}
	return 0, nil
}

// copyTree copies the working tree (what `git ls-files` lists, tracked or not yet, without
// what .gitignore excludes) to dst: the files a fresh clone would hold, with today's edits.
func copyTree(t *testing.T, dst string) {
	t.Helper()
	root := repoRoot(t)
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, f)
		st, err := os.Lstat(src)
		if err != nil || !st.Mode().IsRegular() {
			continue // deleted in the working tree, or not a file
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// gitInit makes dir a Git repository with everything committed, so a README command such
// as `git checkout FILE` works as in a clone.
func gitInit(t *testing.T, dir string) {
	t.Helper()
	for _, args := range [][]string{
		{"init", "-q"},
		{"add", "-A"},
		{"-c", "user.name=e2e", "-c", "user.email=e2e@lucid.invalid", "commit", "-q", "-m", "fresh clone"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
