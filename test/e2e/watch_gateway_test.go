package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// watchEvent is the part of a demo-app watch event the test reads.
type watchEvent struct {
	Object struct {
		Server string `json:"server"`
	} `json:"object"`
}

// openWatch starts a watch through the gateway over TLS and HTTP/2 and returns the server
// its first event came from, and the stream.
func openWatch(ctx context.Context, c *http.Client) (string, *bufio.Scanner, func(), error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://127.0.0.1:8443/api/v1/configmaps?watch=true", nil)
	if err != nil {
		return "", nil, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", nil, nil, err
	}
	closeBody := func() { _ = resp.Body.Close() }
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		closeBody()
		return "", nil, nil, fmt.Errorf("watch answered %s over %s, want 200 over HTTP/2", resp.Status, resp.Proto)
	}
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() {
		closeBody()
		return "", nil, nil, fmt.Errorf("watch ended before its first event: %w", sc.Err())
	}
	var ev watchEvent
	if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
		closeBody()
		return "", nil, nil, fmt.Errorf("first event %q: %w", sc.Bytes(), err)
	}
	return ev.Object.Server, sc, closeBody, nil
}

// TestWatchThroughGatewayWhenAPIServerCrashes is scenario 4 of docs/scenarios.md on examples/apiserver-gateway:
// a watch over TLS and HTTP/2 through the gateway is pinned to one API server; that server
// crashes; the client's stream must end with an error at once (not hang), and the next watch
// must reach the API server that is alive.
func TestWatchThroughGatewayWhenAPIServerCrashes(t *testing.T) {
	if !begin(t, "builds lucid and runs `lucid up examples/apiserver-gateway`") {
		return
	}
	for _, a := range []string{"127.0.0.1:15010", "127.0.0.1:15014", "127.0.0.1:8443", "127.0.30.1:6443", "127.0.40.1:6443"} {
		if c, err := net.DialTimeout("tcp", a, 200*time.Millisecond); err == nil {
			_ = c.Close()
			t.Fatalf("%s is already in use: is another `lucid up` running?", a)
		}
	}
	bin := buildLucid(t)
	run := startUp(t, bin, "apiserver-gateway")

	caFile := filepath.Join(run.dir, "apiserver-gateway", "certs", "ca.crt")
	var c *http.Client
	var server string
	var stream *bufio.Scanner
	var closeStream func()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		if c == nil {
			if pem, rerr := os.ReadFile(caFile); rerr == nil {
				roots := x509.NewCertPool()
				roots.AppendCertsFromPEM(pem)
				c = &http.Client{Transport: &http.Transport{Proxy: nil, ForceAttemptHTTP2: true,
					TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
			}
		}
		if c != nil {
			server, stream, closeStream, err = openWatch(context.Background(), c)
			if err == nil {
				break
			}
		}
		select {
		case err := <-run.exited:
			run.stopped = true
			t.Fatalf("lucid up exited early (%v):\n%s", err, run.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no watch through the gateway within 30 s (last: %v); lucid up said:\n%s", err, run.out.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
	defer closeStream()
	app := map[string]string{"api-a": "127.0.40.1", "api-b": "127.0.40.2"}[server]
	other := map[string]string{"api-a": "api-b", "api-b": "api-a"}[server]
	if app == "" {
		t.Fatalf("first event from %q, want api-a or api-b", server)
	}
	pid := appPID(bin, "--listen "+app+":")
	if pid == 0 {
		t.Fatalf("no demo-app process listening on %s", app)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()

	// The stream ends with an error (reset), promptly.
	ended := make(chan error, 1)
	go func() {
		for stream.Scan() {
		}
		ended <- stream.Err()
	}()
	select {
	case err := <-ended:
		if err == nil {
			t.Errorf("watch pinned to the crashed %s ended cleanly, want a reset", server)
		}
		t.Logf("watch on the crashed %s ended after %v: %v", server, time.Since(killed).Round(time.Millisecond), err)
	case <-time.After(5 * time.Second):
		t.Fatalf("watch pinned to the crashed %s still open 5 s after the crash", server)
	}

	// The next watches reach the server that is alive (retry + outlier detection).
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, _, closeNext, err := openWatch(ctx, c)
		if err != nil {
			cancel()
			t.Fatalf("watch %d after the crash: %v\n%s", i+1, err, run.out.String())
		}
		closeNext()
		cancel()
		if got != other {
			t.Errorf("watch %d after the crash came from %s, want %s", i+1, got, other)
		}
	}
	if !strings.Contains(run.out.String(), server+" app exited") {
		t.Errorf("lucid up did not report the crash of %s:\n%s", server, run.out.String())
	}
}

// appPID finds the process of bin whose command line contains arg.
func appPID(bin, arg string) int {
	for _, p := range processesOf(bin) {
		b, err := os.ReadFile(filepath.Join("/proc", p, "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), arg) {
			pid, _ := strconv.Atoi(p)
			return pid
		}
	}
	return 0
}
