package resource

import (
	"net/netip"
	"regexp"
	"time"
)

// AuthFilter is one filter that decides whether a request (HTTP filter chain) or a
// connection (network filter chain) may pass: exactly one field is set. Istio's inbound
// order is CUSTOM (an RBAC filter in shadow mode, then ext_authz), jwt_authn, then the
// AUDIT, DENY and ALLOW RBAC filters; the slice keeps the configured order.
type AuthFilter struct {
	Name     string      // the filter's name as configured (envoy.filters.http.rbac, ...)
	RBAC     *RBACFilter // envoy.filters.{http,network}.rbac
	JWT      *JWTAuthn   // envoy.filters.http.jwt_authn
	ExtAuthz *ExtAuthz   // envoy.filters.{http,network}.ext_authz
}

// RBACFilter is extensions.filters.http.rbac.v3.RBAC (or the network filter's RBAC).
// Rules are enforced; ShadowRules are only evaluated and recorded (Istio's dry-run
// policies, and the CUSTOM action's trigger for ext_authz).
type RBACFilter struct {
	Rules                 *RBAC  // rules; nil: nothing enforced
	ShadowRules           *RBAC  // shadow_rules
	ShadowRulesStatPrefix string // shadow_rules_stat_prefix ("istio_dry_run_allow_", "istio_ext_authz_")
	StatPrefix            string // stat_prefix (network filter; Istio "tcp.")
}

// RBACAction is config.rbac.v3.RBAC.Action.
type RBACAction int

// The RBAC actions.
const (
	RBACAllow RBACAction = iota // ALLOW: a request passes only when a policy matches
	RBACDeny                    // DENY: a request fails when a policy matches
	RBACLog                     // LOG: every request passes; a match marks it for the access log
)

func (a RBACAction) String() string {
	switch a {
	case RBACDeny:
		return "DENY"
	case RBACLog:
		return "LOG"
	}
	return "ALLOW"
}

// RBAC is config.rbac.v3.RBAC.
type RBAC struct {
	Action RBACAction
	// Policies sorted by name: Envoy keeps them in an ordered map, so the first policy
	// that matches, in name order, is the effective one ("ns[x]-policy[y]-rule[10]" comes
	// before "...-rule[2]").
	Policies []RBACPolicy
}

// RBACPolicy is config.rbac.v3.Policy: it matches when any permission and any principal
// match.
type RBACPolicy struct {
	Name        string
	Permissions []Permission
	Principals  []Principal
}

// PermissionKind is the oneof of config.rbac.v3.Permission.
type PermissionKind int

// The permission rules Lucid runs.
const (
	PermAny                  PermissionKind = iota // any: true
	PermAnd                                        // and_rules
	PermOr                                         // or_rules
	PermNot                                        // not_rule
	PermHeader                                     // header (":authority", ":method", ":path" and request headers)
	PermURLPath                                    // url_path (path without query)
	PermURITemplate                                // uri_template (envoy.path.match.uri_template)
	PermDestinationIP                              // destination_ip
	PermDestinationPort                            // destination_port
	PermDestinationPortRange                       // destination_port_range [start, end)
	PermRequestedServerName                        // requested_server_name (SNI)
	PermMetadata                                   // metadata
)

// Permission is config.rbac.v3.Permission. Kind says which field is set.
type Permission struct {
	Kind     PermissionKind
	Rules    []Permission  // PermAnd, PermOr
	Not      *Permission   // PermNot
	Header   HeaderMatcher // PermHeader
	String   StringMatcher // PermURLPath (url_path.path), PermRequestedServerName
	Template string        // PermURITemplate: path_template, e.g. "/api/*/v1/**"
	// TemplateRegex is Template compiled as Envoy does ("*": one segment of pchars,
	// "**": any number of characters including '/'), anchored.
	TemplateRegex *regexp.Regexp
	CIDR          netip.Prefix    // PermDestinationIP
	Port          uint32          // PermDestinationPort; start of PermDestinationPortRange
	PortEnd       uint32          // PermDestinationPortRange: end (exclusive)
	Metadata      MetadataMatcher // PermMetadata
}

