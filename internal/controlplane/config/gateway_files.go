package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/proto"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

// Gateway certificate files in local mode. A Gateway's tls.serverCertificate,
// tls.privateKey and tls.caCertificates name files; a relative path is relative to the
// directory of the Gateway's YAML file. The directory source (source/file) calls
// ResolveGatewayFiles after parsing, so everything after it (model, translate, the
// gateway's xDS) sees absolute paths, and a missing file is reported once, naming the
// Gateway and the field, with only that server dropped.
//
// A tls.credentialName names a Kubernetes Secret; local mode has none, so it names a
// directory under the config directory instead, holding the Secret's keys as files:
//
//	<config dir>/credentials/<credentialName>/tls.crt   (or cert)
//	<config dir>/credentials/<credentialName>/tls.key   (or key)
//	<config dir>/credentials/<credentialName>/ca.crt    (or cacert; MUTUAL's client CA)
//	<config dir>/credentials/<credentialName>-cacert/ca.crt  (or cacert: the CA apart,
//	                                                          as Istio's -cacert Secret)
//
// The server then serves those files exactly as if serverCertificate, privateKey and
// caCertificates named them: the gateway reads them again when they change.

// CredentialsDir is the directory, under the config directory, that holds one directory
// of certificate files per Gateway credentialName in local mode.
const CredentialsDir = "credentials"

// credentialKeys are the file names of a credential directory, in Istio's order of
// preference: the kubernetes.io/tls Secret's keys, then the generic Secret's.
var credentialKeys = struct{ cert, key, ca [2]string }{
	cert: [2]string{"tls.crt", "cert"},
	key:  [2]string{"tls.key", "key"},
	ca:   [2]string{"ca.crt", "cacert"},
}

// ResolveGatewayFiles returns objs with the certificate paths of every Gateway made
// absolute against dir (the config directory Object.File is relative to), and an Error
// diagnostic for each server whose files do not exist (for a credentialName: whose
// credentials directory holds no certificate); such servers are left out of the
// returned Gateway, its other servers keep serving. Objects are never modified: a Gateway
// that needs a change is returned as a copy.
func ResolveGatewayFiles(dir string, objs []*Object) ([]*Object, []Diagnostic) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		absDir = dir
	}
	out := make([]*Object, 0, len(objs))
	var diags []Diagnostic
	for _, o := range objs {
		gw, ok := o.Spec.(*networkingv1alpha3.Gateway)
		if !ok || !hasTLSFiles(gw) {
			out = append(out, o)
			continue
		}
		base := filepath.Join(absDir, filepath.Dir(filepath.FromSlash(o.File)))
		clone := proto.Clone(gw).(*networkingv1alpha3.Gateway)
		var kept []*networkingv1alpha3.Server
		for i, s := range clone.GetServers() {
			if problem := resolveServerFiles(absDir, base, s); problem != nil {
				problem.Level, problem.File, problem.Line = Error, o.File, o.Line
				problem.Kind, problem.Namespace, problem.Name = o.Kind, o.Namespace, o.Name
				problem.Field = fmt.Sprintf("spec.servers[%d].tls.%s", i, problem.Field)
				diags = append(diags, *problem)
				continue
			}
			kept = append(kept, s)
		}
		clone.Servers = kept
		c := *o
		c.Spec = clone
		out = append(out, &c)
	}
	return out, diags
}

func hasTLSFiles(gw *networkingv1alpha3.Gateway) bool {
	for _, s := range gw.GetServers() {
		if t := s.GetTls(); t.GetServerCertificate() != "" || t.GetPrivateKey() != "" || t.GetCaCertificates() != "" || t.GetCredentialName() != "" {
			return true
		}
	}
	return false
}

