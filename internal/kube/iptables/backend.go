package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Backend is the iptables variant the rules go to: its three binaries.
type Backend struct {
	Variant  string // "legacy" or "nft"
	Iptables string // e.g. iptables-nft
	Save     string // e.g. iptables-nft-save
	Restore  string // e.g. iptables-nft-restore
}

// Variants accepted by --force-iptables-binary.
const (
	VariantLegacy = "legacy"
	VariantNFT    = "nft"
)

// ErrNoIptables is returned when no usable iptables binary is in PATH.
var ErrNoIptables = errors.New("no usable iptables binary in PATH (looked for iptables-legacy-save, iptables-nft-save and iptables-save; the image running `lucid iptables` must ship iptables)")

// DetectBackend picks the iptables variant as istio-iptables does: iptables-legacy when the
// network namespace already has legacy rules (they must stay in one place), else
// iptables-nft, else the unsuffixed iptables. force ("legacy" or "nft") skips the choice.
//
// Unlike Istio, "has rules" means at least one rule (an "-A" line): a legacy table that
// exists with empty built-in chains (loaded by an unrelated `iptables-legacy -L`) does not
// pull the pod onto legacy.
func DetectBackend(ctx context.Context, force string) (Backend, error) {
	switch force {
	case "":
	case VariantLegacy, VariantNFT:
		b, _, err := probe(ctx, "iptables-"+force)
		if err != nil {
			return Backend{}, fmt.Errorf("--force-iptables-binary %s: %w", force, err)
		}
		return b, nil
	default:
		return Backend{}, fmt.Errorf("--force-iptables-binary %q: must be legacy or nft", force)
	}
	var errs []error
	if b, hasRules, err := probe(ctx, "iptables-legacy"); err == nil && hasRules {
		return b, nil
	} else if err != nil {
		errs = append(errs, err)
	}
	for _, bin := range []string{"iptables-nft", "iptables"} {
		b, _, err := probe(ctx, bin)
		if err == nil {
			return b, nil
		}
		errs = append(errs, err)
	}
	return Backend{}, fmt.Errorf("%w: %w", ErrNoIptables, errors.Join(errs...))
}

// probe runs "<bin>-save --version" and "<bin>-save": the binary works and its kernel
// support is there; hasRules tells whether the namespace has rules of this variant.
func probe(ctx context.Context, bin string) (b Backend, hasRules bool, err error) {
	b = Backend{Iptables: bin, Save: bin + "-save", Restore: bin + "-restore"}
	for _, name := range []string{b.Iptables, b.Save, b.Restore} {
		if _, err := exec.LookPath(name); err != nil {
			return b, false, fmt.Errorf("%s: not found", name)
		}
	}
	version, err := run(ctx, "", b.Save, "--version")
	if err != nil {
		return b, false, err
	}
	b.Variant = VariantLegacy
	if strings.Contains(version, "nf_tables") {
		b.Variant = VariantNFT
	}
	dump, err := run(ctx, "", b.Save)
	if err != nil {
		return b, false, err
	}
	for _, line := range strings.Split(dump, "\n") {
		if strings.HasPrefix(line, "-A ") {
			return b, true, nil
		}
	}
	return b, false, nil
}

// wait is legacy iptables' lock flag (nf_tables needs no lock).
func (b Backend) wait() []string {
	if b.Variant == VariantLegacy {
		return []string{"--wait=30"}
	}
	return nil
}

// save returns the namespace's rules (iptables-save).
func (b Backend) save(ctx context.Context) (string, error) {
	return run(ctx, "", b.Save)
}

// restore feeds input to iptables-restore without flushing the tables it names.
func (b Backend) restore(ctx context.Context, input string) error {
	_, err := run(ctx, input, b.Restore, append([]string{"--noflush"}, b.wait()...)...)
	return err
}

// check reports whether rule r is in its chain (iptables -C).
func (b Backend) check(ctx context.Context, r Rule) bool {
	args := append([]string{"-t", r.Table, "-C", r.Chain}, r.Args...)
	_, err := run(ctx, "", b.Iptables, append(args, b.wait()...)...)
	return err == nil
}

// commandTimeout bounds one iptables command (legacy waits up to 30 s for its lock).
const commandTimeout = 45 * time.Second

// run executes one command; its error carries the command's stderr.
func run(ctx context.Context, stdin, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...) //nolint:gosec // name is one of iptables' binaries (DetectBackend); args are the plan's
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return stdout.String(), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
		}
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}
