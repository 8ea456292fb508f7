package status

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Wait polls url (a /healthz/ready) until it answers 200, as Istio's `pilot-agent wait`
// does for holdApplicationUntilProxyStarts. It returns an error naming the last answer
// when timeout passes first.
func Wait(ctx context.Context, url string, timeout, period time.Duration, out io.Writer) error {
	if period <= 0 {
		period = 500 * time.Millisecond
	}
	_, _ = fmt.Fprintf(out, "Waiting for the sidecar to be ready at %s (timeout: %s)...\n", url, timeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: period, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	tick := time.NewTicker(period)
	defer tick.Stop()
	last := "no answer yet"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("--url: %w", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				_, _ = fmt.Fprintln(out, "The sidecar is ready.")
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else if ctx.Err() == nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timeout waiting for the sidecar to become ready after %s; last answer: %s", timeout, last)
		case <-tick.C:
		}
	}
}
