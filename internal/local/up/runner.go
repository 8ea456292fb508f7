package up

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Output writes the lines of many processes to one writer, each with a fixed-width
// prefix naming its process ("reviews-v1 sidecar | "), colored when Color is set. Lines
// from different processes never interleave.
type Output struct {
	mu    sync.Mutex
	w     io.Writer
	width int
	color bool
	next  int // next color index
}

// NewOutput returns an Output on w whose prefixes are padded to width characters.
func NewOutput(w io.Writer, width int, color bool) *Output {
	return &Output{w: w, width: width, color: color}
}

var palette = []string{"36", "33", "32", "35", "34", "31", "96", "93", "92", "95", "94", "91"}

// Writer returns an io.WriteCloser for one process; Close flushes a last partial line.
func (o *Output) Writer(name string) io.WriteCloser {
	o.mu.Lock()
	defer o.mu.Unlock()
	prefix := fmt.Sprintf("%-*s | ", o.width, name)
	if o.color {
		prefix = "\x1b[" + palette[o.next%len(palette)] + "m" + fmt.Sprintf("%-*s", o.width, name) + " |\x1b[0m "
		o.next++
	}
	return &lineWriter{out: o, prefix: prefix}
}

// Printf writes one line under the given name's prefix.
func (o *Output) Printf(name, format string, args ...any) {
	w := o.Writer(name)
	_, _ = fmt.Fprintf(w, format, args...)
	_ = w.Close()
}

func (o *Output) writeLine(prefix string, line []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	buf := make([]byte, 0, len(prefix)+len(line)+1)
	buf = append(buf, prefix...)
	buf = append(buf, line...)
	buf = append(buf, '\n')
	_, _ = o.w.Write(buf)
}

type lineWriter struct {
	out    *Output
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.out.writeLine(l.prefix, bytes.TrimSuffix(l.buf[:i], []byte("\r")))
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 64<<10 { // a very long line without a newline: write it as it is
		l.out.writeLine(l.prefix, l.buf)
		l.buf = nil
	}
	return len(p), nil
}

func (l *lineWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.out.writeLine(l.prefix, l.buf)
		l.buf = nil
	}
	return nil
}

// Child is one started process.
type Child struct {
	Process
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and its output is flushed
	err  error         // Wait's result; read after done
}

// Done is closed when the process has exited.
func (c *Child) Done() <-chan struct{} { return c.done }

// Err is the process's exit error (nil for exit status 0); valid after Done.
func (c *Child) Err() error { return c.err }

// Pid is the process id, which is also its process group id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Start runs p in its own process group with its output on out. exited is called (from
// another goroutine) once it has exited.
func Start(p Process, out *Output, exited func(*Child)) (*Child, error) {
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	w := out.Writer(p.Name)
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.SysProcAttr = childAttr()
	// A grandchild that keeps the output pipe open must not keep Wait from returning.
	cmd.WaitDelay = 2 * time.Second
	closeSecret, err := secretPipe(cmd, p.Secret) // identity.go
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", p.Name, err)
	}
	err = cmd.Start()
	closeSecret()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", p.Name, err)
	}
	c := &Child{Process: p, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		_ = w.Close()
		close(c.done)
		if exited != nil {
			exited(c)
		}
	}()
	return c, nil
}

// signalGroup sends sig to c's whole process group.
func (c *Child) signalGroup(sig syscall.Signal) {
	err := syscall.Kill(-c.Pid(), sig)
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = c.cmd.Process.Signal(sig)
	}
}

// stopNotice is how long a tier may take to stop before StopAll says what it waits for.
const stopNotice = 500 * time.Millisecond

// StopAll stops children tier by tier: every child of a tier gets SIGTERM (its whole
// process group), then SIGKILL if it has not exited after grace; the next tier starts
// once the tier before is gone. When a tier is still running after stopNotice, waiting
// (if not nil) is told which children are left and how long until SIGKILL. Groups are
// killed once more at the end so no grandchild survives its parent, and StopAll returns
// once they are gone (at most groupGoneWait each).
func StopAll(tiers [][]*Child, grace time.Duration, waiting func(left []*Child, kill time.Duration)) {
	for _, tier := range tiers {
		start := time.Now()
		for _, c := range tier {
			c.signalGroup(syscall.SIGTERM)
		}
		kill := time.NewTimer(grace)
		notice := time.NewTimer(min(stopNotice, grace))
		for i := 0; i < len(tier); {
			select {
			case <-tier[i].done:
				i++
			case <-notice.C:
				if waiting != nil {
					waiting(running(tier), grace-time.Since(start))
				}
			case <-kill.C:
				// grace is over for everyone left in this tier
				for _, c := range tier {
					c.signalGroup(syscall.SIGKILL)
				}
			}
		}
		kill.Stop()
		notice.Stop()
		for _, c := range tier {
			c.signalGroup(syscall.SIGKILL)
		}
		for _, c := range tier {
			waitGroupGone(c.Pid(), groupGoneWait)
		}
	}
}

// groupGoneWait bounds how long StopAll waits for a killed process group to be gone.
const groupGoneWait = 2 * time.Second

// running are the children of tier that have not exited yet.
func running(tier []*Child) []*Child {
	var out []*Child
	for _, c := range tier {
		select {
		case <-c.done:
		default:
			out = append(out, c)
		}
	}
	return out
}
