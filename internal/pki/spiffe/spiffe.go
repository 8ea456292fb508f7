// Package spiffe is a workload's mesh identity in Istio's SPIFFE form,
// spiffe://<trust domain>/ns/<namespace>/sa/<service account>: what the CA writes in a
// certificate's URI SAN, what the agent asks for, and what a peer's certificate is checked
// against. A leaf of internal/pki.
package spiffe

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Scheme is the URI scheme of SPIFFE IDs.
const Scheme = "spiffe"

// ID is an Istio workload identity.
type ID struct {
	TrustDomain, Namespace, ServiceAccount string
}

// String is the SPIFFE URI, spiffe://td/ns/<ns>/sa/<sa>.
func (id ID) String() string {
	return Scheme + "://" + id.TrustDomain + "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount
}

// URL is the SPIFFE URI as a URI SAN.
func (id ID) URL() *url.URL {
	return &url.URL{Scheme: Scheme, Host: id.TrustDomain, Path: "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount}
}

// Validate says what makes id unusable: an empty or malformed part (SPIFFE's character
// rules: trust domain lower-case letters, digits, '.', '-', '_'; path segments also
// upper-case letters).
func (id ID) Validate() error {
	if err := checkTrustDomain(id.TrustDomain); err != nil {
		return err
	}
	if err := checkSegment("namespace", id.Namespace); err != nil {
		return err
	}
	return checkSegment("service account", id.ServiceAccount)
}

func checkTrustDomain(td string) error {
	if td == "" {
		return errors.New("spiffe: empty trust domain")
	}
	for _, r := range td {
		if !isLower(r) && !isDigit(r) && !isPunct(r) {
			return fmt.Errorf("spiffe: trust domain %q: character %q not allowed (lower-case letters, digits, '.', '-', '_')", td, r)
		}
	}
	return nil
}

func checkSegment(what, s string) error {
	if s == "" {
		return fmt.Errorf("spiffe: empty %s", what)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("spiffe: %s %q is not a valid path segment", what, s)
	}
	for _, r := range s {
		if !isLower(r) && !isUpper(r) && !isDigit(r) && !isPunct(r) {
			return fmt.Errorf("spiffe: %s %q: character %q not allowed (letters, digits, '.', '-', '_')", what, s, r)
		}
	}
	return nil
}

func isLower(r rune) bool { return r >= 'a' && r <= 'z' }
func isUpper(r rune) bool { return r >= 'A' && r <= 'Z' }
func isDigit(r rune) bool { return r >= '0' && r <= '9' }
func isPunct(r rune) bool { return r == '.' || r == '-' || r == '_' }

// Parse reads an Istio SPIFFE ID; like Istio it requires exactly the ns and sa segments.
func Parse(s string) (ID, error) {
	rest, ok := strings.CutPrefix(s, Scheme+"://")
	if !ok {
		return ID{}, fmt.Errorf("spiffe: %q does not start with spiffe://", s)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 5 || parts[1] != "ns" || parts[3] != "sa" {
		return ID{}, fmt.Errorf("spiffe: %q is not spiffe://<trust domain>/ns/<namespace>/sa/<service account>", s)
	}
	id := ID{TrustDomain: parts[0], Namespace: parts[2], ServiceAccount: parts[4]}
	if err := id.Validate(); err != nil {
		return ID{}, fmt.Errorf("%w (in %q)", err, s)
	}
	return id, nil
}

// FromCertificate is the identity in c's URI SANs: the one spiffe:// URI. None, several, or
// a malformed one is an error.
func FromCertificate(c *x509.Certificate) (ID, error) {
	var found []string
	for _, u := range c.URIs {
		if u.Scheme == Scheme {
			found = append(found, u.String())
		}
	}
	switch len(found) {
	case 0:
		return ID{}, errors.New("spiffe: the certificate has no spiffe:// URI SAN")
	case 1:
		return Parse(found[0])
	}
	return ID{}, fmt.Errorf("spiffe: the certificate has %d spiffe:// URI SANs (%s); a workload has one identity", len(found), strings.Join(found, ", "))
}
