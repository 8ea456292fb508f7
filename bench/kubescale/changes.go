package main

import (
	"context"
	"fmt"
	"log"
	"slices"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// change is one timed change: what was done, how long the write took, and when the first,
// the median and the last sidecar (of those that see it) had it.
type change struct {
	what string
	api  time.Duration
	result
}

// seers selects the sidecars whose configuration has service svc.
func seers(l layout, svc int) func(int) bool { return func(i int) bool { return l.sees(i, svc) } }

// timed makes one change and waits until every sidecar that sees svc applied it.
func timed(ctx context.Context, fl *fleet, o options, svc int, what string, pred func(*resource.Snapshot) bool, do func() error) (change, error) {
	c := change{what: what}
	p, err := fl.arm(pred, seers(o.layout, svc))
	if err != nil {
		return c, fmt.Errorf("%s: %w", what, err)
	}
	start := time.Now()
	if err := do(); err != nil {
		return c, fmt.Errorf("%s: %w", what, err)
	}
	c.api = time.Since(start)
	if c.result, err = fl.wait(ctx, p, start, o.changeTimeout); err != nil {
		return c, fmt.Errorf("%s: %w", what, err)
	}
	log.Printf("  %-62s first %6s  p50 %6s  all %6s (%d sidecars)", what,
		c.first.Round(time.Millisecond), c.p50.Round(time.Millisecond), c.all.Round(time.Millisecond), c.n)
	return c, nil
}

// timeChanges makes o.changes endpoint changes one after another, each timed until every
// sidecar that sees the Service has it. They cycle through: an endpoint removed from a
// Service, the same endpoint added back, and a pod's version label flipped (its endpoint
// moves between the DestinationRule's subsets). Each touches a different Service, spread
// over the mesh.
func timeChanges(ctx context.Context, b backend, fl *fleet, cp *child, o options, rep *report) error {
	l := o.layout
	var drServices []int
	for s := range l.services {
		if l.hasDR(s) {
			drServices = append(drServices, s)
		}
	}
	flipped := map[[2]int]string{} // (svc, ep) → current version
	for k := range o.changes {
		round := k / 3
		svc := (round*137 + 11) % l.services
		var what string
		var pred func(*resource.Snapshot) bool
		var do func() error
		switch k % 3 {
		case 0: // remove endpoint 0
			cl, addr := clusterName("", l.host(svc)), l.addr(svc, 0)
			what = fmt.Sprintf("%s/%s: endpoint removed", l.ns(svc), l.svcName(svc))
			pred = func(s *resource.Snapshot) bool { return s.Endpoints[cl] != nil && !hasEndpoint(s, cl, addr) }
			do = func() error { return b.setEndpoints(ctx, svc, allEndpoints(l.endpoints)[1:]) }
		case 1: // add it back
			cl, addr := clusterName("", l.host(svc)), l.addr(svc, 0)
			what = fmt.Sprintf("%s/%s: endpoint added", l.ns(svc), l.svcName(svc))
			pred = func(s *resource.Snapshot) bool { return hasEndpoint(s, cl, addr) }
			do = func() error { return b.setEndpoints(ctx, svc, allEndpoints(l.endpoints)) }
		default: // flip a pod's version label
			svc = drServices[(round*7+3)%len(drServices)]
			ep := 1 + round%(l.endpoints-1)
			from := version(ep)
			if v, ok := flipped[[2]int{svc, ep}]; ok {
				from = v
			}
			to := map[string]string{"v1": "v2", "v2": "v1"}[from]
			flipped[[2]int{svc, ep}] = to
			clTo, clFrom, addr := clusterName(to, l.host(svc)), clusterName(from, l.host(svc)), l.addr(svc, ep)
			what = fmt.Sprintf("%s/%s: version %s → %s", l.ns(svc), l.podName(svc, ep), from, to)
			pred = func(s *resource.Snapshot) bool { return hasEndpoint(s, clTo, addr) && !hasEndpoint(s, clFrom, addr) }
			do = func() error { return b.setVersion(ctx, svc, ep, to) }
		}
		before := cpuOf(cp)
		c, err := timed(ctx, fl, o, svc, what, pred, do)
		if err != nil {
			return fmt.Errorf("change %d: %w", k+1, err)
		}
		settle(fl, cp)
		rep.changeCPU = append(rep.changeCPU, cpuOf(cp)-before)
		rep.changes = append(rep.changes, c)
	}
	return nil
}

// timeVirtualServices makes o.vsChanges VirtualService changes (created, then its retry
// attempts changed), each timed until every sidecar that sees the Service has the new route.
func timeVirtualServices(ctx context.Context, b backend, fl *fleet, cp *child, o options, rep *report) error {
	l := o.layout
	for k := range o.vsChanges {
		svc := (k*211 + 5) % l.services
		attempts := 3 + k // not 2: the default route already retries twice
		host := l.host(svc)
		pred := func(s *resource.Snapshot) bool { return routeRetries(s, host) == uint32(attempts) }
		c, err := timed(ctx, fl, o, svc, fmt.Sprintf("VirtualService %s/%s: retries %d", l.ns(svc), l.svcName(svc), attempts), pred,
			func() error { return b.setRetries(ctx, svc, attempts) })
		if err != nil {
			return fmt.Errorf("VirtualService change %d: %w", k+1, err)
		}
		rep.vsChanges = append(rep.vsChanges, c)
		settle(fl, cp)
	}
	return nil
}

// routeRetries is the retry attempts of the first route of host's virtual host in route
// configuration "8080" (0 when none).
func routeRetries(s *resource.Snapshot, host string) uint32 {
	rc := s.Routes[fmt.Sprint(port)]
	if rc == nil {
		return 0
	}
	name := fmt.Sprintf("%s:%d", host, port)
	for _, vh := range rc.VirtualHosts {
		if vh.Name != name || len(vh.Routes) == 0 {
			continue
		}
		if rp := vh.Routes[0].Action.RetryPolicy; rp != nil {
			return rp.NumRetries
		}
	}
	return 0
}

// timeCreates creates o.creates new Services (their pods first, untimed), each timed from
// the first write until every sidecar that sees it has the new cluster with all endpoints.
func timeCreates(ctx context.Context, b backend, fl *fleet, cp *child, o options, rep *report) error {
	l := o.layout
	for k := range o.creates {
		svc := l.services + k
		if err := b.prepareService(ctx, svc); err != nil {
			return err
		}
		settle(fl, cp)
		cl := clusterName("", l.host(svc))
		pred := func(s *resource.Snapshot) bool {
			_, ok := s.Clusters[cl]
			return ok && s.Endpoints[cl] != nil && len(s.Endpoints[cl].Endpoints) == l.endpoints
		}
		c, err := timed(ctx, fl, o, svc, fmt.Sprintf("%s/%s created", l.ns(svc), l.svcName(svc)), pred,
			func() error { return b.createService(ctx, svc) })
		if err != nil {
			return fmt.Errorf("create %d: %w", k+1, err)
		}
		rep.creates = append(rep.creates, c)
		settle(fl, cp)
	}
	return nil
}

// percentile is the nearest-rank p-th percentile of ds (p in 0..100).
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(i, 0)]
}
