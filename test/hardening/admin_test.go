package hardening

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/diag/inspect"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// from is an HTTP client whose connections come from addr, as another workload's would.
func from(addr string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}, Timeout: 2 * time.Second}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// call sends method url with c and returns the status (0 with the error when there is
// no answer).
func call(c *http.Client, method, url string) (int, string, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestAdminExposure: from another workload's address, every endpoint that changes a proxy
// (admin /logging, /quitquitquit, /healthcheck; status /quitquitquit, /drain) and every
// admin read (its configuration, its requests) is refused; the sidecar's admin API is not
// on the workload's address at all; localhost and the workload itself still may; the CLI
// finds the admin API through the control plane.
func TestAdminExposure(t *testing.T) {
	m := theMesh(t)
	neighbour := from(otherIP)
	local := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	t.Run("the admin API is not on the workload's address", func(t *testing.T) {
		if c, err := net.DialTimeout("tcp", appIP+":15000", time.Second); err == nil {
			c.Close()
			t.Fatalf("%s:15000 accepts connections; the admin API must be on its private address only", appIP)
		}
	})
	mutating := []struct{ method, url string }{
		{"POST", "http://" + appAdminIP + ":15000/logging?level=trace"},
		{"POST", "http://" + appAdminIP + ":15000/quitquitquit"},
		{"GET", "http://" + appAdminIP + ":15000/config_dump"},
		{"GET", "http://" + appAdminIP + ":15000/tap"},
		{"POST", "http://" + appIP + ":15020/quitquitquit"},
		{"POST", "http://" + appIP + ":15020/drain"},
		{"POST", "http://" + testutil.Admin(gwIP) + "/logging?level=trace"},
		{"POST", "http://" + testutil.Admin(gwIP) + "/quitquitquit"},
		{"POST", "http://" + gwIP + ":15020/quitquitquit"},
	}
	t.Run("from another workload's address", func(t *testing.T) {
		for _, e := range mutating {
			code, body, err := call(neighbour, e.method, e.url)
			if err != nil || code != http.StatusForbidden {
				t.Errorf("%s %s from %s: %d %q, want 403", e.method, e.url, otherIP, code, strings.TrimSpace(body))
			}
		}
	})
	t.Run("through another workload's sidecar", func(t *testing.T) {
		// A request the neighbour's app sends through its sidecar arrives from the neighbour's address.
		for _, e := range []string{"http://" + appIP + ":15020/quitquitquit", "http://" + testutil.Admin(gwIP) + "/quitquitquit"} {
			r := viaProxyMethod(otherIP+":15001", http.MethodPost, e)
			if r.err != nil || r.status != http.StatusForbidden {
				t.Errorf("POST %s via %s's sidecar: %d %q, want 403", e, otherIP, r.status, r.body)
			}
		}
	})
	t.Run("still alive, and localhost may", func(t *testing.T) {
		for _, ip := range []string{appIP, gwIP} {
			if err := testutil.Poll(15*time.Second, func() error { return meshtest.Ready(ip) }); err != nil {
				t.Fatalf("a refused request stopped a proxy: %v", err)
			}
		}
		if code, body, err := call(local, "POST", "http://"+appAdminIP+":15000/logging"); err != nil || code != http.StatusOK {
			t.Errorf("POST /logging from localhost: %d %q %v, want 200", code, body, err)
		}
		if code, _, err := call(from(appIP), "GET", "http://"+appAdminIP+":15000/ready"); err != nil || code != http.StatusOK {
			t.Errorf("GET /ready from the workload's own address: %d %v, want 200", code, err)
		}
	})
	t.Run("the CLI finds it through the control plane", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tg, err := (&inspect.Client{}).Resolve(ctx, cpIP+":15014", "", "app", 15000)
		if err != nil {
			t.Fatal(err)
		}
		if want := netip.AddrPortFrom(netip.MustParseAddr(appAdminIP), 15000).String(); tg.Admin != want {
			t.Fatalf("resolved the admin API at %s, want %s", tg.Admin, want)
		}
		if _, err := (&inspect.Client{}).ConfigDump(ctx, tg.Admin, false); err != nil {
			t.Fatalf("config dump through the resolved address: %v", err)
		}
	})
	m.settled(t, "admin exposure")
}

func viaProxyMethod(proxy, method, target string) result {
	c, err := net.DialTimeout("tcp", proxy, 2*time.Second)
	if err != nil {
		return result{err: err}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	host := strings.TrimPrefix(target, "http://")
	host = host[:strings.IndexByte(host, '/')]
	if _, err := fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", method, target, host); err != nil {
		return result{err: err}
	}
	return readResult(c, bufioReader(c))
}
