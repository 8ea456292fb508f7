package resource

// EscapedSlashesAction is the connection manager's path_with_escaped_slashes_action: what
// the proxy does with %2F and %5C in a request path before routing and authorization.
type EscapedSlashesAction int

// The actions, in Envoy's order (IMPLEMENTATION_SPECIFIC_DEFAULT is KEEP_UNCHANGED).
const (
	EscapedSlashesKeep                EscapedSlashesAction = iota // KEEP_UNCHANGED
	EscapedSlashesReject                                          // REJECT_REQUEST: 400
	EscapedSlashesUnescapeAndRedirect                             // UNESCAPE_AND_REDIRECT: 307 to the decoded path
	EscapedSlashesUnescapeAndForward                              // UNESCAPE_AND_FORWARD: decoded, then routed
)
