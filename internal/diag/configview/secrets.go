package configview

import (
	"io"
	"strconv"
	"time"

	"github.com/lucid-mesh/lucid/internal/diag/inspect"
)

// Secrets prints istioctl's `proxy-config secret` table: RESOURCE NAME, TYPE, STATUS,
// VALID CERT, SERIAL NUMBER, NOT AFTER, NOT BEFORE, and Lucid's IDENTITY (the SPIFFE ID).
func Secrets(w io.Writer, rows []inspect.Secret) error {
	tw := newTable(w, 5)
	row(tw, "RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE", "IDENTITY")
	for _, s := range rows {
		if s.Status == "WARMING" {
			row(tw, s.Name, "", s.Status, "false", "", "", "", "")
			continue
		}
		row(tw, s.Name, s.Type, s.Status, strconv.FormatBool(s.Valid), s.Serial,
			s.NotAfter.UTC().Format(time.RFC3339), s.NotBefore.UTC().Format(time.RFC3339), dash(s.Identity))
	}
	return tw.Flush()
}
