// Package extauthz is Envoy's ext_authz filter with an HTTP authorization service: Istio's
// CUSTOM action with an envoyExtAuthzHttp extension provider. For each request the RBAC
// shadow rules of the provider selected (filter_enabled_metadata), it sends the
// authorization server a check request (the original method, path prefix + path, the
// allowed headers, optionally the body) and follows the answer: 200 lets the request
// through (with the allowed upstream headers), another status is the client's reply
// (UAEX, ext_authz_denied), and a failure or a 5xx is status_on_error (403 by default,
// ext_authz_error) unless failure_mode_allow.
//
// It sits in the request path after the CUSTOM RBAC filter and before jwt_authn:
//
//	xdsclient → resource.ExtAuthz → extauthz.New
//	request → rbac (shadow: CUSTOM matched?) → extauthz.Client.Check → jwtauthn → rbac → forward
package extauthz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/rbac"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
)

// maxResponseBody bounds what is read of the authorization server's answer.
const maxResponseBody = 1 << 20

// Envoy's header through which the authorization server asks for request headers to be
// removed before the request goes upstream.
const headersToRemove = "X-Envoy-Auth-Headers-To-Remove"

// Envoy's response code details.
const (
	DetailsDenied = "ext_authz_denied"
	DetailsError  = "ext_authz_error"
)

// Options are what a Client needs from its surroundings.
type Options struct {
	// Transport sends the check requests; nil is a transport without proxy.
	Transport http.RoundTripper
	// Resolve gives the host:port to send a check for the filter's cluster to (the
	// proxy picks an endpoint of the cluster); nil uses the server_uri's host.
	Resolve func(cluster string) (string, error)
}

// Client is one compiled ext_authz filter. It is safe for concurrent use.
type Client struct {
	cfg     *resource.ExtAuthz
	enabled *rbac.MetadataMatch // filter_enabled_metadata; nil: always
	client  *http.Client
	resolve func(string) (string, error)
}

// New prepares cfg.
func New(cfg *resource.ExtAuthz, o Options) *Client {
	if o.Transport == nil {
		o.Transport = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}
	}
	c := &Client{cfg: cfg, client: &http.Client{
		Transport:     o.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, resolve: o.Resolve}
	if cfg.FilterEnabledMetadata != nil {
		c.enabled = rbac.NewMetadataMatch(cfg.FilterEnabledMetadata)
	}
	if c.resolve == nil {
		c.resolve = func(string) (string, error) {
			host := strings.TrimPrefix(strings.TrimPrefix(cfg.URI, "http://"), "https://")
			if i := strings.IndexByte(host, '/'); i >= 0 {
				host = host[:i]
			}
			if host == "" {
				return "", errors.New("server_uri has no host")
			}
			return host, nil
		}
	}
	return c
}

// Enabled reports whether the filter checks a request with dynamic metadata md: always,
// unless filter_enabled_metadata is set and does not match (Istio: no CUSTOM policy of
// this provider matched the request).
func (c *Client) Enabled(md rbac.Metadata) bool {
	return c.enabled == nil || c.enabled.Matches(md)
}

// Status is the outcome of a check.
type Status int

// The outcomes, as Envoy's CheckStatus.
const (
	OK     Status = iota // the server answered 200: the request continues
	Denied               // the server answered another status: that is the client's reply
	Error                // the server could not be asked, or answered 5xx
)

// Response is a check's outcome.
type Response struct {
	Status Status
	// Code and Body are the client's reply when the request does not continue: the
	// server's status and body (Denied), or status_on_error and no body (Error).
	Code int
	Body []byte
	// Headers: Denied, the server's headers for the client (allowed_client_headers);
	// OK, the ones to add to the client's response (allowed_client_headers_on_success).
	Headers http.Header
	// UpstreamHeaders (OK) are set on the request that goes upstream; RemoveHeaders are
	// removed from it.
	UpstreamHeaders http.Header
	RemoveHeaders   []string
	// Err is why an Error happened; FailureModeAllowed is true when the request continues
	// anyway (failure_mode_allow).
	Err                error
	FailureModeAllowed bool
	// ServerStatus is the authorization server's status (0 when it did not answer).
	ServerStatus int
}

// Continue reports whether the request goes on.
func (r *Response) Continue() bool { return r.Status == OK || r.FailureModeAllowed }

