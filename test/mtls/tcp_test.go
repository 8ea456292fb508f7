package mtls

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// tcpYAML is meshYAML with an opaque TCP port (9000) on web beside its HTTP one: the
// client's sidecar runs tcp_proxy for it.
var tcpYAML = strings.Replace(meshYAML, "ports: [{number: 8080, name: http, protocol: HTTP}]",
	"ports: [{number: 8080, name: http, protocol: HTTP}, {number: 9000, name: tcp, protocol: TCP}]", 1)

// overTunnel opens a CONNECT tunnel through the client's sidecar (how a local-mode app
// reaches an opaque TCP service) to web:9000 and sends one HTTP/1.1 request inside it:
// the bytes travel as TCP through both sidecars. It returns the app's status line.
func overTunnel(t *testing.T) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort(clientIP, "15001"), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "CONNECT web.default.svc.cluster.local:9000 HTTP/1.1\r\nHost: web.default.svc.cluster.local:9000\r\n\r\n"); err != nil {
		return "", err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close() // a 200 to CONNECT has no body: the tunnel follows
	if resp.StatusCode != 200 {
		return "", &tunnelError{resp.Status}
	}
	if _, err := io.WriteString(c, "GET /tcp HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n"); err != nil {
		return "", err
	}
	line, err := br.ReadString('\n')
	return strings.TrimSpace(line), err
}

type tunnelError struct{ status string }

func (e *tunnelError) Error() string { return "CONNECT answered " + e.status }

// TCP between sidecars is mutual TLS too: under STRICT, a tcp_proxy connection from the
// client's sidecar reaches web's app: the client's sidecar originates Istio mTLS on the
// opaque connection, as on HTTP ones (without it, web's sidecar closes the plaintext
// connection).
func TestTCPOverMTLSStrict(t *testing.T) {
	ws := append([]meshtest.Workload{}, workloads...)
	ws[0].Ports = []int{8080, 9000} // web's app on both ports
	m := meshtest.StartWith(t, meshtest.Options{MTLS: caAddr}, map[string]string{"mesh.yaml": tcpYAML, "strict.yaml": strictYAML}, ws)
	line, err := overTunnel(t)
	if err != nil || line != "HTTP/1.1 200 OK" {
		t.Fatalf("client → web:9000 (TCP) under STRICT: %q %v\n%s", line, err, m.Logs.String())
	}
}
