package resource

import (
	"regexp"
	"time"
)

// RouteConfig is a config.route.v3.RouteConfiguration (Istio names outbound ones by port,
// "9080", inbound ones by the inbound cluster, and the explicit-proxy one "http_proxy").
type RouteConfig struct {
	Name         string        // name
	VirtualHosts []VirtualHost // virtual_hosts, in order
	// Envoy selects the virtual host by domain: exact match first, then the longest
	// "*.suffix"/"*suffix" wildcard, then the longest "prefix*", then "*". Domains with a
	// port ("host:9080") match the Host header as written; Envoy strips nothing unless
	// IgnorePortInHostMatching is set.

	// IgnorePortInHostMatching is ignore_port_in_host_matching: the Host's port (":8080",
	// whatever follows its last ':' outside an IPv6 literal's brackets) is stripped before
	// the domains are compared. Istio sets it on a gateway's route configurations.
	IgnorePortInHostMatching bool
}

// VirtualHost is a config.route.v3.VirtualHost. Istio names them "<host>:<port>",
// "allow_any", "block_all", "inbound|http|<port>".
type VirtualHost struct {
	Name    string   // name
	Domains []string // domains: "exact", "*.suffix", "prefix*", "*"; compared case-insensitively
	Routes  []Route  // routes, first match wins
	// retry_policy of the virtual host, used when a route has none.
	RetryPolicy *RetryPolicy
	// include_request_attempt_count: send x-envoy-attempt-count upstream (Istio sets true).
	IncludeAttemptCount    bool
	RequestHeadersToAdd    []HeaderValueOption // request_headers_to_add
	RequestHeadersToRemove []string            // request_headers_to_remove
	// RequireTLS is require_tls: a request that did not arrive over TLS gets a 301 to
	// https://<host><path> instead of being routed (Istio's Gateway tls.httpsRedirect).
	RequireTLS TLSRequirement
}

// TLSRequirement is config.route.v3.VirtualHost.TlsRequirementType.
type TLSRequirement int

// The TLS requirements (NONE, EXTERNAL_ONLY, ALL).
const (
	RequireTLSNone TLSRequirement = iota
	// RequireTLSExternalOnly: only external requests must use TLS. Lucid treats every
	// request as external (no internal_address_config), so it acts as RequireTLSAll.
	RequireTLSExternalOnly
	RequireTLSAll
)

// Route is a config.route.v3.Route. Exactly one of Action, Redirect and DirectResponse is set.
type Route struct {
	Name  string     // name (Istio: "<vs-name>.<ns>" or the http route's name; "default" for catch-alls)
	Match RouteMatch // match

	Action         *RouteAction    // route
	Redirect       *Redirect       // redirect
	DirectResponse *DirectResponse // direct_response

	RequestHeadersToAdd     []HeaderValueOption // request_headers_to_add
	RequestHeadersToRemove  []string            // request_headers_to_remove
	ResponseHeadersToAdd    []HeaderValueOption // response_headers_to_add
	ResponseHeadersToRemove []string            // response_headers_to_remove

	// typed_per_filter_config["envoy.filters.http.fault"] (HTTPFault).
	Fault *Fault

	// Metadata: filter_metadata["istio"]["config"], the VirtualService that produced the
	// route, e.g. "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews".
	// Empty for generated routes.
	VirtualService string
	// decorator.operation (Istio: "<host>:<port>/*").
	Operation string
}

// PathKind says how RouteMatch.Path is compared.
type PathKind int

// The path match kinds, each named after its RouteMatch.path_specifier field.
const (
	PathPrefix    PathKind = iota // prefix ("" or "/" matches everything)
	PathExact                     // path
	PathRegex                     // safe_regex (full match, RE2)
	PathSeparated                 // path_separated_prefix
)

// RouteMatch is config.route.v3.RouteMatch. The path is compared without the query string.
type RouteMatch struct {
	PathKind      PathKind
	Path          string         // prefix / path / path_separated_prefix value
	Regex         *regexp.Regexp // safe_regex.regex, anchored to match the whole path
	CaseSensitive bool           // case_sensitive (default true); Istio sets false for ignoreUriCase
	// headers: all must match. Istio encodes method as ":method" and authority as
	// ":authority"; ":authority" is the Host header, ":path" the full path with query.
	Headers []HeaderMatcher
	// query_parameters: all must match.
	QueryParams []QueryParamMatcher
	// runtime_fraction is not supported; grpc and tls_context matchers are rejected.
}

// StringMatchKind is the oneof of type.matcher.v3.StringMatcher.
type StringMatchKind int

// The string match kinds, one per StringMatcher.match_pattern field.
const (
	MatchExact StringMatchKind = iota
	MatchPrefix
	MatchSuffix
	MatchContains
	MatchRegex
)

// StringMatcher is type.matcher.v3.StringMatcher.
type StringMatcher struct {
	Kind       StringMatchKind
	Value      string         // exact / prefix / suffix / contains
	Regex      *regexp.Regexp // safe_regex, anchored (full match)
	IgnoreCase bool           // ignore_case (not for regex)
}

// HeaderMatcher is config.route.v3.HeaderMatcher.
type HeaderMatcher struct {
	Name string // name, lower-cased
	// Present (present_match: true) matches when the header exists, whatever its value;
	// otherwise Value (string_match) must match. Multiple values are joined with ",".
	Present bool
	Value   StringMatcher
	Invert  bool // invert_match (Istio's withoutHeaders)
	// TreatMissingAsEmpty is treat_missing_header_as_empty: a missing header is matched
	// as the empty string (Istio sets it with withoutHeaders).
	TreatMissingAsEmpty bool
}

