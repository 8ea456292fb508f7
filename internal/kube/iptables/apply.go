package iptables

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Result says what Apply or Cleanup did.
type Result struct {
	Backend Backend
	// Changed is false when the namespace already was in the wanted state (Apply: the same
	// rule set installed; Cleanup: nothing of ours there).
	Changed bool
	// Replaced: Apply found a different ISTIO_* rule set (another configuration, or the
	// remains of an interrupted run) and removed it first.
	Replaced bool
}

// Apply installs the plan in the current network namespace: nothing when the same rule set
// is already there; otherwise any other ISTIO_* set is removed, the plan is written with
// one iptables-restore input and, in TPROXY mode, the policy routes are added. If any step
// fails, everything the plan installs is removed again before the error is returned.
func Apply(ctx context.Context, b Backend, p Plan) (Result, error) {
	res := Result{Backend: b}
	st, err := readState(ctx, b)
	if err != nil {
		return res, err
	}
	if st.installed(ctx, b, p) {
		// The routes are not in iptables-save: (re)add them, which is a no-op when present.
		if err := addRoutes(p); err != nil {
			return res, rollback(ctx, b, p, fmt.Errorf("tproxy routes: %w", err))
		}
		return res, nil
	}
	res.Changed = true
	if !st.clean() {
		res.Replaced = true
		if err := removeRules(ctx, b, p, st); err != nil {
			return res, fmt.Errorf("removing the rule set found in the namespace: %w", err)
		}
	}
	if err := b.restore(ctx, p.Restore()); err != nil {
		return res, rollback(ctx, b, p, err)
	}
	if err := addRoutes(p); err != nil {
		return res, rollback(ctx, b, p, fmt.Errorf("tproxy routes: %w", err))
	}
	// What iptables-save shows must now be the plan, rule for rule.
	st, err = readState(ctx, b)
	if err != nil {
		return res, rollback(ctx, b, p, err)
	}
	if !st.installed(ctx, b, p) {
		return res, rollback(ctx, b, p, errors.New("the rules read back differ from the rules written"))
	}
	return res, nil
}

// rollback removes what p installs after a failure and returns the failure (with the
// rollback's own error if that failed too).
func rollback(ctx context.Context, b Backend, p Plan, cause error) error {
	if _, err := Cleanup(ctx, b, p); err != nil {
		return fmt.Errorf("%w; rolling back also failed: %w", cause, err)
	}
	return fmt.Errorf("%w (nothing was left installed)", cause)
}

// Cleanup removes what Apply installs for p: the ISTIO_* chains and every rule that jumps
// to them, the plan's other rules in built-in chains (interface exclusions, TPROXY marks),
// and the TPROXY routes. Other rules are left alone.
func Cleanup(ctx context.Context, b Backend, p Plan) (Result, error) {
	res := Result{Backend: b}
	st, err := readState(ctx, b)
	if err != nil {
		return res, err
	}
	routed, err := removeRoutes(p)
	if err != nil {
		return res, fmt.Errorf("tproxy routes: %w", err)
	}
	res.Changed = routed
	if st.clean() && !st.hasPlanned(ctx, b, p) {
		return res, nil
	}
	res.Changed = true
	if err := removeRules(ctx, b, p, st); err != nil {
		return res, err
	}
	if st, err = readState(ctx, b); err != nil {
		return res, err
	} else if !st.clean() {
		return res, errors.New("ISTIO_* chains or jumps to them are still there after the cleanup")
	}
	return res, nil
}

// removeRules deletes, with one iptables-restore input: the rules of built-in chains that
// jump to ISTIO_* chains (as iptables-save prints them), the plan's other built-in rules
// that are present, then the ISTIO_* chains (flushed, then deleted).
func removeRules(ctx context.Context, b Backend, p Plan, st state) error {
	var in strings.Builder
	for _, t := range tables {
		ts := st[t]
		var lines []string
		for _, r := range ts.rules {
			if builtin(r.chain) && strings.HasPrefix(r.target, chainPrefix) {
				lines = append(lines, "-D "+strings.TrimPrefix(r.line, "-A "))
			}
		}
		for _, r := range p.Rules {
			if r.Table == t && builtin(r.Chain) && !strings.HasPrefix(r.target(), chainPrefix) && b.check(ctx, r) {
				lines = append(lines, strings.Join(append([]string{"-D", r.Chain}, r.Args...), " "))
			}
		}
		chains := ts.istioChains()
		for _, c := range chains {
			lines = append(lines, "-F "+c)
		}
		for _, c := range chains {
			lines = append(lines, "-X "+c)
		}
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(&in, "* %s\n%s\nCOMMIT\n", t, strings.Join(lines, "\n"))
	}
	if in.Len() == 0 {
		return nil
	}
	return b.restore(ctx, in.String())
}

