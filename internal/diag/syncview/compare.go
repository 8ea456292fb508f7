package syncview

import (
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/diag/inspect"
	"github.com/lucid-mesh/lucid/internal/diag/textdiff"
)

// Compare prints, per type, whether what the control plane would send (want) equals what
// the proxy applied (got), istioctl's "Clusters Match" lines, or a unified diff of the
// resources (each rendered as indented JSON, sorted by name). It reports whether all match.
func Compare(w io.Writer, want, got *inspect.Dump, proxyName string) (bool, error) {
	type section struct {
		title, kind string
		want, got   string
		loaded      time.Time
	}
	var secs []section
	add := func(title, kind string, w, g string, loaded time.Time) {
		secs = append(secs, section{title, kind, w, g, loaded})
	}
	wc, err1 := render(want.Clusters)
	gc, err2 := render(got.Clusters)
	add("Clusters", contract.CDS, wc, gc, newest(got.Clusters))
	wl, err3 := render(want.Listeners)
	gl, err4 := render(got.Listeners)
	add("Listeners", contract.LDS, wl, gl, newest(got.Listeners))
	wr, err5 := render(want.Routes)
	gr, err6 := render(got.Routes)
	add("Routes", contract.RDS, wr, gr, newest(got.Routes))
	if got.HasEDS {
		we, err7 := render(want.Endpoints)
		ge, err8 := render(got.Endpoints)
		if err := firstErr(err7, err8); err != nil {
			return false, err
		}
		add("Endpoints", contract.EDS, we, ge, newest(got.Endpoints))
	}
	if err := firstErr(err1, err2, err3, err4, err5, err6); err != nil {
		return false, err
	}
	all := true
	var b strings.Builder
	for _, s := range secs {
		loaded := ""
		if !s.loaded.IsZero() {
			loaded = fmt.Sprintf(" (%s last loaded at %s)", s.kind, s.loaded.UTC().Format(time.RFC1123))
		}
		d := textdiff.Unified(s.title+" the control plane would send", s.title+" "+proxyName+" applied", s.want, s.got, 3)
		if d == "" {
			fmt.Fprintf(&b, "%s Match%s\n", s.title, loaded)
			continue
		}
		all = false
		fmt.Fprintf(&b, "%s Don't Match%s\n%s\n", s.title, loaded, d)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return false, fmt.Errorf("syncview: %w", err)
	}
	return all, nil
}

func render[T proto.Message](es []inspect.Entry[T]) (string, error) {
	var b strings.Builder
	for _, e := range es {
		js, err := inspect.ResourceJSON(e.Resource)
		if err != nil {
			return "", err
		}
		b.Write(js)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

func newest[T proto.Message](es []inspect.Entry[T]) time.Time {
	var t time.Time
	for _, e := range es {
		if e.LastUpdated.After(t) {
			t = e.LastUpdated
		}
	}
	return t
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
