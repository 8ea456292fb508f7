package inspect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// maxBody bounds what is read from an admin or debug endpoint (config dumps of big meshes
// are a few MB).
const maxBody = 64 << 20

// Client talks to admin and debug endpoints over plain HTTP.
type Client struct {
	HTTP *http.Client // nil: a client with a 10 s timeout
}

func (c *Client) http() *http.Client {
	if c != nil && c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// HTTPError is a non-2xx answer from an admin or debug endpoint.
type HTTPError struct {
	URL    string
	Status int
	Body   string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s: %d %s", e.URL, e.Status, strings.TrimSpace(e.Body))
}

// do sends one request and returns the body of a 2xx answer.
func (c *Client) do(ctx context.Context, method, rawURL string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("inspect: read %s: %w", rawURL, err)
	}
	if resp.StatusCode/100 != 2 {
		return b, &HTTPError{URL: rawURL, Status: resp.StatusCode, Body: string(b)}
	}
	return b, nil
}

// Get fetches http://addr/path (path may carry a query).
func (c *Client) Get(ctx context.Context, addr, path string) ([]byte, error) {
	return c.do(ctx, http.MethodGet, "http://"+addr+path)
}

// Post posts to http://addr/path with an empty body (admin mutations).
func (c *Client) Post(ctx context.Context, addr, path string) ([]byte, error) {
	return c.do(ctx, http.MethodPost, "http://"+addr+path)
}

// ConfigDump fetches a sidecar's /config_dump (with endpoints when includeEDS).
func (c *Client) ConfigDump(ctx context.Context, admin string, includeEDS bool) (*Dump, error) {
	p := "/config_dump"
	if includeEDS {
		p += "?include_eds"
	}
	b, err := c.Get(ctx, admin, p)
	if err != nil {
		return nil, err
	}
	return ParseConfigDump(b)
}

// Clusters fetches a sidecar's /clusters?format=json.
func (c *Client) Clusters(ctx context.Context, admin string) ([]ClusterHealth, error) {
	b, err := c.Get(ctx, admin, "/clusters?format=json")
	if err != nil {
		return nil, err
	}
	return ParseClusters(b)
}

// SyncStatus fetches the control plane's /debug/syncz.
func (c *Client) SyncStatus(ctx context.Context, debug string) ([]contract.ProxyStatus, error) {
	b, err := c.Get(ctx, debug, contract.SyncPath)
	if err != nil {
		return nil, err
	}
	var out []contract.ProxyStatus
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("inspect: /debug/syncz: %w", err)
	}
	return out, nil
}

// ControlPlaneDump fetches what the control plane would send a proxy
// (/debug/config_dump?proxyID=<node id>).
func (c *Client) ControlPlaneDump(ctx context.Context, debug, proxyID string) (*Dump, error) {
	b, err := c.Get(ctx, debug, "/debug/config_dump?proxyID="+url.QueryEscape(proxyID))
	if err != nil {
		return nil, err
	}
	return ParseConfigDump(b)
}
