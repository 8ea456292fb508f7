package capture

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// Protocol sniffing through capture (run by TestDNSThroughCaptureChild): ServiceEntry ports
// without a protocol, reached by name through their auto-allocated addresses. Port 8080
// carries HTTP (routed as HTTP by Host) or anything else (opaque TCP to the service); port
// 8443 is shared by two TLS services, told apart by the ClientHello's SNI.
const sniffMeshConfig = `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: web}]
  endpoints: [{address: 10.10.0.11}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: tls-a, namespace: default}
spec:
  hosts: [tls-a.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 8443, name: secure}]
  endpoints: [{address: 10.10.0.11}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: tls-b, namespace: default}
spec:
  hosts: [tls-b.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 8443, name: secure}]
  endpoints: [{address: 10.10.0.12}]
`

func sniffingSubtests(t *testing.T, sidecarLog *testutil.Buffer) {
	t.Helper()
	t.Run("an undeclared port carrying HTTP is routed as HTTP", func(t *testing.T) {
		code, body, h := get("http://web.example.com:8080/page")
		if code != 200 || body != "web /page from "+podIP || h.Get("x-envoy-upstream-service-time") == "" {
			t.Fatalf("got %d %q (headers %v), want the web backend's answer through the sidecar's HTTP routes", code, body, h)
		}
		testutil.Eventually(t, 5*time.Second, "the access log has the HTTP request", func() bool {
			return strings.Contains(sidecarLog.String(), `"GET /page HTTP/1.1" 200`) && strings.Contains(sidecarLog.String(), "outbound|8080||web.example.com")
		})
	})
	t.Run("an undeclared port carrying something else is opaque TCP", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", "web.example.com:8080", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(conn, "\x00\x01binary hello\r\n")
		line, err := bufio.NewReader(conn).ReadString('\n')
		// The backend's own HTTP server refuses the bytes it was handed unchanged.
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 400 Bad Request") {
			t.Fatalf("got %q (%v), want the backend's own 400 for bytes passed through", line, err)
		}
	})
	for _, tc := range []struct{ name, dial, sni, want string }{
		{"tls-a", "tls-a.example.com", "tls-a.example.com", "tls-a"},
		{"tls-b", "tls-b.example.com", "tls-b.example.com", "tls-b"},
		// An SNI no service on the port has: the port's first service, as a TCP port.
		{"the port's first service for an unknown SNI", "tls-b.example.com", "unknown.example.com", "tls-a"},
	} {
		t.Run("an undeclared port carrying TLS passes through by SNI: "+tc.name, func(t *testing.T) {
			// ALPN http/1.1 as curl sends it: TLS is never taken for plaintext HTTP. The
			// backends' certificates are their own: the test checks who answered.
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", tc.dial+":8443",
				&tls.Config{ServerName: tc.sni, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(conn).ReadString('\n')
			if want := tc.want + " sni=" + tc.sni + "\n"; err != nil || line != want {
				t.Fatalf("got %q (%v), want %q", line, err, want)
			}
		})
	}
}

// sniffBackends runs in the cluster namespace (TestCaptureBackendsChild): web on
// 10.10.0.11:8080 (HTTP, by the caller's table), and TLS servers tls-a (10.10.0.11:8443)
// and tls-b (10.10.0.12:8443) that say who they are and the SNI they got.
func sniffBackends(t *testing.T) {
	t.Helper()
	ca := testutil.CA(t, "backends")
	for addr, name := range map[string]string{"10.10.0.11:8443": "tls-a", "10.10.0.12:8443": "tls-b"} {
		leaf := testutil.Issue(t, ca, false, name+".example.com")
		ln, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					tc := c.(*tls.Conn)
					_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
					if tc.Handshake() == nil {
						fmt.Fprintf(tc, "%s sni=%s\n", name, tc.ConnectionState().ServerName)
					}
				}()
			}
		}()
	}
}
