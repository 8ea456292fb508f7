package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
)

// validator collects the problems found in one object's spec. Rules follow Istio's
// own validation (pkg/config/validation): reject what Istio rejects, accept what it
// accepts, warn where it warns.
type validator struct {
	ns, name string
	errs     []validationError
}

type validationError struct {
	path    string
	msg     string
	warning bool
	lucid   bool // a warning of Lucid's own, not one of Istio's validation warnings
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, validationError{path: path, msg: fmt.Sprintf(format, args...)})
}

func (v *validator) warnf(path, format string, args ...any) {
	v.errs = append(v.errs, validationError{path: path, msg: fmt.Sprintf(format, args...), warning: true})
}

// lucidWarnf records a warning Istio does not give: the object is fine for Istio, but
// Lucid serves it differently.
func (v *validator) lucidWarnf(path, format string, args ...any) {
	v.errs = append(v.errs, validationError{path: path, msg: fmt.Sprintf(format, args...), warning: true, lucid: true})
}

func idx(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

func key(path, k string) string { return fmt.Sprintf("%s[%s]", path, k) }

var (
	dns1123Label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1123LabelCase = regexp.MustCompile(`^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`)
	labelValue       = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)
	qualifiedName    = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	headerName       = regexp.MustCompile(`^[-_A-Za-z0-9]+$`)
	headerValue      = regexp.MustCompile("^[^\u0000-\u0008\u000A-\u001F\u007F]*$")
)

func isDNS1123Label(s string) bool { return len(s) <= 63 && dns1123Label.MatchString(s) }

// isDNS1123LabelAnyCase is Istio's labels.IsDNS1123Label (subset and port names): upper
// case allowed.
func isDNS1123LabelAnyCase(s string) bool { return len(s) <= 63 && dns1123LabelCase.MatchString(s) }

func isDNS1123Subdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !isDNS1123Label(l) {
			return false
		}
	}
	return true
}

// validateLabel checks one Kubernetes label (key: optional DNS prefix + "/" + name).
// It returns "" when valid.
func validateLabel(k, v string) string {
	name := k
	if i := strings.LastIndex(k, "/"); i >= 0 {
		prefix := k[:i]
		name = k[i+1:]
		if !isDNS1123Subdomain(prefix) {
			return fmt.Sprintf("invalid label key %q: prefix must be a DNS subdomain", k)
		}
	}
	if name == "" || len(name) > 63 || !qualifiedName.MatchString(name) {
		return fmt.Sprintf("invalid label key %q", k)
	}
	if len(v) > 63 || !labelValue.MatchString(v) {
		return fmt.Sprintf("invalid label value %q for key %q", v, k)
	}
	return ""
}

// labels checks labels in a spec (subsets, selectors, workloads) as Istio does: Kubernetes
// label keys, values of label characters (Istio sets no length limit on them).
func (v *validator) labels(path string, labels map[string]string) {
	for _, k := range sortedKeys(labels) {
		val := labels[k]
		name := k
		if i := strings.LastIndex(k, "/"); i >= 0 {
			if prefix := k[:i]; len(prefix) > 253 || !isDNS1123SubdomainAnyCase(prefix) {
				v.errorf(key(path, k), "invalid label key %q: prefix must be a DNS subdomain", k)
				continue
			}
			name = k[i+1:]
		}
		switch {
		case name == "" || !qualifiedName.MatchString(name):
			v.errorf(key(path, k), "invalid label key %q", k)
		case len(name) > 63:
			v.errorf(key(path, k), "invalid label key %q: name longer than 63 characters", k)
		case !labelValue.MatchString(val):
			v.errorf(key(path, k), "invalid label value %q for key %q", val, k)
		}
	}
}

func isDNS1123SubdomainAnyCase(s string) bool {
	for _, l := range strings.Split(s, ".") {
		if !dns1123LabelCase.MatchString(l) {
			return false
		}
	}
	return s != ""
}

// selectorLabels checks a workload selector's labels: no empty keys, no wildcards.
func (v *validator) selectorLabels(path string, labels map[string]string) {
	for _, k := range sortedKeys(labels) {
		val := labels[k]
		if k == "" {
			v.errorf(path, "empty key is not supported in selector: %q", k+"="+val)
		}
		if strings.Contains(k, "*") || strings.Contains(val, "*") {
			v.errorf(key(path, k), "wildcard is not supported in selector: %q", k+"="+val)
		}
	}
	if len(labels) == 0 {
		v.warnf(path, "workload selector specified without labels")
	}
}

// wildcardLabel is a DNS label whose start may be "*" or "*-" (Istio's
// IsWildcardDNS1123Label).
var wildcardLabel = regexp.MustCompile(`^(\*|(\*|\*-)?[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)$`)

// wildcardDomainError checks a host as Istio's ValidateWildcardDomain does: a DNS name
// (FQDN or short name) whose first label may be "*" or start with "*". It returns "" when
// valid.
func wildcardDomainError(host string) string {
	if msg := domainPreconditions(host); msg != "" {
		return msg
	}
	first, rest, ok := strings.Cut(host, ".")
	if len(first) > 63 || !wildcardLabel.MatchString(first) {
		return fmt.Sprintf("domain name %q invalid (label %q invalid)", host, first)
	}
	if ok {
		return dnsLabelsError(rest)
	}
	return ""
}