// resolveServerFiles makes s's file paths absolute against base (a credentialName's
// against the config directory dir) and checks they exist; the returned Diagnostic (nil
// when fine) has Field (relative to tls) and Message set.
func resolveServerFiles(dir, base string, s *networkingv1alpha3.Server) *Diagnostic {
	t := s.GetTls()
	if t == nil {
		return nil
	}
	terminates := t.GetMode() != networkingv1alpha3.ServerTLSSettings_PASSTHROUGH && t.GetMode() != networkingv1alpha3.ServerTLSSettings_AUTO_PASSTHROUGH
	if !terminates {
		return nil // passthrough ignores certificates (validation warned)
	}
	if t.GetCredentialName() != "" {
		return resolveCredential(dir, t)
	}
	for _, f := range []struct {
		name string
		path *string
	}{{"serverCertificate", &t.ServerCertificate}, {"privateKey", &t.PrivateKey}, {"caCertificates", &t.CaCertificates}} {
		if *f.path == "" {
			continue
		}
		p := *f.path
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		if _, err := os.Stat(p); err != nil {
			why := err.Error()
			if errors.Is(err, fs.ErrNotExist) {
				why = "no such file"
			}
			return &Diagnostic{Field: f.name, Message: fmt.Sprintf(
				"cannot read %s (%s): %s; this server is not served, the gateway's other servers are", *f.path, p, why)}
		}
		*f.path = p
	}
	return nil
}

// IsCredentialFile reports whether a credentials directory's file name is one local mode
// reads (tls.crt, tls.key, ca.crt, cert, key, cacert).
func IsCredentialFile(name string) bool {
	for _, names := range [][2]string{credentialKeys.cert, credentialKeys.key, credentialKeys.ca} {
		if name == names[0] || name == names[1] {
			return true
		}
	}
	return false
}

// CredentialFiles are the files a local-mode credentialName stands for; CA is "" when the
// credential has no CA.
type CredentialFiles struct {
	Dir           string // <config dir>/credentials/<name>
	Cert, Key, CA string
}

// FindCredential looks for the files of credentialName name under the config directory
// dir. ok is false when the certificate or the key is missing.
func FindCredential(dir, name string) (f CredentialFiles, ok bool) {
	f.Dir = filepath.Join(dir, CredentialsDir, filepath.FromSlash(name))
	first := func(d string, names [2]string) string {
		for _, n := range names {
			if st, err := os.Stat(filepath.Join(d, n)); err == nil && st.Mode().IsRegular() {
				return filepath.Join(d, n)
			}
		}
		return ""
	}
	f.Cert, f.Key = first(f.Dir, credentialKeys.cert), first(f.Dir, credentialKeys.key)
	f.CA = first(f.Dir, credentialKeys.ca)
	if f.CA == "" {
		f.CA = first(f.Dir+"-cacert", credentialKeys.ca)
	}
	return f, f.Cert != "" && f.Key != ""
}

// resolveCredential turns t's credentialName into the files of its credentials directory
// (t is a clone: serverCertificate, privateKey and caCertificates are set, credentialName
// cleared).
func resolveCredential(dir string, t *networkingv1alpha3.ServerTLSSettings) *Diagnostic {
	name := t.GetCredentialName()
	if name == "." || name == ".." || strings.Contains(name, "/") || strings.Contains(name, `\`) {
		return &Diagnostic{Field: "credentialName", Message: fmt.Sprintf(
			"credentialName %q: local mode reads a directory %s/<credentialName>, so the name must not contain a path (this server is not served, the gateway's other servers are)", name, CredentialsDir)}
	}
	f, ok := FindCredential(dir, name)
	if !ok {
		return &Diagnostic{Field: "credentialName", Message: fmt.Sprintf(
			"credentialName %q: no certificate in %s (local mode reads a Gateway credential from %s/%s/: tls.crt and tls.key, or cert and key; ca.crt for MUTUAL); this server is not served, the gateway's other servers are",
			name, f.Dir, CredentialsDir, name)}
	}
	mutual := t.GetMode() == networkingv1alpha3.ServerTLSSettings_MUTUAL || t.GetMode() == networkingv1alpha3.ServerTLSSettings_OPTIONAL_MUTUAL
	if mutual && f.CA == "" {
		return &Diagnostic{Field: "credentialName", Message: fmt.Sprintf(
			"credentialName %q: %s needs the CA that signs client certificates: ca.crt (or cacert) in %s or in %s-cacert; this server is not served, the gateway's other servers are",
			name, t.GetMode(), f.Dir, f.Dir)}
	}
	t.ServerCertificate, t.PrivateKey, t.CredentialName = f.Cert, f.Key, ""
	if mutual {
		t.CaCertificates = f.CA
	}
	return nil
}
