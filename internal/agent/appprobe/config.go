package appprobe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// EnvName is the environment variable the injector writes the original probes into.
const EnvName = "ISTIO_KUBE_APP_PROBERS"

// pathPattern is the form every key of ISTIO_KUBE_APP_PROBERS must have.
const pathPattern = `^/(app-health|app-lifecycle)/[^/]+/(livez|readyz|startupz|prestopz|poststartz)$`

var pathRE = regexp.MustCompile(pathPattern)

// Config is the parsed ISTIO_KUBE_APP_PROBERS: the original probe per status-server path
// ("/app-health/<container>/livez", ...).
type Config map[string]*Prober

// Prober is one original Kubernetes probe (or lifecycle handler), as Istio's injector
// writes it: exactly one of HTTPGet, TCPSocket and GRPC is set.
type Prober struct {
	HTTPGet        *HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket      *TCPSocketAction `json:"tcpSocket,omitempty"`
	GRPC           *GRPCAction      `json:"grpc,omitempty"`
	TimeoutSeconds int32            `json:"timeoutSeconds,omitempty"` // 0: no timeout
}

// HTTPGetAction is corev1.HTTPGetAction's JSON. Host is accepted but ignored, as Istio
// does: the probe always goes to the workload's address. HTTPHeaders are not read either:
// the kubelet sends them to the status server and they are passed on from there.
type HTTPGetAction struct {
	Path        string       `json:"path,omitempty"`
	Port        IntOrString  `json:"port"`
	Host        string       `json:"host,omitempty"`
	Scheme      string       `json:"scheme,omitempty"` // "HTTP" (default) or "HTTPS"
	HTTPHeaders []HTTPHeader `json:"httpHeaders,omitempty"`
}

// HTTPHeader is corev1.HTTPHeader.
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TCPSocketAction is corev1.TCPSocketAction's JSON.
type TCPSocketAction struct {
	Port IntOrString `json:"port"`
	Host string      `json:"host,omitempty"`
}

// GRPCAction is corev1.GRPCAction's JSON; a nil Service means "" (the server's overall health).
type GRPCAction struct {
	Port    int32   `json:"port"`
	Service *string `json:"service"`
}

// IntOrString is a port as Kubernetes writes it: a number, or a name (which the injector
// resolves before writing the env var, so a name here is an error).
type IntOrString struct {
	IsString bool
	Int      int32
	Str      string
}

// UnmarshalJSON accepts a JSON number or string.
func (v *IntOrString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		v.IsString = true
		return json.Unmarshal(b, &v.Str)
	}
	v.IsString = false
	return json.Unmarshal(b, &v.Int)
}

// MarshalJSON writes the number or the string.
func (v IntOrString) MarshalJSON() ([]byte, error) {
	if v.IsString {
		return json.Marshal(v.Str)
	}
	return json.Marshal(v.Int)
}

func (v IntOrString) String() string {
	if v.IsString {
		return strconv.Quote(v.Str)
	}
	return strconv.Itoa(int(v.Int))
}

// Parse reads ISTIO_KUBE_APP_PROBERS (an empty string means no probers) and validates
// every entry as Istio's agent does at start, naming the key and the field at fault.
func Parse(s string) (Config, error) {
	cfg := Config{}
	if strings.TrimSpace(s) == "" {
		return cfg, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("%s: failed to decode app prober: %w", EnvName, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: failed to decode app prober: trailing data after the JSON object", EnvName)
	}
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		if err := validate(k, cfg[k]); err != nil {
			errs = append(errs, fmt.Errorf("%s: key %q: %w", EnvName, k, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

func validate(path string, p *Prober) error {
	if !pathRE.MatchString(path) {
		return fmt.Errorf("invalid path, must be in form of regex pattern %s", pathPattern)
	}
	n := 0
	if p != nil {
		for _, set := range []bool{p.HTTPGet != nil, p.TCPSocket != nil, p.GRPC != nil} {
			if set {
				n++
			}
		}
	}
	if n != 1 {
		return errors.New("invalid prober type, must be one of type httpGet, tcpSocket or gRPC")
	}
	if p.TimeoutSeconds < 0 {
		return fmt.Errorf("timeoutSeconds: %d is negative", p.TimeoutSeconds)
	}
	switch {
	case p.HTTPGet != nil:
		if err := checkPort("httpGet.port", p.HTTPGet.Port, path); err != nil {
			return err
		}
		switch p.HTTPGet.Scheme {
		case "", "HTTP", "HTTPS", "http", "https":
		default:
			return fmt.Errorf("httpGet.scheme: %q is neither HTTP nor HTTPS", p.HTTPGet.Scheme)
		}
	case p.TCPSocket != nil:
		return checkPort("tcpSocket.port", p.TCPSocket.Port, path)
	case p.GRPC != nil:
		if p.GRPC.Port <= 0 || p.GRPC.Port > 65535 {
			return fmt.Errorf("grpc.port: %d is not a port number (1-65535)", p.GRPC.Port)
		}
	}
	return nil
}

func checkPort(field string, v IntOrString, path string) error {
	if v.IsString {
		return fmt.Errorf("%s: invalid prober config for %v, the port must be int type", field, path)
	}
	if v.Int <= 0 || v.Int > 65535 {
		return fmt.Errorf("%s: %d is not a port number (1-65535)", field, v.Int)
	}
	return nil
}

// Split returns the container and the probe ("livez", "readyz", "startupz", "prestopz",
// "poststartz") a valid path names.
func Split(path string) (container, probe string) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) != 3 {
		return "", ""
	}
	return parts[1], parts[2]
}

// port returns the probe's target port.
func (p *Prober) port() int {
	switch {
	case p.HTTPGet != nil:
		return int(p.HTTPGet.Port.Int)
	case p.TCPSocket != nil:
		return int(p.TCPSocket.Port.Int)
	case p.GRPC != nil:
		return int(p.GRPC.Port)
	}
	return 0
}
