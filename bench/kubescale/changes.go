package main

import (
	"context"
	"fmt"
	"log"
	"slices"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// change is one timed change: what was done, how long the API call took, and when the
// first and the last sidecar had it.
type change struct {
	what string
	api  time.Duration
	result
}

// timeChanges makes o.changes changes one after another, each timed until every sidecar
// has it. They cycle through: an endpoint removed from a Service's EndpointSlice, the same
// endpoint added back, and a pod's version label flipped (its endpoint moves between the
// DestinationRule's subsets). Each touches a different Service, spread over the mesh.
func timeChanges(ctx context.Context, dyn dynamic.Interface, fl *fleet, cp *child, o options, rep *report) error {
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
		var c change
		var pred func(*resource.Snapshot) bool
		var do func() error
		switch k % 3 {
		case 0: // remove endpoint 0
			cl, addr := clusterName("", l.host(svc)), localAddr(0)
			c.what = fmt.Sprintf("EndpointSlice %s/%s: endpoint removed", l.ns(svc), l.svcName(svc))
			pred = func(s *resource.Snapshot) bool { return s.Endpoints[cl] != nil && !hasEndpoint(s, cl, addr) }
			do = func() error { return setSlice(ctx, dyn, l, svc, allEndpoints(l.endpoints)[1:]) }
		case 1: // add it back
			cl, addr := clusterName("", l.host(svc)), localAddr(0)
			c.what = fmt.Sprintf("EndpointSlice %s/%s: endpoint added", l.ns(svc), l.svcName(svc))
			pred = func(s *resource.Snapshot) bool { return hasEndpoint(s, cl, addr) }
			do = func() error { return setSlice(ctx, dyn, l, svc, allEndpoints(l.endpoints)) }
		default: // flip a pod's version label
			svc := drServices[(round*7+3)%len(drServices)]
			ep := 1 + round%(l.endpoints-1)
			from := version(ep)
			if v, ok := flipped[[2]int{svc, ep}]; ok {
				from = v
			}
			to := map[string]string{"v1": "v2", "v2": "v1"}[from]
			flipped[[2]int{svc, ep}] = to
			clTo, clFrom, addr := clusterName(to, l.host(svc)), clusterName(from, l.host(svc)), localAddr(ep)
			c.what = fmt.Sprintf("Pod %s/%s: label version %s → %s", l.ns(svc), l.podName(svc, ep), from, to)
			pred = func(s *resource.Snapshot) bool { return hasEndpoint(s, clTo, addr) && !hasEndpoint(s, clFrom, addr) }
			do = func() error { return setVersion(ctx, dyn, l, svc, ep, to) }
		}
		p, err := fl.arm(pred)
		if err != nil {
			return fmt.Errorf("change %d (%s): %w", k+1, c.what, err)
		}
		start := time.Now()
		if err := do(); err != nil {
			return fmt.Errorf("change %d: %w", k+1, err)
		}
		c.api = time.Since(start)
		if c.result, err = fl.wait(ctx, p, start, o.changeTimeout); err != nil {
			return fmt.Errorf("change %d (%s): %w", k+1, c.what, err)
		}
		log.Printf("change %2d: %-58s first %6s  all %6s", k+1, c.what,
			c.first.Round(time.Millisecond), c.all.Round(time.Millisecond))
		rep.changes = append(rep.changes, c)
		settle(fl, cp)
	}
	return nil
}

// timeCreates creates o.creates new Services (their pods first, untimed), each timed from
// the Service create (its EndpointSlice is created right after) until every sidecar has
// the new cluster with all its endpoints.
func timeCreates(ctx context.Context, dyn dynamic.Interface, fl *fleet, cp *child, o options, rep *report) error {
	l := o.layout
	for k := range o.creates {
		svc := l.services + k
		var pods []createJob
		for ep := range l.endpoints {
			pods = append(pods, createJob{gvr: podsGVR, obj: l.endpointPod(svc, ep)})
		}
		if _, err := createAll(ctx, dyn, o.workers, "Pods", pods); err != nil {
			return err
		}
		settle(fl, cp)
		cl := clusterName("", l.host(svc))
		p, err := fl.arm(func(s *resource.Snapshot) bool {
			_, ok := s.Clusters[cl]
			return ok && s.Endpoints[cl] != nil && len(s.Endpoints[cl].Endpoints) == l.endpoints
		})
		if err != nil {
			return fmt.Errorf("create %d: %w", k+1, err)
		}
		c := change{what: fmt.Sprintf("Service %s/%s + EndpointSlice created", l.ns(svc), l.svcName(svc))}
		start := time.Now()
		for _, j := range []createJob{
			{gvr: servicesGVR, obj: l.service(svc)},
			{gvr: slicesGVR, obj: l.slice(svc, allEndpoints(l.endpoints))},
		} {
			if err := create(ctx, dyn, j); err != nil {
				return fmt.Errorf("create %d: %w", k+1, err)
			}
		}
		c.api = time.Since(start)
		if c.result, err = fl.wait(ctx, p, start, o.changeTimeout); err != nil {
			return fmt.Errorf("create %d (%s): %w", k+1, c.what, err)
		}
		log.Printf("create %2d: %-58s first %6s  all %6s", k+1, c.what,
			c.first.Round(time.Millisecond), c.all.Round(time.Millisecond))
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