// state is iptables-save's view of the tables a plan touches.
type state map[string]tableState

type tableState struct {
	chains []string // every chain declared (":NAME …")
	rules  []savedRule
}

type savedRule struct {
	chain, target string
	line          string // "-A CHAIN …" as iptables-save prints it
}

func readState(ctx context.Context, b Backend) (state, error) {
	out, err := b.save(ctx)
	if err != nil {
		return nil, err
	}
	return parseSave(out), nil
}

// parseSave reads iptables-save output (tables other than mangle, nat and raw are skipped).
func parseSave(out string) state {
	st := state{}
	table := ""
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			table = strings.TrimSpace(line[1:])
			if !slices.Contains(tables, table) {
				table = ""
			}
		case table == "":
		case strings.HasPrefix(line, ":"):
			ts := st[table]
			name, _, _ := strings.Cut(line[1:], " ")
			ts.chains = append(ts.chains, name)
			st[table] = ts
		case strings.HasPrefix(line, "-A "):
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			r := savedRule{chain: f[1], line: line}
			for i := 2; i+1 < len(f); i++ {
				if f[i] == "-j" || f[i] == "-g" {
					r.target = f[i+1]
				}
			}
			ts := st[table]
			ts.rules = append(ts.rules, r)
			st[table] = ts
		}
	}
	return st
}

func (ts tableState) istioChains() []string {
	var out []string
	for _, c := range ts.chains {
		if strings.HasPrefix(c, chainPrefix) {
			out = append(out, c)
		}
	}
	return out
}

// clean: no ISTIO_* chain and no jump to one in any table.
func (st state) clean() bool {
	for _, ts := range st {
		if len(ts.istioChains()) > 0 {
			return false
		}
		for _, r := range ts.rules {
			if strings.HasPrefix(r.target, chainPrefix) {
				return false
			}
		}
	}
	return true
}

// hasPlanned: one of the plan's rules in built-in chains that jump to no ISTIO_* chain is
// present (left by an interrupted run).
func (st state) hasPlanned(ctx context.Context, b Backend, p Plan) bool {
	for _, r := range p.Rules {
		if builtin(r.Chain) && !strings.HasPrefix(r.target(), chainPrefix) && b.check(ctx, r) {
			return true
		}
	}
	return false
}

// installed: the namespace holds exactly the plan's ISTIO_* chains, each with the plan's
// number of rules, the built-in chains hold as many jumps to ISTIO_* chains as the plan has,
// and iptables -C finds every rule of the plan (Istio's check; -C does not check order).
func (st state) installed(ctx context.Context, b Backend, p Plan) bool {
	count := func(rules []Rule, keep func(Rule) bool) int {
		n := 0
		for _, r := range rules {
			if keep(r) {
				n++
			}
		}
		return n
	}
	for _, t := range tables {
		ts := st[t]
		want := p.Chains(t)
		have := ts.istioChains()
		if len(want) != len(have) {
			return false
		}
		for _, c := range want {
			if !slices.Contains(have, c) {
				return false
			}
			n := count(p.Rules, func(r Rule) bool { return r.Table == t && r.Chain == c })
			saved := 0
			for _, r := range ts.rules {
				if r.chain == c {
					saved++
				}
			}
			if n != saved {
				return false
			}
		}
		jumps := count(p.Rules, func(r Rule) bool {
			return r.Table == t && builtin(r.Chain) && strings.HasPrefix(r.target(), chainPrefix)
		})
		saved := 0
		for _, r := range ts.rules {
			if builtin(r.chain) && strings.HasPrefix(r.target, chainPrefix) {
				saved++
			}
		}
		if jumps != saved {
			return false
		}
	}
	for _, r := range p.Rules {
		if !b.check(ctx, r) {
			return false
		}
	}
	return true
}
