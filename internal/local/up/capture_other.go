//go:build !linux

package up

import (
	"context"
	"errors"
	"io"
	"net/netip"
)

// errCaptureLinux: pods are Linux network namespaces.
var errCaptureLinux = errors.New("lucid up --capture runs on Linux only (each workload in its own network namespace, with iptables capture rules); without --capture, lucid up runs the same mesh on loopback")

type captureMesh struct{}

// CaptureRequirements says what `up --capture` lacks to run here.
func CaptureRequirements() error { return errCaptureLinux }

func startCapture(context.Context, *Plan, Options, map[string]netip.Addr, *Output) (*captureMesh, error) {
	return nil, errCaptureLinux
}

func (*captureMesh) close()                              {}
func (*captureMesh) welcome(func(string, ...any), *Plan) {}

// HoldPod is Linux only.
func HoldPod(string, string, string, io.Writer) error { return errCaptureLinux }

// JoinPod is Linux only.
func JoinPod(int) error { return errCaptureLinux }

// ExecAs is Linux only.
func ExecAs(int, int, bool, []string) error { return errCaptureLinux }