// PrincipalKind is the oneof of config.rbac.v3.Principal.
type PrincipalKind int

// The principal identifiers Lucid runs.
const (
	PrincAny            PrincipalKind = iota // any: true
	PrincAnd                                 // and_ids
	PrincOr                                  // or_ids
	PrincNot                                 // not_id
	PrincAuthenticated                       // authenticated: the peer certificate's URI SAN (Istio's SPIFFE ID)
	PrincDirectRemoteIP                      // direct_remote_ip: the connection's peer address
	PrincRemoteIP                            // remote_ip: the client address after x-forwarded-for
	PrincSourceIP                            // source_ip (deprecated; the connection's peer address)
	PrincHeader                              // header
	PrincURLPath                             // url_path
	PrincMetadata                            // metadata
)

// Principal is config.rbac.v3.Principal. Kind says which field is set.
type Principal struct {
	Kind PrincipalKind
	Ids  []Principal // PrincAnd, PrincOr
	Not  *Principal  // PrincNot
	// PrincAuthenticated: principal_name; nil matches any authenticated peer.
	Authenticated *StringMatcher
	CIDR          netip.Prefix    // PrincDirectRemoteIP, PrincRemoteIP, PrincSourceIP
	Header        HeaderMatcher   // PrincHeader
	Path          StringMatcher   // PrincURLPath
	Metadata      MetadataMatcher // PrincMetadata
}

// MetadataMatcher is type.matcher.v3.MetadataMatcher over the request's dynamic metadata
// (jwt_authn's payload is filter "envoy.filters.http.jwt_authn", key "payload").
type MetadataMatcher struct {
	Filter string   // filter
	Path   []string // path[].key
	Value  ValueMatcher
	Invert bool // invert
}

// ValueKind is the oneof of type.matcher.v3.ValueMatcher.
type ValueKind int

// The value matchers.
const (
	ValueNull    ValueKind = iota // null_match
	ValueDouble                   // double_match (exact or range)
	ValueString                   // string_match
	ValueBool                     // bool_match
	ValuePresent                  // present_match
	ValueList                     // list_match.one_of: some element of a list matches
	ValueOr                       // or_match
)

// ValueMatcher is type.matcher.v3.ValueMatcher.
type ValueMatcher struct {
	Kind     ValueKind
	String   StringMatcher  // ValueString
	Bool     bool           // ValueBool
	Present  bool           // ValuePresent
	Double   float64        // ValueDouble exact (when !DoubleRange)
	Range    [2]float64     // ValueDouble range [start, end)
	IsRange  bool           // ValueDouble: Range is set
	OneOf    *ValueMatcher  // ValueList
	Matchers []ValueMatcher // ValueOr
}

// JWTAuthn is extensions.filters.http.jwt_authn.v3.JwtAuthentication.
type JWTAuthn struct {
	Providers           map[string]*JWTProvider // providers by name (Istio: "origins-0", ...)
	Rules               []JWTRule               // rules, first match wins
	BypassCORSPreflight bool                    // bypass_cors_preflight
}

// JWTProvider is jwt_authn.v3.JwtProvider.
type JWTProvider struct {
	Name      string
	Issuer    string   // issuer ("" accepts any iss)
	Audiences []string // audiences (empty: not checked)
	// Where the token is looked for. None of the three set means Envoy's defaults: the
	// Authorization header with prefix "Bearer " and the access_token query parameter.
	FromHeaders []JWTHeader // from_headers
	FromParams  []string    // from_params
	FromCookies []string    // from_cookies
	// Forward keeps the token in the request after verification (Istio's
	// forwardOriginalToken); false removes the header it came in.
	Forward              bool
	ForwardPayloadHeader string           // forward_payload_header: base64url payload sent upstream
	PayloadInMetadata    string           // payload_in_metadata (Istio "payload")
	ClaimToHeaders       []JWTClaimHeader // claim_to_headers
	SpaceDelimitedClaims []string         // normalize_payload_in_metadata.space_delimited_claims
	ClockSkew            time.Duration    // clock_skew_seconds (default 60 s)
	// Keys: exactly one of the three is set.
	LocalJWKS     string      // local_jwks.inline_string (a JWKS document)
	LocalJWKSFile string      // local_jwks.filename
	RemoteJWKS    *RemoteJWKS // remote_jwks
}

