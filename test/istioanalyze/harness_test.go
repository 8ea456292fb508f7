package istioanalyze

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"istio.io/istio/pkg/config/analysis/analyzers"
	"istio.io/istio/pkg/config/analysis/local"
	"istio.io/istio/pkg/config/resource"

	"github.com/lucid-mesh/lucid/internal/controlplane/analyze"
	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// finding is what the differential test compares: a message's code and the object it is
// about, named as istioctl names it ("VirtualService default/reviews").
type finding struct{ code, origin string }

func (f finding) String() string { return f.code + " " + f.origin }

// implemented are the codes `lucid analyze` implements with Istio's semantics: for these,
// Lucid and Istio must report the same objects. Istio's other codes come from analyzers
// of kinds Lucid does not read (EnvoyFilter, Telemetry, ConfigMap, Deployment, webhooks,
// Kubernetes Gateway API) and are listed in notImplemented.
var implemented = map[string]bool{
	"IST0002": true, // Deprecated
	"IST0101": true, // ReferencedResourceNotFound
	"IST0102": true, // NamespaceNotInjected
	"IST0103": true, // PodMissingProxy
	"IST0106": true, // SchemaValidationError
	"IST0109": true, // ConflictingMeshGatewayVirtualServiceHosts
	"IST0110": true, // ConflictingSidecarWorkloadSelectors
	"IST0111": true, // MultipleSidecarsWithoutWorkloadSelectors
	"IST0112": true, // VirtualServiceDestinationPortSelectorRequired
	"IST0118": true, // PortNameIsNotUnderNamingConvention
	"IST0123": true, // NamespaceMultipleInjectionLabels
	"IST0127": true, // NoMatchingWorkloadsFound
	"IST0128": true, // NoServerCertificateVerificationDestinationLevel
	"IST0129": true, // NoServerCertificateVerificationPortLevel
	"IST0130": true, // VirtualServiceUnreachableRule
	"IST0131": true, // VirtualServiceIneffectiveMatch
	"IST0132": true, // VirtualServiceHostNotFoundInGateway
	"IST0133": true, // SchemaWarning
	"IST0134": true, // ServiceEntryAddressesRequired
	"IST0138": true, // GatewayDuplicateCertificate
	"IST0140": true, // IngressRouteRulesNotAffected
	"IST0144": true, // InvalidApplicationUID
	"IST0145": true, // ConflictingGateways
	"IST0149": true, // JwtClaimBasedRoutingWithoutRequestAuthN
	"IST0150": true, // ExternalNameServiceTypeInvalidPortName
	"IST0161": true, // InvalidGatewayCredential
	"IST0162": true, // GatewayPortNotDefinedOnService
	"IST0165": true, // ReferencedInternalGateway
	"IST0167": true, // IneffectivePolicy
	"IST0173": true, // DestinationRuleSubsetNotSelectPods
	"IST0174": true, // UnknownDestinationRuleHost
	"IST0177": true, // ConflictingServiceEntryProtocol
}

// notImplemented are Istio's codes Lucid does not report, with why. A code in neither map
// fails the test: a new Istio analyzer must be looked at.
var notImplemented = map[string]string{
	"IST0001": "an analyzer's internal error",
	"IST0104": "gateway port on workload: Deployments are not read",
	"IST0105": "injector ConfigMaps are not read",
	"IST0107": "annotations: Istio's annotation catalogue is not checked",
	"IST0108": "annotations: Istio's annotation catalogue is not checked",
	"IST0116": "Deployments are not read",
	"IST0122": "Deployments are not read",
	"IST0125": "annotations: Istio's annotation catalogue is not checked",
	"IST0126": "mesh networks are not read",
	"IST0135": "annotations: Istio's annotation catalogue is not checked",
	"IST0136": "annotations: Istio's annotation catalogue is not checked",
	"IST0137": "Deployments are not read",
	"IST0139": "webhook configurations are not read",
	"IST0141": "a cluster's permissions (online only)",
	"IST0142": "a cluster's version (online only)",
	"IST0143": "Deployments are not read",
	"IST0146": "Deployments are not read (image: auto)",
	"IST0147": "Deployments are not read (image: auto)",
	"IST0148": "injector ConfigMaps are not read",
	"IST0151": "EnvoyFilters are not read",
	"IST0152": "EnvoyFilters are not read",
	"IST0153": "EnvoyFilters are not read",
	"IST0154": "EnvoyFilters are not read",
	"IST0155": "EnvoyFilters are not read",
	"IST0156": "Kubernetes Gateway API CRDs are not read",
	"IST0157": "Telemetry is not read",
	"IST0158": "injector ConfigMaps are not read (proxy image)",
	"IST0159": "Telemetry is not read",
	"IST0160": "Telemetry is not read",
	"IST0163": "external control plane webhooks are not read",
	"IST0164": "external control plane webhooks are not read",
	"IST0166": "Kubernetes Gateway API policies are not read",
	"IST0168": "upgrade compatibility (an installation's settings)",
	"IST0169": "upgrade compatibility (an installation's settings)",
	"IST0170": "multi-cluster services are not analysed",
	"IST0171": "status conditions are not read",
	"IST0172": "Kubernetes Gateway API CRDs are not read",
	"IST0175": "an istiod setting (BLOCKED_CIDRS_IN_JWKS_URIS)",
	"IST0176": "Kubernetes Gateway API CRDs are not read",
}

