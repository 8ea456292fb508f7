// Package istioanalyze checks `lucid analyze` and Lucid's validation against Istio's own code.
package istioanalyze
