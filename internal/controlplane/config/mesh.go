package config

import (
	"bytes"
	"fmt"
	"os"

	"github.com/golang/protobuf/jsonpb" //nolint:staticcheck // Istio's own MeshConfig decoding: Go durations, Struct fields
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	"sigs.k8s.io/yaml"
)

// DefaultMeshConfig returns Istio's defaults for the MeshConfig fields Lucid uses.
func DefaultMeshConfig() *meshv1alpha1.MeshConfig {
	return &meshv1alpha1.MeshConfig{
		OutboundTrafficPolicy: &meshv1alpha1.MeshConfig_OutboundTrafficPolicy{
			Mode: meshv1alpha1.MeshConfig_OutboundTrafficPolicy_ALLOW_ANY,
		},
		ConnectTimeout:                 durationpb.New(10e9),
		ProtocolDetectionTimeout:       durationpb.New(0),
		DnsRefreshRate:                 durationpb.New(60e9),
		TrustDomain:                    "cluster.local",
		RootNamespace:                  "istio-system",
		IngressClass:                   "istio",
		IngressService:                 "istio-ingressgateway",
		IngressControllerMode:          meshv1alpha1.MeshConfig_STRICT,
		EnableAutoMtls:                 wrapperspb.Bool(true),
		EnablePrometheusMerge:          wrapperspb.Bool(true),
		EnableTracing:                  true,
		AccessLogEncoding:              meshv1alpha1.MeshConfig_TEXT,
		DefaultServiceExportTo:         []string{"*"},
		DefaultVirtualServiceExportTo:  []string{"*"},
		DefaultDestinationRuleExportTo: []string{"*"},
		H2UpgradePolicy:                meshv1alpha1.MeshConfig_DO_NOT_UPGRADE,
		LocalityLbSetting:              &networkingv1alpha3.LocalityLoadBalancerSetting{Enabled: wrapperspb.Bool(true)},
		DefaultConfig: &meshv1alpha1.ProxyConfig{
			ConfigPath:               "./etc/istio/proxy",
			BinaryPath:               "/usr/local/bin/envoy",
			DrainDuration:            durationpb.New(45e9),
			TerminationDrainDuration: durationpb.New(5e9),
			DiscoveryAddress:         "istiod.istio-system.svc:15012",
			ProxyAdminPort:           15000,
			StatusPort:               15020,
			ControlPlaneAuthPolicy:   meshv1alpha1.AuthenticationPolicy_MUTUAL_TLS,
			StatNameLength:           189,
			Concurrency:              wrapperspb.Int32(2),
		},
	}
}

// LoadMeshConfig reads a MeshConfig YAML (the `mesh` key format of Istio's `istio`
// ConfigMap) over Istio's defaults. path "" returns the defaults only. Unknown
// fields are errors.
func LoadMeshConfig(path string) (*meshv1alpha1.MeshConfig, error) {
	mc := DefaultMeshConfig()
	if path == "" {
		return mc, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read mesh config: %w", err)
	}
	if err := applyMeshConfig(mc, data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return mc, nil
}

// applyMeshConfig overlays YAML onto mc: fields present in the YAML replace the
// defaults, defaultConfig is merged field by field as Istio does.
func applyMeshConfig(mc *meshv1alpha1.MeshConfig, data []byte) error {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("malformed YAML: %w", err)
	}
	if len(bytes.TrimSpace(js)) == 0 || string(bytes.TrimSpace(js)) == "null" {
		return nil
	}
	user := &meshv1alpha1.MeshConfig{}
	if err := (&jsonpb.Unmarshaler{}).Unmarshal(bytes.NewReader(js), user); err != nil {
		return fmt.Errorf("invalid mesh config: %w", err)
	}
	defaults := mc.DefaultConfig
	// Replace top-level fields the user set (so lists such as exportTo replace,
	// not append), then merge defaultConfig over the default proxy config.
	userRef := user.ProtoReflect()
	userRef.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		mc.ProtoReflect().Set(fd, v)
		return true
	})
	if user.DefaultConfig != nil {
		merged := proto.Clone(defaults).(*meshv1alpha1.ProxyConfig)
		proto.Merge(merged, user.DefaultConfig)
		mc.DefaultConfig = merged
	}
	return nil
}