// istio runs Istio's analyzers on files as its own analyzer tests do: the files' objects,
// Kubernetes ones included, then Istio's default ingress gateway, all namespaces.
func istio(t *testing.T, files map[string]string) []finding {
	t.Helper()
	sa := local.NewSourceAnalyzer(analyzers.AllCombined(), "", resource.Namespace("istio-system"), nil)
	var readers []local.ReaderSource
	for _, name := range slices.Sorted(maps.Keys(files)) {
		readers = append(readers, local.ReaderSource{Name: name, Reader: strings.NewReader(files[name])})
	}
	if err := sa.AddTestReaderKubeSource(readers); err != nil {
		t.Fatalf("Istio cannot read the files: %v", err)
	}
	if err := sa.AddDefaultResources(); err != nil {
		t.Fatal(err)
	}
	cancel := make(chan struct{})
	defer close(cancel)
	res, err := sa.Analyze(cancel)
	if err != nil {
		t.Fatal(err)
	}
	var out []finding
	for _, m := range res.Messages {
		origin := ""
		if m.Resource != nil {
			origin = m.Resource.Origin.FriendlyName()
		}
		out = append(out, finding{m.Type.Code(), origin})
	}
	return out
}

// lucid runs `lucid analyze`'s analysis on the same files.
func lucid(t *testing.T, files map[string]string) ([]finding, []analyze.Message) {
	t.Helper()
	var fs []config.File
	for _, name := range slices.Sorted(maps.Keys(files)) {
		fs = append(fs, config.File{Name: name, Data: []byte(files[name])})
	}
	objs, diags := config.ParseFilesWith(fs, config.Analysis)
	res := analyze.Run(objs, diags, analyze.Options{Offline: true})
	var out []finding
	for _, m := range res.Messages {
		out = append(out, finding{m.Code, m.Origin()})
	}
	return out, res.Messages
}

// readKinds are the kinds `lucid analyze` reads; Istio's findings about other kinds
// (EnvoyFilter, Telemetry, Deployment, ConfigMap, webhooks, ...) are not compared.
var readKinds = map[string]bool{
	"VirtualService": true, "DestinationRule": true, "Gateway": true, "ServiceEntry": true, "WorkloadEntry": true,
	"Sidecar": true, "PeerAuthentication": true, "AuthorizationPolicy": true, "RequestAuthentication": true,
	"Service": true, "Pod": true, "Namespace": true, "Secret": true, "Node": true,
}

// compare returns the findings only Istio has and only Lucid has, among the implemented
// codes, and Istio's codes that are in neither list.
func compare(ist, luc []finding) (onlyIstio, onlyLucid []finding, unknown []string) {
	in := func(fs []finding, f finding) bool { return slices.Contains(fs, f) }
	for _, f := range ist {
		kind, _, _ := strings.Cut(f.origin, " ")
		switch {
		case f.origin != "" && !readKinds[kind]:
		case implemented[f.code]:
			if !in(luc, f) && !in(onlyIstio, f) {
				onlyIstio = append(onlyIstio, f)
			}
		case notImplemented[f.code] == "":
			if !slices.Contains(unknown, f.code) {
				unknown = append(unknown, f.code)
			}
		}
	}
	for _, f := range luc {
		if strings.HasPrefix(f.code, "IST") && !in(ist, f) && !in(onlyLucid, f) {
			onlyLucid = append(onlyLucid, f)
		}
	}
	return onlyIstio, onlyLucid, unknown
}

func describe(fs []finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "\n    %s", f)
	}
	return b.String()
}