func domainPreconditions(host string) string {
	switch {
	case len(host) > 255:
		return fmt.Sprintf("domain name %q too long (max 255)", host)
	case host == "":
		return "empty domain name not allowed"
	}
	return ""
}

// dnsLabelsError checks dot-separated DNS labels: a top level domain that is not a number,
// a trailing dot allowed ("istio.io.").
func dnsLabelsError(domain string) string {
	parts := strings.Split(domain, ".")
	if tld := parts[len(parts)-1]; isNumber(tld) {
		return fmt.Sprintf("domain name %q invalid (top level domain %q cannot be all-numeric)", domain, tld)
	}
	for i, l := range parts {
		if i == len(parts)-1 && l == "" {
			return ""
		}
		if !isDNS1123LabelAnyCase(l) {
			return fmt.Sprintf("domain name %q invalid (label %q invalid)", domain, l)
		}
	}
	return ""
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// fqdnError checks a host name without wildcards (Istio's ValidateFQDN).
func fqdnError(host string) string {
	if msg := domainPreconditions(host); msg != "" {
		return msg
	}
	return dnsLabelsError(host)
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

func (v *validator) port(path string, p uint32) {
	if p < 1 || p > 65535 {
		v.errorf(path, "port number %d must be in the range 1..65535", p)
	}
}

func (v *validator) portName(path, name string) {
	if !isDNS1123LabelAnyCase(name) {
		v.errorf(path, "invalid port name %q: must be an RFC 1123 label", name)
	}
}

// protocols are the port protocols Istio understands (case-insensitive).
var protocols = map[string]bool{
	"HTTP": true, "HTTPS": true, "HTTP2": true, "GRPC": true, "GRPC-WEB": true, "TCP": true,
	"TLS": true, "MONGO": true, "REDIS": true, "MYSQL": true, "UDP": true, "HBONE": true,
}

func (v *validator) protocol(path, p string) {
	if p != "" && !protocols[strings.ToUpper(p)] {
		v.errorf(path, "unsupported protocol %q (want HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, REDIS, MYSQL or UDP)", p)
	}
}

// duration checks a Duration as Istio does: valid, at least 1ms, to ms precision.
func (v *validator) duration(path string, d *durationpb.Duration) {
	if d == nil {
		return
	}
	if err := d.CheckValid(); err != nil {
		v.errorf(path, "invalid duration: %v", err)
		return
	}
	switch got := d.AsDuration(); {
	case got < time.Millisecond:
		v.errorf(path, "duration %s must be at least 1ms", got)
	case got%time.Millisecond != 0:
		v.errorf(path, "duration %s: only durations to ms precision are supported", got)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (v *validator) percent(path string, p int32) {
	if p < 0 || p > 100 {
		v.errorf(path, "percentage %d is not in range 0..100", p)
	}
}

// exportTo checks exportTo values: ".", "*", "~" (ServiceEntry only) or namespaces,
// without duplicates or mixes Istio rejects.
func (v *validator) exportTo(path string, exportTo []string, serviceEntry, drWithSelector bool) {
	if len(exportTo) == 0 {
		return
	}
	seen := map[string]bool{}
	for i, e := range exportTo {
		k := e
		if e == "." {
			k = v.ns
		}
		switch {
		case seen[k] && k != e:
			v.errorf(idx(path, i), "duplicate entries in exportTo: . and current namespace %s", v.ns)
			continue
		case seen[k]:
			v.errorf(idx(path, i), "duplicate entries in exportTo for entry %s", e)
			continue
		case e == "~" && !serviceEntry:
			v.errorf(idx(path, i), "exportTo ~ (nobody) is only allowed on ServiceEntry")
			continue
		case e != "*" && e != "~" && !isDNS1123LabelAnyCase(k):
			v.errorf(idx(path, i), "invalid exportTo value %q: must be ., *, or a namespace", e)
			continue
		}
		seen[k] = true
	}
	if drWithSelector && len(seen) > 0 {
		if !seen[v.ns] {
			v.errorf(path, "destination rule with workload selector cannot have exportTo beyond current namespace")
		} else if len(seen) > 1 {
			v.errorf(path, "destination rule with workload selector cannot have multiple entries in exportTo")
		}
	}
	if seen["*"] && len(exportTo) > 1 {
		v.errorf(path, "cannot have both public (*) and non-public exportTo values for a resource")
	}
	if seen["~"] && len(exportTo) > 1 {
		v.errorf(path, "cannot export service entry to no one (~) and someone")
	}
}

func (v *validator) regex(path, re string) {
	if re == "" {
		v.errorf(path, "regex string match should not be empty")
		return
	}
	if len(re) > 1024 {
		v.errorf(path, "regex is too large, max length allowed is 1024")
		return
	}
	if _, err := regexp.Compile(re); err != nil {
		msg := err.Error()
		if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "error parsing regexp") && i >= 0 {
			msg = msg[i+2:]
		}
		v.errorf(path, "invalid regex %q: %s (RE2 syntax)", re, msg)
	}
}