// QueryParamMatcher is config.route.v3.QueryParameterMatcher.
type QueryParamMatcher struct {
	Name    string        // name
	Present bool          // present_match
	Value   StringMatcher // string_match
}

// HeaderValueOption is config.core.v3.HeaderValueOption.
type HeaderValueOption struct {
	Key   string // header.key
	Value string // header.value
	// Append: append_action APPEND_IF_EXISTS_OR_ADD (true) or OVERWRITE_IF_EXISTS_OR_ADD
	// (false). The deprecated append BoolValue maps the same way (unset = true).
	Append bool
}

// RouteAction is config.route.v3.RouteAction.
type RouteAction struct {
	// Exactly one of Cluster (cluster) and WeightedClusters (weighted_clusters.clusters) is set.
	Cluster          string
	WeightedClusters []WeightedCluster
	// cluster_not_found_response_code: 503 (SERVICE_UNAVAILABLE, default), 404 or 500.
	ClusterNotFoundCode int

	PrefixRewrite      string        // prefix_rewrite
	RegexRewrite       *RegexRewrite // regex_rewrite
	HostRewriteLiteral string        // host_rewrite_literal
	AutoHostRewrite    bool          // auto_host_rewrite

	// timeout: 0 means none. Unset in the proto means Envoy's default, 15 s. Istio always
	// sets it (0s unless the VirtualService sets timeout).
	Timeout     time.Duration
	RetryPolicy *RetryPolicy // retry_policy
	Mirrors     []Mirror     // request_mirror_policies
	// HashPolicy is hash_policy: how RING_HASH and MAGLEV clusters hash the request.
	HashPolicy []HashPolicy
}

// HashPolicy is config.route.v3.RouteAction.HashPolicy: exactly one of Header, Cookie,
// SourceIP and QueryParameter is set.
type HashPolicy struct {
	Header         string      // header.header_name
	Cookie         *CookieHash // cookie
	SourceIP       bool        // connection_properties.source_ip
	QueryParameter string      // query_parameter.name
	Terminal       bool        // terminal
}

// CookieHash is config.route.v3.RouteAction.HashPolicy.Cookie. When the request lacks the
// cookie and TTL is set, the proxy generates one and sets it on the response.
type CookieHash struct {
	Name   string        // name
	TTL    time.Duration // ttl (0 with HasTTL: a session cookie)
	HasTTL bool          // ttl is set
	Path   string        // path
}

// WeightedCluster is config.route.v3.WeightedCluster.ClusterWeight. Weights are relative.
type WeightedCluster struct {
	Name                    string // name
	Weight                  uint32 // weight
	RequestHeadersToAdd     []HeaderValueOption
	RequestHeadersToRemove  []string
	ResponseHeadersToAdd    []HeaderValueOption
	ResponseHeadersToRemove []string
	HostRewriteLiteral      string // host_rewrite_literal
}

// RegexRewrite is type.matcher.v3.RegexMatchAndSubstitute.
type RegexRewrite struct {
	Pattern      *regexp.Regexp // pattern.regex (not anchored: every match is replaced)
	Substitution string         // substitution, with \1-style group references
}

// RetryPolicy is config.route.v3.RetryPolicy.
type RetryPolicy struct {
	RetryOn              []string      // retry_on split on ",", trimmed: "connect-failure", "5xx", ...
	NumRetries           uint32        // num_retries (unset → 1)
	PerTryTimeout        time.Duration // per_try_timeout (0 = the route timeout)
	RetriableStatusCodes []uint32      // retriable_status_codes
	// retry_host_predicate contains envoy.retry_host_predicates.previous_hosts.
	AvoidPreviousHosts            bool
	HostSelectionRetryMaxAttempts int64         // host_selection_retry_max_attempts
	BackOffBase                   time.Duration // retry_back_off.base_interval (unset → 25 ms)
	BackOffMax                    time.Duration // retry_back_off.max_interval (unset → 10 × base)
	// RetriableHeaders is retriable_headers: with retry_on retriable-headers, a response
	// matching any of them is retried.
	RetriableHeaders []HeaderMatcher
	// RemoteLocalities: retry_priority envoy.retry_priorities.previous_priorities (Istio's
	// retryRemoteLocalities): retries prefer another priority, then another locality
	// (cluster/locality.go).
	RemoteLocalities bool
}

// Mirror is config.route.v3.RouteAction.RequestMirrorPolicy.
type Mirror struct {
	Cluster string  // cluster
	Percent float64 // runtime_fraction.default_value as a percentage 0..100 (unset → 100)
}

// Redirect is config.route.v3.RedirectAction.
type Redirect struct {
	Scheme        string // scheme_redirect ("" keeps), or "https" from https_redirect
	Host          string // host_redirect
	Port          uint32 // port_redirect
	Path          string // path_redirect (replaces the whole path)
	PrefixRewrite string // prefix_rewrite (replaces the matched prefix)
	Code          int    // response_code: 301 (default), 302, 303, 307, 308
	StripQuery    bool   // strip_query
}

// DirectResponse is config.route.v3.DirectResponseAction.
type DirectResponse struct {
	Status int    // status
	Body   string // body.inline_string
}

// Fault is extensions.filters.http.fault.v3.HTTPFault, as Istio writes it per route.
type Fault struct {
	DelayPercent float64       // delay.percentage as 0..100
	Delay        time.Duration // delay.fixed_delay (0 = no delay)
	AbortPercent float64       // abort.percentage as 0..100
	AbortStatus  int           // abort.http_status (0 = no abort)
	AbortGRPC    int           // abort.grpc_status (-1 = not set)
}
