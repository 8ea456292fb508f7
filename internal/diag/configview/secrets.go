package configview

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/lucid-mesh/lucid/internal/diag/inspect"
)

// Secrets prints `proxy-config secret` as istioctl does:
//
//	RESOURCE NAME  TYPE  STATUS  VALID CERT  SERIAL NUMBER  NOT AFTER  NOT BEFORE
//
// one row per secret (warming, then active): TYPE "Cert Chain" or "CA" and the dates and
// serial of its first certificate, VALID CERT whether now is within them (false for a
// warming secret, which has none); a TRUST DOMAIN column when every secret's certificate
// names one (a spiffe:// URI). "No active or warming secrets found." when there is none.
func Secrets(w io.Writer, d *inspect.Dump, now time.Time) error {
	if !d.HasSecrets {
		return errors.New("config dump has no configuration type type.googleapis.com/envoy.admin.v3.SecretsConfigDump")
	}
	if len(d.Secrets) == 0 {
		_, err := fmt.Fprintln(w, "No active or warming secrets found.")
		return err
	}
	type meta struct {
		typ, serial, notAfter, notBefore, trustDomain string
		valid                                         bool
	}
	rows := make([]meta, len(d.Secrets))
	allTrustDomains := true
	for i, s := range d.Secrets {
		if block, _ := pem.Decode(s.PEM); block != nil {
			if c, err := x509.ParseCertificate(block.Bytes); err == nil {
				m := meta{typ: "Cert Chain", serial: fmt.Sprintf("%032x", c.SerialNumber),
					notAfter: c.NotAfter.Format(time.RFC3339), notBefore: c.NotBefore.Format(time.RFC3339),
					valid: now.After(c.NotBefore) && now.Before(c.NotAfter)}
				if c.IsCA {
					m.typ = "CA"
				}
				for _, u := range c.URIs {
					if u.Scheme == "spiffe" {
						m.trustDomain = u.Host
					}
				}
				rows[i] = m
			}
		}
		allTrustDomains = allTrustDomains && rows[i].trustDomain != ""
	}
	cols := []string{"RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE"}
	if allTrustDomains {
		cols = append(cols, "TRUST DOMAIN")
	}
	tw := tabwriter.NewWriter(w, 0, 5, 5, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for i, s := range d.Secrets {
		m := rows[i]
		cells := []string{s.Name, m.typ, s.State, fmt.Sprint(m.valid), m.serial, m.notAfter, m.notBefore}
		if allTrustDomains {
			cells = append(cells, m.trustDomain)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return flush(tw)
}

// Bootstrap prints `proxy-config bootstrap`'s summary as istioctl does: the Istio version
// and proxy SHA when the node metadata has them (ISTIO_VERSION, ISTIO_PROXY_SHA), and the
// build ("Envoy Version: 1.2.3-label/Clean/RELEASE/go1.26"; user_agent_build_version).
func Bootstrap(w io.Writer, node *corepb.Node) error {
	md := node.GetMetadata().GetFields()
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	if v := md["ISTIO_VERSION"].GetStringValue(); v != "" {
		fmt.Fprintf(tw, "Istio Version:\t%s\n", v)
	}
	if sha := md["ISTIO_PROXY_SHA"].GetStringValue(); sha != "" {
		if _, after, ok := strings.Cut(sha, ":"); ok {
			sha = after
			if i := strings.IndexByte(sha, ':'); i >= 0 {
				sha = sha[:i]
			}
		}
		fmt.Fprintf(tw, "Istio Proxy Version:\t%s\n", sha)
	}
	bv := node.GetUserAgentBuildVersion()
	v, bmd := bv.GetVersion(), bv.GetMetadata().GetFields()
	version := fmt.Sprintf("%d.%d.%d", v.GetMajorNumber(), v.GetMinorNumber(), v.GetPatch())
	if l, ok := bmd["build.label"]; ok {
		version += "-" + l.GetStringValue()
	}
	for _, k := range []string{"revision.status", "build.type", "ssl.version"} {
		if x, ok := bmd[k]; ok {
			version += "/" + x.GetStringValue()
		}
	}
	fmt.Fprintf(tw, "Envoy Version:\t%s\n", version)
	return flush(tw)
}
