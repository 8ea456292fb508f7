package install

import (
	"bytes"
	"compress/gzip"
	_ "embed" // the Istio CRDs
	"fmt"
	"io"
)

// The Istio CRDs: istio.io/api's kubernetes/customresourcedefinitions.gen.yaml, at the
// version go.mod requires, gzipped into this package so that `go build` from a clean clone
// needs nothing else. Regenerate after changing istio.io/api's version (TestCRDsMatchModule
// fails until then):
//
//go:generate sh -c "gzip -9 -n -c \"$(go list -m -f '{{.Dir}}' istio.io/api)/kubernetes/customresourcedefinitions.gen.yaml\" > crds.gen.yaml.gz"
//go:embed crds.gen.yaml.gz
var crdsGzip []byte

// CRDs returns the Istio CustomResourceDefinitions as a multi-document YAML stream.
func CRDs() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(crdsGzip))
	if err != nil {
		return nil, fmt.Errorf("install: embedded CRDs: %w", err)
	}
	defer zr.Close()
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("install: embedded CRDs: %w", err)
	}
	return b, nil
}
