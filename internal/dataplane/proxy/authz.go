package proxy

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"

	"github.com/lucid-mesh/lucid/internal/dataplane/authz"
	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/extauthz"
	"github.com/lucid-mesh/lucid/internal/dataplane/jwtauthn"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Authorization chains: Apply compiles the authorization filters of every filter chain
// (an HTTP chain's http_filters, a TCP chain's network filters) once per configuration;
// a chain that cannot be compiled (an invalid key set) refuses the whole configuration,
// which xdsclient NACKs with the reason. Requests find their chain through the HTTP
// connection manager or the tcp_proxy of the filter chain that serves them.

// authzChains are a configuration's compiled chains.
type authzChains struct {
	http map[*resource.HTTPManager]*authz.Chain
	tcp  map[*resource.TCPProxy]*authz.Chain
	// A connection accepted under an earlier configuration keeps the filter chain it was
	// accepted with (as Envoy drains a changed listener's connections on its old
	// configuration): its chain is compiled when first needed and kept here.
	opts  authz.Options
	stale *sync.Map // *resource.HTTPManager or *resource.TCPProxy → *authz.Chain
}

// buildAuthz compiles the chains of every listener of s.
func (p *Proxy) buildAuthz(s *resource.Snapshot) (authzChains, error) {
	o := p.authzOptions()
	out := authzChains{http: map[*resource.HTTPManager]*authz.Chain{}, tcp: map[*resource.TCPProxy]*authz.Chain{}, opts: o, stale: &sync.Map{}}
	for _, name := range slices.Sorted(maps.Keys(s.Listeners)) {
		l := s.Listeners[name]
		chains := l.FilterChains
		if l.DefaultChain != nil {
			chains = append(chains[:len(chains):len(chains)], *l.DefaultChain)
		}
		for i := range chains {
			fc := &chains[i]
			var err error
			switch {
			case fc.HTTP != nil && len(fc.HTTP.Auth) > 0:
				out.http[fc.HTTP], err = authz.New(fc.HTTP.Auth, o)
			case fc.TCP != nil && len(fc.Auth) > 0:
				out.tcp[fc.TCP], err = authz.New(fc.Auth, o)
			}
			if err != nil {
				return authzChains{}, fmt.Errorf("listener %q: filter chain %q: %w", name, fc.Name, err)
			}
		}
	}
	return out, nil
}

// httpAuthz is the chain of an HTTP connection manager (nil: none).
func (t *table) httpAuthz(h *resource.HTTPManager) *authz.Chain {
	if h == nil || len(h.Auth) == 0 {
		return nil
	}
	if c, ok := t.authz.http[h]; ok {
		return c
	}
	return t.authz.staleChain(h, h.Auth)
}

// tcpAuthz is the chain of a tcp_proxy filter chain (nil: none).
func (t *table) tcpAuthz(fc *resource.FilterChain) *authz.Chain {
	if fc == nil || fc.TCP == nil || len(fc.Auth) == 0 {
		return nil
	}
	if c, ok := t.authz.tcp[fc.TCP]; ok {
		return c
	}
	return t.authz.staleChain(fc.TCP, fc.Auth)
}

// staleChain compiles (once per configuration) the chain of a filter chain the current
// configuration no longer has. One that does not compile any more denies everything:
// authorization never fails open.
func (a *authzChains) staleChain(key any, filters []resource.AuthFilter) *authz.Chain {
	if a.stale == nil { // the empty configuration New starts with: nothing to cache in
		c, err := authz.New(filters, a.opts)
		if err != nil {
			return denyAll(a.opts)
		}
		return c
	}
	if c, ok := a.stale.Load(key); ok {
		return c.(*authz.Chain)
	}
	c, err := authz.New(filters, a.opts)
	if err != nil {
		c = denyAll(a.opts)
	}
	v, _ := a.stale.LoadOrStore(key, c)
	return v.(*authz.Chain)
}

// authzOptions are what the filters need from the proxy: ext_authz checks go to an
// endpoint of the provider's cluster, over one transport the proxy keeps across
// configurations (closed with the proxy); key sets (jwksUri) are fetched directly.
func (p *Proxy) authzOptions() authz.Options {
	p.authzOnce.Do(func() {
		p.authzTransport = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}
	})
	return authz.Options{
		JWT: jwtauthn.Options{HTTPClient: &http.Client{Transport: p.authzTransport}},
		ExtAuthz: extauthz.Options{
			Transport: p.authzTransport,
			Resolve:   resolveCluster(p.opts.Clusters),
		},
	}
}

// resolveCluster picks the address of an endpoint of a cluster for an ext_authz check.
func resolveCluster(m *cluster.Manager) func(string) (string, error) {
	return func(name string) (string, error) {
		if m == nil {
			return "", errors.New("no cluster manager")
		}
		cl := m.Get(name)
		if cl == nil {
			return "", errors.New("cluster not found")
		}
		h, err := cl.Pick(cluster.PickContext{})
		if err != nil {
			return "", err
		}
		return h.Addr, nil
	}
}

// closeAuthz closes the idle connections of the authorization transport.
func (p *Proxy) closeAuthz() {
	if p.authzTransport != nil {
		p.authzTransport.CloseIdleConnections()
	}
}

// denyAll is a chain that refuses everything: an ALLOW RBAC filter without policies.
func denyAll(o authz.Options) *authz.Chain {
	c, _ := authz.New([]resource.AuthFilter{{Name: "lucid.stale-filter-chain", RBAC: &resource.RBACFilter{Rules: &resource.RBAC{Action: resource.RBACAllow}}}}, o)
	return c
}