// Details is Envoy's response_code_details for a request that does not continue.
func (r *Response) Details() string {
	if r.Status == Denied {
		return DetailsDenied
	}
	return DetailsError
}

// Check asks the authorization server about r. path is the request's :path (normalised,
// with the query); body the buffered request body when with_request_body is set.
func (c *Client) Check(ctx context.Context, r *http.Request, path string, body []byte) Response {
	cfg := c.cfg
	if cfg.GRPC {
		return c.fail(errors.New("gRPC authorization services (envoyExtAuthzGrpc) are not supported by Lucid; use envoyExtAuthzHttp"), 0)
	}
	addr, err := c.resolve(cfg.Cluster)
	if err != nil {
		return c.fail(fmt.Errorf("cluster %s: %w", cfg.Cluster, err), 0)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if !cfg.WithRequestBody {
		body = nil
	} else if cfg.MaxRequestBytes > 0 && uint32(len(body)) > cfg.MaxRequestBytes {
		body = body[:cfg.MaxRequestBytes]
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, "http://"+addr+cfg.PathPrefix+path, bytes.NewReader(body))
	if err != nil {
		return c.fail(fmt.Errorf("check request: %w", err), 0)
	}
	req.ContentLength = int64(len(body))
	req.Host = r.Host
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if lk == "content-length" || lk == "host" || (lk != "authorization" && !matchAny(cfg.AllowedHeaders, lk)) {
			continue
		}
		req.Header[k] = append([]string(nil), vs...)
	}
	for _, h := range cfg.HeadersToAdd {
		req.Header.Set(h.Key, h.Value)
	}
	resp, err := c.client.Do(req) //nolint:gosec // G704: the authorization server is the mesh's configured provider
	if err != nil {
		return c.fail(fmt.Errorf("check %s%s: %w", addr, cfg.PathPrefix, err), 0)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return c.fail(fmt.Errorf("check %s: reading the answer: %w", addr, err), resp.StatusCode)
	}
	if resp.StatusCode >= 500 {
		return c.fail(fmt.Errorf("the authorization server answered %d", resp.StatusCode), resp.StatusCode)
	}
	out := Response{ServerStatus: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		out.Status = OK
		for _, v := range resp.Header.Values(headersToRemove) {
			for name := range strings.SplitSeq(v, ",") {
				if name = strings.TrimSpace(name); name != "" {
					out.RemoveHeaders = append(out.RemoveHeaders, name)
				}
			}
		}
		resp.Header.Del(headersToRemove)
		out.UpstreamHeaders = pick(resp.Header, cfg.AllowedUpstreamHeaders, nil)
		out.Headers = pick(resp.Header, cfg.AllowedClientHeadersOnSuccess, nil)
		return out
	}
	out.Status, out.Code, out.Body = Denied, resp.StatusCode, data
	resp.Header.Del(headersToRemove)
	if len(cfg.AllowedClientHeaders) == 0 {
		out.Headers = resp.Header.Clone()
		out.Headers.Del("Host")
	} else {
		out.Headers = pick(resp.Header, cfg.AllowedClientHeaders, []string{"content-length", "www-authenticate", "location"})
	}
	return out
}

func (c *Client) fail(err error, serverStatus int) Response {
	return Response{Status: Error, Code: c.cfg.StatusOnError, Err: err, FailureModeAllowed: c.cfg.FailureModeAllow, ServerStatus: serverStatus}
}

// pick copies the headers whose lower-cased names match ms or are in always.
func pick(h http.Header, ms []resource.StringMatcher, always []string) http.Header {
	var out http.Header
	for k, vs := range h {
		lk := strings.ToLower(k)
		if !matchAny(ms, lk) && !slices.Contains(always, lk) {
			continue
		}
		if out == nil {
			out = http.Header{}
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func matchAny(ms []resource.StringMatcher, name string) bool {
	for i := range ms {
		if route.MatchString(&ms[i], name) {
			return true
		}
	}
	return false
}

// Explain is the one-line reason for a check that stopped the request.
func (r *Response) Explain() string {
	switch {
	case r.Status == Denied:
		return "the authorization server answered " + strconv.Itoa(r.Code)
	case r.Err != nil:
		return "the authorization server could not decide: " + r.Err.Error()
	}
	return "the authorization server could not decide"
}
