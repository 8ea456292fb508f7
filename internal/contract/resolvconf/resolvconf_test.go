package resolvconf

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	rc, err := Parse(strings.NewReader("nameserver 10.96.0.10\nnameserver fd00::a\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rc.Upstreams, ",") != "10.96.0.10:53,[fd00::a]:53" || len(rc.Search) != 3 {
		t.Errorf("parsed %+v", rc)
	}
	if _, err := Parse(strings.NewReader("nameserver dns.example.com\n")); err == nil || !strings.Contains(err.Error(), `"dns.example.com"`) {
		t.Errorf("a host name as nameserver: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("nameserver 10.96.0.10\nsearch a.b c\noptions ndots:5 port:5353\n")
	f.Add("domain x\nnameserver ::1\n")
	f.Fuzz(func(t *testing.T, s string) {
		rc, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, u := range rc.Upstreams {
			if _, err := netip.ParseAddrPort(u); err != nil {
				t.Fatalf("upstream %q is not ip:port", u)
			}
		}
	})
}