// JWTHeader is jwt_authn.v3.JwtHeader.
type JWTHeader struct {
	Name   string // lower-cased
	Prefix string // value_prefix, e.g. "Bearer "
}

// JWTClaimHeader is jwt_authn.v3.JwtClaimToHeader.
type JWTClaimHeader struct {
	Header string // header_name
	Claim  string // claim_name; nested claims with '.' ("a.b")
}

// RemoteJWKS is jwt_authn.v3.RemoteJwks.
type RemoteJWKS struct {
	URI           string        // http_uri.uri
	Cluster       string        // http_uri.cluster (Istio: the outbound cluster of the host)
	Timeout       time.Duration // http_uri.timeout
	CacheDuration time.Duration // cache_duration (default 5 min)
}

// JWTRule is jwt_authn.v3.RequirementRule: requests whose path matches (Istio: prefix "/")
// must satisfy Requires.
type JWTRule struct {
	Prefix   string // match.prefix
	Path     string // match.path (exact)
	Requires JWTRequirement
}

// JWTRequirementKind is the oneof of jwt_authn.v3.JwtRequirement.
type JWTRequirementKind int

// The requirement kinds.
const (
	JWTProviderName         JWTRequirementKind = iota // provider_name
	JWTRequiresAny                                    // requires_any
	JWTRequiresAll                                    // requires_all
	JWTAllowMissing                                   // allow_missing
	JWTAllowMissingOrFailed                           // allow_missing_or_failed
	JWTNoRequirement                                  // a rule without requires: tokens are not looked at
)

// JWTRequirement is jwt_authn.v3.JwtRequirement.
type JWTRequirement struct {
	Kind         JWTRequirementKind
	Provider     string           // JWTProviderName
	Requirements []JWTRequirement // JWTRequiresAny, JWTRequiresAll
}

// ExtAuthz is extensions.filters.http.ext_authz.v3.ExtAuthz with an HTTP service (Istio's
// envoyExtAuthzHttp provider), or, with GRPC set, a gRPC one, which Lucid does not call:
// such a filter fails closed (status_on_error).
type ExtAuthz struct {
	GRPC    bool          // grpc_service instead of http_service
	Cluster string        // http_service.server_uri.cluster or grpc_service's cluster_name
	URI     string        // http_service.server_uri.uri (Istio: "http://<host>")
	Timeout time.Duration // server_uri.timeout / grpc_service.timeout
	// PathPrefix is prepended to the request's path in the check request.
	PathPrefix string
	// AllowedHeaders are the request headers copied into the check request (allowed_headers);
	// Authorization, :method, :path and Host are always copied.
	AllowedHeaders []StringMatcher
	HeadersToAdd   []HeaderValueOption // http_service.authorization_request.headers_to_add
	// Response headers of the authorization server: copied to the upstream request when
	// allowed; to the client when denied (none listed: all but Host); to the client's
	// response when allowed.
	AllowedUpstreamHeaders        []StringMatcher
	AllowedClientHeaders          []StringMatcher
	AllowedClientHeadersOnSuccess []StringMatcher
	StatusOnError                 int  // status_on_error (default 403)
	FailureModeAllow              bool // failure_mode_allow
	// WithRequestBody buffers up to MaxRequestBytes of the body into the check request.
	WithRequestBody     bool
	MaxRequestBytes     uint32
	AllowPartialMessage bool
	// FilterEnabledMetadata, when set, calls the service only for requests whose dynamic
	// metadata matches (Istio: an RBAC shadow policy of the CUSTOM provider matched).
	FilterEnabledMetadata *MetadataMatcher
}
