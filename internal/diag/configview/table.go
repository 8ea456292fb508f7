package configview

import (
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// newTable returns istioctl's tab writer: minwidth 0, tabwidth 8, the given padding,
// padded with spaces.
func newTable(w io.Writer, padding int) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, padding, ' ', 0)
}

// row writes cells separated by tabs.
func row(w io.Writer, cells ...string) {
	_, _ = io.WriteString(w, strings.Join(cells, "\t")+"\n")
}

// ParsedName is an Istio cluster name "direction|port|subset|host" split into its parts.
type ParsedName struct {
	Direction, Subset, Host string
	Port                    int
	Istio                   bool // false for other names (BlackHoleCluster, ...)
}

// ParseClusterName splits an Istio cluster name.
func ParseClusterName(name string) ParsedName {
	parts := strings.Split(name, "|")
	if len(parts) != 4 {
		return ParsedName{Host: name}
	}
	port, _ := strconv.Atoi(parts[1])
	return ParsedName{Direction: parts[0], Port: port, Subset: parts[2], Host: parts[3], Istio: true}
}

// configName turns Istio's config metadata path
// "/apis/networking.istio.io/v1/namespaces/<ns>/<kind>/<name>" into "<name>.<ns>".
func configName(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := 0; i+3 < len(parts); i++ {
		if parts[i] == "namespaces" {
			return parts[i+3] + "." + parts[i+1]
		}
	}
	return path
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
