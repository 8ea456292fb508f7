// Package resolvconf reads /etc/resolv.conf as the DNS proxies read it: the agent's
// (internal/agent/dnsproxy: the upstreams it forwards names outside the mesh to) and local
// mode's stand-in for a cluster resolver (internal/local/up, `lucid up --capture`).
package resolvconf

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"

	"github.com/miekg/dns"
)

// Config is what a DNS proxy takes from /etc/resolv.conf.
type Config struct {
	Upstreams []string // "ip:port" of each nameserver, in order
	Search    []string
}

// Read reads a resolv.conf file.
func Read(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, err
	}
	defer f.Close()
	rc, err := Parse(f)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return rc, nil
}

// Parse reads resolv.conf syntax (nameserver, search, domain, options port:N);
// a nameserver that is not an IP address is an error naming it.
func Parse(r io.Reader) (Config, error) {
	cfg, err := dns.ClientConfigFromReader(r)
	if err != nil {
		return Config{}, err
	}
	rc := Config{Search: cfg.Search}
	for _, s := range cfg.Servers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return Config{}, fmt.Errorf("nameserver %q is not an IP address", s)
		}
		rc.Upstreams = append(rc.Upstreams, net.JoinHostPort(a.String(), cfg.Port))
	}
	return rc, nil
}
