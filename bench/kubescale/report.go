package main

import (
	"fmt"
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
	opts    options
	machine string

	clusterStart, populate, cpReady time.Duration
	phases                          []phase
	atReady, afterSync, atEnd       usage
	sync                            result
	changes, creates                []change
	pushes                          int64
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func alls(cs []change) []time.Duration {
	out := make([]time.Duration, len(cs))
	for i, c := range cs {
		out[i] = c.all
	}
	return out
}

func firsts(cs []change) []time.Duration {
	out := make([]time.Duration, len(cs))
	for i, c := range cs {
		out[i] = c.first
	}
	return out
}

func apis(cs []change) []time.Duration {
	out := make([]time.Duration, len(cs))
	for i, c := range cs {
		out[i] = c.api
	}
	return out
}

// markdown renders the report.
func (r *report) markdown() string {
	var b strings.Builder
	l := r.opts.layout
	drs := (l.services + l.drEvery - 1) / l.drEvery
	fmt.Fprintf(&b, "### Run finished %s\n\n", time.Now().UTC().Format("2006-01-02T15:04Z"))
	fmt.Fprintf(&b, "- Machine: %s\n", r.machine)
	fmt.Fprintf(&b, "- Mesh: %d Services in %d namespaces, %d endpoints (%d per Service, one EndpointSlice each, with their Pods), "+
		"%d DestinationRules with subsets v1/v2; %d sidecars (xdsclient ADS clients, no proxies)\n",
		l.services, l.namespaces, l.services*l.endpoints, l.endpoints, drs, l.sidecars)
	fmt.Fprintf(&b, "- API server start %s; objects created through the API in %.1f s with %d parallel requests:\n",
		ms(r.clusterStart), r.populate.Seconds(), r.opts.workers)
	for _, p := range r.phases {
		fmt.Fprintf(&b, "  %s %d in %.1f s (%.0f/s);", p.what, p.count, p.took.Seconds(), p.rate())
	}
	b.WriteString("\n\n")

	b.WriteString("| what | first sidecar | every sidecar |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| control plane start → first configuration published (caches synced, built) | - | %s |\n", ms(r.cpReady))
	fmt.Fprintf(&b, "| %d sidecars connect → full configuration decoded (%d+ clusters each) | %s | %s |\n",
		l.sidecars, l.services+2*drs, ms(r.sync.first), ms(r.sync.all))
	if len(r.changes) > 0 {
		a, f := alls(r.changes), firsts(r.changes)
		fmt.Fprintf(&b, "| endpoint change (%d: EndpointSlice endpoint removed/added, pod label flipped), p50 | %s | %s |\n",
			len(r.changes), ms(percentile(f, 50)), ms(percentile(a, 50)))
		fmt.Fprintf(&b, "| endpoint change, p90 | %s | %s |\n", ms(percentile(f, 90)), ms(percentile(a, 90)))
		fmt.Fprintf(&b, "| endpoint change, max | %s | %s |\n", ms(percentile(f, 100)), ms(percentile(a, 100)))
	}
	if len(r.creates) > 0 {
		a, f := alls(r.creates), firsts(r.creates)
		fmt.Fprintf(&b, "| Service + EndpointSlice create (%d), p50 | %s | %s |\n", len(r.creates), ms(percentile(f, 50)), ms(percentile(a, 50)))
		fmt.Fprintf(&b, "| Service + EndpointSlice create, max | %s | %s |\n", ms(percentile(f, 100)), ms(percentile(a, 100)))
	}
	b.WriteString("\nTimes run from just before the API request to the moment each sidecar's xdsclient applied the decoded\n")
	fmt.Fprintf(&b, "snapshot that has the change. API request latency alone: p50 %s, max %s. Snapshots applied by the sidecars "+
		"during the changes: %d (%.1f per sidecar per change).\n\n",
		ms(percentile(apis(r.changes), 50)), ms(percentile(apis(r.changes), 100)), r.pushes,
		float64(r.pushes)/float64(max(1, l.sidecars*(len(r.changes)+len(r.creates)))))

	b.WriteString("| process, moment | RSS MiB | peak RSS MiB | Go heap live MiB | Go runtime total MiB | CPU s (cumulative) |\n|---|---|---|---|---|---|\n")
	for _, s := range []struct {
		when string
		u    usage
	}{
		{"caches synced, first build, no sidecar", r.atReady},
		{fmt.Sprintf("%d sidecars synced", l.sidecars), r.afterSync},
		{"after the changes", r.atEnd},
	} {
		fmt.Fprintf(&b, "| control plane, %s | %.1f | %.1f | %.1f | %.1f | %.1f |\n", s.when,
			mib(s.u.cpMem.rss), mib(s.u.cpMem.hwm), mibBytes(s.u.cp.HeapLive), mibBytes(s.u.cp.GoTotal), s.u.cp.CPUSeconds)
	}
	fmt.Fprintf(&b, "| kube-apiserver, end | %.1f | %.1f | - | - | %.1f |\n", mib(r.atEnd.api.rss), mib(r.atEnd.api.hwm), r.atEnd.apiCPU)
	fmt.Fprintf(&b, "| etcd, end | %.1f | %.1f | - | - | %.1f |\n", mib(r.atEnd.etcd.rss), mib(r.atEnd.etcd.hwm), r.atEnd.etcdCPU)
	fmt.Fprintf(&b, "\nControl-plane CPU: %.1f s from start to first configuration, %.1f s for the first sync of %d sidecars, "+
		"%.1f s for %d changes and %d creates (%.2f s per change).\n\n",
		r.atReady.cp.CPUSeconds, r.afterSync.cp.CPUSeconds-r.atReady.cp.CPUSeconds, l.sidecars,
		r.atEnd.cp.CPUSeconds-r.afterSync.cp.CPUSeconds, len(r.changes), len(r.creates),
		(r.atEnd.cp.CPUSeconds-r.afterSync.cp.CPUSeconds)/float64(max(1, len(r.changes)+len(r.creates))))

	b.WriteString("<details><summary>every change</summary>\n\n| # | change | API | first | every sidecar |\n|---|---|---|---|---|\n")
	for i, c := range append(append([]change(nil), r.changes...), r.creates...) {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n", i+1, c.what, ms(c.api), ms(c.first), ms(c.all))
	}
	b.WriteString("\n</details>\n")
	return b.String()
}
