package appprobe

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// maxBody is how much of the app's body is read and passed on (the kubelet reads 10 KiB).
const maxBody = 10 << 10

// newHTTP builds the URL and the client of an httpGet probe, configured as the kubelet's
// (pkg/probe/http): TLS unverified, no keep-alive (a new connection per probe), no proxy,
// no compression, HTTP/2 when TLS negotiates it, and its redirect rule.
func newHTTP(e *entry, d *dialer) (string, *http.Client) {
	g := e.p.HTTPGet
	scheme := "http"
	if strings.EqualFold(g.Scheme, "HTTPS") {
		scheme = "https"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	tr := &http.Transport{
		DialContext:        d.DialContext,
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // G402: probes do not verify the app's certificate, as the kubelet's do not
		DisableKeepAlives:  true,
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
		Proxy:              nil,
	}
	return scheme + "://" + e.target + path, &http.Client{Transport: tr, CheckRedirect: checkRedirect}
}

// checkRedirect is the kubelet's rule: follow redirects to the same host name (any port),
// stop at another host (its 3xx is the answer), fail after 10.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errTooManyRedirects
	}
	return nil
}

// hostFor is the Host header the app gets: the kubelet's, with the status port replaced
// by the probe's port (the kubelet sends <pod IP>:15020); a Host without a port, or with
// another port, is passed unchanged.
func hostFor(kubeletHost string, statusPort uint16, appPort int) string {
	h, p, err := net.SplitHostPort(kubeletHost)
	if err != nil || p != strconv.Itoa(int(statusPort)) {
		return kubeletHost
	}
	return net.JoinHostPort(h, strconv.Itoa(appPort))
}

func (s *Set) probeHTTP(ctx context.Context, r *http.Request, e *entry, tr *trace) (verdict, string) {
	target := "GET " + e.url
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotFirstResponseByte: func() { tr.gotHeader.Store(true) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url, nil)
	if err != nil {
		return verdict{status: http.StatusInternalServerError, reason: ReasonError, cause: "cannot build the request: " + err.Error()}, target
	}
	// Everything the kubelet sent (User-Agent kube-probe/x.y, Accept, the probe's
	// httpHeaders) goes on to the app.
	for k, vs := range r.Header {
		req.Header[k] = slices.Clone(vs)
	}
	req.Host = hostFor(r.Host, s.statusPort, e.p.port())
	resp, err := e.client.Do(req)
	if err != nil {
		// Name the URL that failed (after redirects it is not the configured one).
		var uerr *url.Error
		if errors.As(err, &uerr) {
			if u, perr := resolveURL(e.url, uerr.URL); perr == nil && u != e.url {
				target = "GET " + e.url + " (redirected to " + u + ")"
			}
		}
		return explainErr(err, tr, e.timeout, ""), target
	}
	defer resp.Body.Close()
	if resp.Request != nil && resp.Request.URL.String() != e.url {
		target = "GET " + e.url + " (redirected to " + resp.Request.URL.String() + ")"
	}
	body, err := readAtMost(resp.Body, maxBody)
	if err != nil {
		return explainErr(err, tr, e.timeout, "body"), target
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return verdict{status: code, reason: ReasonOK, body: body}, target
	case code >= 300 && code < 400:
		// A redirect the kubelet's rule does not follow (another host): the kubelet
		// counts it as success; answered 200 as Istio does.
		return verdict{status: http.StatusOK, reason: ReasonRedirect, body: body}, target
	default:
		return verdict{status: code, reason: ReasonStatus, body: body,
			cause: "the app answered " + strconv.Itoa(code) + " " + http.StatusText(code) + bodyExcerpt(body)}, target
	}
}

// readAtMost reads up to limit bytes as the kubelet does: a longer body is cut without
// error, and an error after the limit is never seen.
func readAtMost(r io.Reader, limit int64) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, limit))
}

// resolveURL resolves a (possibly relative) redirect location against the probe's URL.
func resolveURL(base, loc string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	l, err := b.Parse(loc)
	if err != nil {
		return "", err
	}
	return l.String(), nil
}
