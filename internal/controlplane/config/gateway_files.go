package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

// Gateway certificate files in local mode. A Gateway's tls.serverCertificate,
// tls.privateKey and tls.caCertificates name files; a relative path is relative to the
// directory of the Gateway's YAML file. The directory source (source/file) calls
// ResolveGatewayFiles after parsing, so everything after it (model, translate, the
// gateway's xDS) sees absolute paths, and a missing file is reported once, naming the
// Gateway and the field, with only that server dropped.

// ResolveGatewayFiles returns objs with the certificate paths of every Gateway made
// absolute against dir (the config directory Object.File is relative to), and an Error
// diagnostic for each server whose files do not exist or that names a credentialName
// (a Kubernetes Secret, which local mode does not have); such servers are left out of the
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
			if problem := resolveServerFiles(base, s); problem != nil {
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

// resolveServerFiles makes s's file paths absolute against base and checks they exist;
// the returned Diagnostic (nil when fine) has Field (relative to tls) and Message set.
func resolveServerFiles(base string, s *networkingv1alpha3.Server) *Diagnostic {
	t := s.GetTls()
	if t == nil {
		return nil
	}
	terminates := t.GetMode() != networkingv1alpha3.ServerTLSSettings_PASSTHROUGH && t.GetMode() != networkingv1alpha3.ServerTLSSettings_AUTO_PASSTHROUGH
	if !terminates {
		return nil // passthrough ignores certificates (validation warned)
	}
	if t.GetCredentialName() != "" {
		return &Diagnostic{Field: "credentialName", Message: fmt.Sprintf(
			"credentialName %q names a Kubernetes Secret, which local mode does not read; set serverCertificate and privateKey to files instead (this server is not served, the gateway's other servers are)",
			t.GetCredentialName())}
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
