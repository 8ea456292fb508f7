// Package istioanalyze checks Lucid against Istio's own code, run as a library:
//
//   - `lucid analyze` against Istio's analyzers (istio.io/istio/pkg/config/analysis): the
//     same (code, object) pairs on a table of cases and on the input files of Istio's own
//     analyzer tests (TestAnalyzeParity, TestAnalyzeParityIstioTestdata);
//   - Lucid's validation against Istio's validation functions
//     (istio.io/istio/pkg/config/validation): the same verdict, and the same warnings, on a
//     generated corpus of valid and invalid objects (TestValidationParity,
//     TestValidationWarningParity).
//
// It is a separate module so that the main module does not depend on istio.io/istio; run it
// with `cd test/istioanalyze && go test ./...` (make test-istioanalyze, part of make test).
package istioanalyze
