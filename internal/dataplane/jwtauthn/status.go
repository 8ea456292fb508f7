package jwtauthn

// Status is the outcome of verifying a request's token, with Envoy's jwt_verify_lib
// wording: the body of the 401 (403 for audiences) Envoy sends.
type Status int

// The statuses a verification can end with.
const (
	OK Status = iota
	Missing
	BadFormat
	HeaderBadBase64
	HeaderBadJSON
	HeaderBadAlg
	HeaderUnsupportedAlg
	PayloadBadBase64
	PayloadBadJSON
	IssNotString
	SubNotString
	ExpNotInteger
	NbfNotInteger
	AudNotString
	SignatureBadBase64
	Expired
	NotYetValid
	UnknownIssuer
	AudienceNotAllowed
	VerificationFails
	MultipleTokens
	KidAlgMismatch
	JWKSFetchFailed
	JWKSNoValidKeys
)

var statusText = [...]string{
	OK:                   "OK",
	Missing:              "Jwt is missing",
	BadFormat:            "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
	HeaderBadBase64:      "Jwt header is an invalid Base64url encoded",
	HeaderBadJSON:        "Jwt header is an invalid JSON",
	HeaderBadAlg:         "Jwt header [alg] field is required and must be a string",
	HeaderUnsupportedAlg: "Jwt header [alg] is not supported",
	PayloadBadBase64:     "Jwt payload is an invalid Base64url encoded",
	PayloadBadJSON:       "Jwt payload is an invalid JSON",
	IssNotString:         "Jwt payload [iss] field is not a string",
	SubNotString:         "Jwt payload [sub] field is not a string",
	ExpNotInteger:        "Jwt payload [exp] field is not an integer",
	NbfNotInteger:        "Jwt payload [nbf] field is not an integer",
	AudNotString:         "Jwt payload [aud] field is not a string or string list",
	SignatureBadBase64:   "Jwt signature is an invalid Base64url encoded",
	Expired:              "Jwt is expired",
	NotYetValid:          "Jwt not yet valid",
	UnknownIssuer:        "Jwt issuer is not configured",
	AudienceNotAllowed:   "Audiences in Jwt are not allowed",
	VerificationFails:    "Jwt verification fails",
	MultipleTokens:       "Found multiple Jwt tokens",
	KidAlgMismatch:       "Jwks doesn't have key to match kid or alg from Jwt",
	JWKSFetchFailed:      "Jwks remote fetch is failed",
	JWKSNoValidKeys:      "Jwks doesn't have any valid public key",
}

// String is Envoy's text for the status (the body of its local reply).
func (s Status) String() string {
	if int(s) < len(statusText) {
		return statusText[s]
	}
	return "unknown"
}

// HTTPStatus is the status code of Envoy's local reply: 403 for audiences, else 401.
func (s Status) HTTPStatus() int {
	if s == AudienceNotAllowed {
		return 403
	}
	return 401
}

// Details is Envoy's response_code_details for the failure:
// "jwt_authn_access_denied{<text with spaces as underscores>}".
func (s Status) Details() string {
	b := []byte(s.String())
	for i, c := range b {
		if c == ' ' {
			b[i] = '_'
		}
	}
	return "jwt_authn_access_denied{" + string(b) + "}"
}
