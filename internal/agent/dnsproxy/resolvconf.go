package dnsproxy

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"

	"github.com/miekg/dns"
)

// ResolvConf is what the DNS proxy takes from /etc/resolv.conf.
type ResolvConf struct {
	Upstreams []string // "ip:port" of each nameserver, in order
	Search    []string
}

// ReadResolvConf reads a resolv.conf file.
func ReadResolvConf(path string) (ResolvConf, error) {
	f, err := os.Open(path)
	if err != nil {
		return ResolvConf{}, err
	}
	defer f.Close()
	rc, err := ParseResolvConf(f)
	if err != nil {
		return ResolvConf{}, fmt.Errorf("%s: %w", path, err)
	}
	return rc, nil
}

// ParseResolvConf reads resolv.conf syntax (nameserver, search, domain, options port:N);
// a nameserver that is not an IP address is an error naming it.
func ParseResolvConf(r io.Reader) (ResolvConf, error) {
	cfg, err := dns.ClientConfigFromReader(r)
	if err != nil {
		return ResolvConf{}, err
	}
	rc := ResolvConf{Search: cfg.Search}
	for _, s := range cfg.Servers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return ResolvConf{}, fmt.Errorf("nameserver %q is not an IP address", s)
		}
		rc.Upstreams = append(rc.Upstreams, net.JoinHostPort(a.String(), cfg.Port))
	}
	return rc, nil
}
