package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// usage is one sample of the processes' memory and CPU.
type usage struct {
	cp              stats   // the control plane's own view (Go heap, CPU)
	cpMem           procMem // the control plane's RSS
	api, etcd       procMem
	apiCPU, etcdCPU float64
}

// report is everything one run measured.
type report struct {
	opts     options
	machine  string
	protocol string

	clusterStart, populate, cpReady time.Duration
	phases                          []phase
	atReady, afterSync, atEnd       usage
	sync                            result
	changes, vsChanges, creates     []change
	changeCPU                       []float64 // control-plane CPU seconds per endpoint change (till settled)
	pushes                          int64
	sustained                       *sustainResult
	footprint                       *footprint
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func pick(cs []change, f func(change) time.Duration) []time.Duration {
	out := make([]time.Duration, len(cs))
	for i, c := range cs {
		out[i] = f(c)
	}
	return out
}

func alls(cs []change) []time.Duration {
	return pick(cs, func(c change) time.Duration { return c.all })
}
func firsts(cs []change) []time.Duration {
	return pick(cs, func(c change) time.Duration { return c.first })
}
func p50s(cs []change) []time.Duration {
	return pick(cs, func(c change) time.Duration { return c.p50 })
}
func apis(cs []change) []time.Duration {
	return pick(cs, func(c change) time.Duration { return c.api })
}

// markdown renders the report.
func (r *report) markdown() string {
	var b strings.Builder
	l := r.opts.layout
	drs := (l.services + l.drEvery - 1) / l.drEvery
	scope := "all-to-all (every sidecar sees every Service)"
	if l.scoped {
		scope = fmt.Sprintf("scoped (a Sidecar per namespace: egress ./* and %s/*)", sharedNamespace)
	}
	fmt.Fprintf(&b, "### %s mode, %s: run finished %s\n\n", r.opts.mode, scope, time.Now().UTC().Format("2006-01-02T15:04Z"))
	fmt.Fprintf(&b, "- Machine: %s\n", r.machine)
	fmt.Fprintf(&b, "- Mesh: %d Services in %d namespaces, %d endpoints (%d per Service), %d DestinationRules with subsets v1/v2; "+
		"%d sidecars (xdsclient %s clients in one process, no proxies; that process's GOGC %s)\n",
		l.services, l.namespaces, l.services*l.endpoints, l.endpoints, drs, l.sidecars, r.protocol, gogcOf(r.opts.clientsGOGC))
	if r.opts.mode == "kube" {
		fmt.Fprintf(&b, "- API server start %s; objects created through the API in %.1f s with %d parallel requests:", ms(r.clusterStart), r.populate.Seconds(), r.opts.workers)
	} else {
		fmt.Fprintf(&b, "- Config directory written in %.1f s:", r.populate.Seconds())
	}
	for _, p := range r.phases {
		fmt.Fprintf(&b, " %s %d in %.1f s;", p.what, p.count, p.took.Seconds())
	}
	b.WriteString("\n\n")

	b.WriteString("| what | first sidecar | p50 sidecar | every sidecar |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| control plane start → first configuration published | - | - | %s |\n", ms(r.cpReady))
	fmt.Fprintf(&b, "| %d sidecars connect → full configuration decoded | %s | %s | %s |\n", l.sidecars, ms(r.sync.first), ms(r.sync.p50), ms(r.sync.all))
	for _, g := range []struct {
		what string
		cs   []change
	}{
		{"endpoint change (endpoint removed/added, pod label flipped)", r.changes},
		{"VirtualService change (created, retries changed)", r.vsChanges},
		{"Service created (+ its endpoints)", r.creates},
	} {
		if len(g.cs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s ×%d, p50 of the changes | %s | %s | %s |\n", g.what, len(g.cs),
			ms(percentile(firsts(g.cs), 50)), ms(percentile(p50s(g.cs), 50)), ms(percentile(alls(g.cs), 50)))
		fmt.Fprintf(&b, "| %s, max of the changes | %s | %s | %s |\n", g.what,
			ms(percentile(firsts(g.cs), 100)), ms(percentile(p50s(g.cs), 100)), ms(percentile(alls(g.cs), 100)))
	}
	b.WriteString("\nTimes run from just before the write (API request or file rename) to the moment each sidecar that sees the\n")
	fmt.Fprintf(&b, "change applied the decoded snapshot that has it (its ACK is the next thing it sends). Write latency alone: p50 %s, "+
		"max %s. Snapshots applied by the sidecars during the timed changes: %d.\n\n",
		ms(percentile(apis(r.changes), 50)), ms(percentile(apis(r.changes), 100)), r.pushes)

	b.WriteString("| process, moment | RSS MiB | peak RSS MiB | Go heap live MiB | Go runtime total MiB | CPU s (cumulative) |\n|---|---|---|---|---|---|\n")
	rows := []struct {
		when string
		u    usage
	}{
		{"configuration built, no sidecar", r.atReady},
		{fmt.Sprintf("%d sidecars synced", l.sidecars), r.afterSync},
		{"after the timed changes", r.atEnd},
	}
	if s := r.sustained; s != nil && len(s.memory) > 0 {
		rows = append(rows, struct {
			when string
			u    usage
		}{"after the sustained churn", s.memory[len(s.memory)-1]})
	}
	for _, s := range rows {
		fmt.Fprintf(&b, "| control plane, %s | %.1f | %.1f | %.1f | %.1f | %.1f |\n", s.when,
			mib(s.u.cpMem.rss), mib(s.u.cpMem.hwm), mibBytes(s.u.cp.HeapLive), mibBytes(s.u.cp.GoTotal), s.u.cp.CPUSeconds)
	}
	if r.opts.mode == "kube" {
		fmt.Fprintf(&b, "| kube-apiserver, after the timed changes | %.1f | %.1f | - | - | %.1f |\n", mib(r.atEnd.api.rss), mib(r.atEnd.api.hwm), r.atEnd.apiCPU)
		fmt.Fprintf(&b, "| etcd, after the timed changes | %.1f | %.1f | - | - | %.1f |\n", mib(r.atEnd.etcd.rss), mib(r.atEnd.etcd.hwm), r.atEnd.etcdCPU)
	}
	perProxyRSS := float64(r.afterSync.cpMem.rss-r.atReady.cpMem.rss) / 1024 / float64(l.sidecars)
	perProxyHeap := (mibBytes(r.afterSync.cp.HeapLive) - mibBytes(r.atReady.cp.HeapLive)) / float64(l.sidecars)
	var cpuPer []time.Duration
	for _, c := range r.changeCPU {
		cpuPer = append(cpuPer, time.Duration(c*float64(time.Second)))
	}
	fmt.Fprintf(&b, "\nPer connected proxy above the idle base: %.2f MiB RSS, %.2f MiB live Go heap. Control-plane CPU: %.1f s to the "+
		"first configuration, %.1f s for the first sync of %d sidecars; per endpoint change (until the control plane was idle "+
		"again) p50 %s, max %s.\n\n",
		perProxyRSS, perProxyHeap, r.atReady.cp.CPUSeconds, r.afterSync.cp.CPUSeconds-r.atReady.cp.CPUSeconds, l.sidecars,
		ms(percentile(cpuPer, 50)), ms(percentile(cpuPer, 100)))

	if s := r.sustained; s != nil {
		first, last, peak := s.memory[0], s.memory[len(s.memory)-1], 0.0
		for _, u := range s.memory {
			peak = max(peak, mibBytes(u.cp.HeapLive))
		}
		fmt.Fprintf(&b, "Sustained churn: %d endpoint changes in %.0f s (%.0f/s, %d writers) to %d Services every sidecar sees. "+
			"Write → applied by a sidecar, over every (change, sidecar): p50 %s, p99 %s, max %s; the furthest any sidecar "+
			"was behind, sampled every 250 ms: %s; changes never applied: %d. Snapshots applied: %.0f per sidecar. "+
			"Control plane: %.1f CPU s (%.0f %% of one core), live heap %.1f → %.1f MiB (peak %.1f), RSS %.1f → %.1f MiB.\n\n",
			s.writes, s.duration.Seconds(), s.rate, s.writersConcurrency, s.watchedServices,
			ms(s.p50), ms(s.p99), ms(s.max), ms(s.worstBehind), s.missing, s.appliesPerSidecar,
			s.cpuSeconds, 100*s.cpuSeconds/s.duration.Seconds(), mibBytes(first.cp.HeapLive), mibBytes(last.cp.HeapLive), peak,
			mib(first.cpMem.rss), mib(last.cpMem.rss))
		fmt.Fprintf(&b, "The control plane's own view of the sustained churn (pilot_proxy_convergence_time: change → the push's "+
			"last response to a proxy sent): %s.\n\n", s.convergence)
	}
	if f := r.footprint; f != nil {
		fmt.Fprintf(&b, "One real sidecar (`lucid sidecar`, %d Services visible): ready %s after start (configuration received, "+
			"decoded and applied), RSS %.1f MiB 3 s later, peak %.1f MiB.\n\n", f.services, ms(f.ready), mib(f.rss), mib(f.hwm))
	}

	b.WriteString("<details><summary>every timed change</summary>\n\n| # | change | write | first | p50 | every sidecar (n) |\n|---|---|---|---|---|---|\n")
	for i, c := range slices.Concat(r.changes, r.vsChanges, r.creates) {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s (%d) |\n", i+1, c.what, ms(c.api), ms(c.first), ms(c.p50), ms(c.all), c.n)
	}
	b.WriteString("\n</details>\n")
	return b.String()
}

// gogcOf names a -clients-gogc setting.
func gogcOf(n int) string {
	if n <= 0 {
		return "default"
	}
	return strconv.Itoa(n)
}
