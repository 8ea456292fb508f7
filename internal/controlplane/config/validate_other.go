package config

import (
	"strings"
	"time"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"
)

func validateDestinationRule(o *Object, v *validator) {
	dr := o.Spec.(*networkingv1alpha3.DestinationRule)
	switch dr.Host {
	case "":
		v.errorf("spec.host", "host is required")
	case "*":
	default:
		if msg := wildcardDomainError(dr.Host); msg != "" {
			v.errorf("spec.host", "%s", msg)
		}
	}
	v.trafficPolicy("spec.trafficPolicy", dr.TrafficPolicy)
	seen := map[string]bool{}
	for i, s := range dr.Subsets {
		p := idx("spec.subsets", i)
		if s == nil {
			v.errorf(p, "subset may not be null")
			continue
		}
		switch {
		case s.Name == "":
			v.errorf(p+".name", "subset name cannot be empty")
		case seen[s.Name]:
			v.errorf(p+".name", "duplicate subset %q", s.Name)
		case !isDNS1123Label(s.Name):
			v.errorf(p+".name", "subset name is invalid: %s", s.Name)
		}
		seen[s.Name] = true
		v.labels(p+".labels", s.Labels)
		v.trafficPolicy(p+".trafficPolicy", s.TrafficPolicy)
	}
	v.exportTo("spec.exportTo", dr.ExportTo, false, dr.WorkloadSelector != nil)
	if ws := dr.WorkloadSelector; ws != nil {
		v.selectorLabels("spec.workloadSelector.matchLabels", ws.MatchLabels)
	}
}

func (v *validator) trafficPolicy(p string, tp *networkingv1alpha3.TrafficPolicy) {
	if tp == nil {
		return
	}
	if tp.OutlierDetection == nil && tp.ConnectionPool == nil && tp.LoadBalancer == nil && tp.Tls == nil &&
		tp.PortLevelSettings == nil && tp.Tunnel == nil && tp.ProxyProtocol == nil {
		v.errorf(p, "traffic policy must have at least one field")
		return
	}
	if tp.Tunnel != nil && tp.ProxyProtocol != nil {
		v.errorf(p, "tunnel and proxyProtocol must not be set together")
	}
	v.outlierDetection(p+".outlierDetection", tp.OutlierDetection)
	v.connectionPool(p+".connectionPool", tp.ConnectionPool)
	v.loadBalancer(p+".loadBalancer", tp.LoadBalancer)
	for i, pl := range tp.PortLevelSettings {
		pp := idx(p+".portLevelSettings", i)
		if pl == nil {
			v.errorf(pp, "traffic policy may not be null")
			continue
		}
		if pl.Port == nil {
			v.errorf(pp+".port", "portTrafficPolicy must have valid port")
		} else {
			v.port(pp+".port.number", pl.Port.Number)
		}
		if pl.OutlierDetection == nil && pl.ConnectionPool == nil && pl.LoadBalancer == nil && pl.Tls == nil {
			v.errorf(pp, "port traffic policy must have at least one field")
			continue
		}
		v.outlierDetection(pp+".outlierDetection", pl.OutlierDetection)
		v.connectionPool(pp+".connectionPool", pl.ConnectionPool)
		v.loadBalancer(pp+".loadBalancer", pl.LoadBalancer)
	}
}

func (v *validator) outlierDetection(p string, od *networkingv1alpha3.OutlierDetection) {
	if od == nil {
		return
	}
	v.duration(p+".baseEjectionTime", od.BaseEjectionTime, time.Millisecond)
	v.duration(p+".interval", od.Interval, time.Millisecond)
	if od.ConsecutiveErrors != 0 { //nolint:staticcheck // deprecated but accepted
		v.warnf(p+".consecutiveErrors", "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead")
	}
	if !od.SplitExternalLocalOriginErrors && od.ConsecutiveLocalOriginFailures.GetValue() > 0 {
		v.errorf(p+".consecutiveLocalOriginFailures", "outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false")
	}
	v.percent(p+".maxEjectionPercent", od.MaxEjectionPercent)
	v.percent(p+".minHealthPercent", od.MinHealthPercent)
}

func (v *validator) connectionPool(p string, cp *networkingv1alpha3.ConnectionPoolSettings) {
	if cp == nil {
		return
	}
	if cp.Http == nil && cp.Tcp == nil {
		v.errorf(p, "connection pool must have at least one field")
		return
	}
	if h := cp.Http; h != nil {
		hp := p + ".http"
		for _, f := range []struct {
			name string
			val  int32
		}{
			{"http1MaxPendingRequests", h.Http1MaxPendingRequests}, {"http2MaxRequests", h.Http2MaxRequests},
			{"maxRequestsPerConnection", h.MaxRequestsPerConnection}, {"maxRetries", h.MaxRetries},
			{"maxConcurrentStreams", h.MaxConcurrentStreams},
		} {
			if f.val < 0 {
				v.errorf(hp+"."+f.name, "must be non-negative (got %d)", f.val)
			}
		}
		v.duration(hp+".idleTimeout", h.IdleTimeout, time.Millisecond)
		if h.H2UpgradePolicy == networkingv1alpha3.ConnectionPoolSettings_HTTPSettings_UPGRADE && h.UseClientProtocol {
			v.errorf(hp+".useClientProtocol", "use client protocol must not be true when H2UpgradePolicy is UPGRADE")
		}
	}
	if t := cp.Tcp; t != nil {
		tp := p + ".tcp"
		if t.MaxConnections < 0 {
			v.errorf(tp+".maxConnections", "must be non-negative (got %d)", t.MaxConnections)
		}
		v.duration(tp+".connectTimeout", t.ConnectTimeout, time.Millisecond)
		v.duration(tp+".maxConnectionDuration", t.MaxConnectionDuration, time.Millisecond)
		v.duration(tp+".idleTimeout", t.IdleTimeout, time.Millisecond)
		if ka := t.TcpKeepalive; ka != nil {
			v.duration(tp+".tcpKeepalive.time", ka.Time, time.Millisecond)
			v.duration(tp+".tcpKeepalive.interval", ka.Interval, time.Millisecond)
		}
	}
}

func (v *validator) loadBalancer(p string, lb *networkingv1alpha3.LoadBalancerSettings) {
	if lb == nil {
		return
	}
	if ch := lb.GetConsistentHash(); ch != nil {
		cp := p + ".consistentHash"
		if c := ch.GetHttpCookie(); c != nil && c.GetName() == "" {
			v.errorf(cp+".httpCookie.name", "name required for HttpCookie")
		}
		if ch.MinimumRingSize != 0 && ch.GetHashAlgorithm() != nil { //nolint:staticcheck
			v.errorf(cp, "only one of MinimumRingSize or Maglev/Ringhash can be specified")
		}
		if ml := ch.GetMaglev(); ml != nil {
			switch {
			case ml.TableSize == 0:
				v.errorf(cp+".maglev.tableSize", "tableSize must be set for maglev")
			case ml.TableSize >= 5000011:
				v.errorf(cp+".maglev.tableSize", "tableSize must be less than 5000011 for maglev")
			case !isPrime(ml.TableSize):
				v.errorf(cp+".maglev.tableSize", "tableSize must be a prime number for maglev")
			}
		}
	}
	v.duration(p+".warmupDurationSecs", lb.WarmupDurationSecs, time.Millisecond) //nolint:staticcheck // SA1019: Istio still validates the deprecated field
}

func isPrime(x uint64) bool {
	if x < 2 {
		return false
	}
	for f := uint64(2); f*f <= x; f++ {
		if x%f == 0 {
			return false
		}
	}
	return true
}

func validateServiceEntry(o *Object, v *validator) {
	se := o.Spec.(*networkingv1alpha3.ServiceEntry)
	if se.WorkloadSelector != nil {
		v.selectorLabels("spec.workloadSelector.labels", se.WorkloadSelector.Labels)
		if se.Endpoints != nil {
			v.errorf("spec", "only one of workloadSelector or endpoints is allowed in a ServiceEntry")
		}
	}
	if len(se.Hosts) == 0 {
		v.errorf("spec.hosts", "service entry must have at least one host")
	}
	for i, h := range se.Hosts {
		if h == "*" {
			v.errorf(idx("spec.hosts", i), "invalid host %s", h)
		} else if msg := wildcardDomainError(h); msg != "" {
			v.errorf(idx("spec.hosts", i), "%s", msg)
		}
	}
	cidr := false
	for i, a := range se.Addresses {
		cidr = cidr || strings.Contains(a, "/")
		v.subnet(idx("spec.addresses", i), a)
	}
	res := se.Resolution
	if cidr && res != networkingv1alpha3.ServiceEntry_NONE && res != networkingv1alpha3.ServiceEntry_STATIC {
		v.errorf("spec.addresses", "CIDR addresses are allowed only for NONE/STATIC resolution types")
	}
	names := map[string]bool{}
	numbers := map[uint32]bool{}
	for i, port := range se.Ports {
		p := idx("spec.ports", i)
		if port == nil {
			v.errorf(p, "service entry port may not be null")
			continue
		}
		if names[port.Name] {
			v.errorf(p+".name", "service entry port name %q already defined", port.Name)
		}
		if numbers[port.Number] {
			v.errorf(p+".number", "service entry port %d already defined", port.Number)
		}
		names[port.Name], numbers[port.Number] = true, true
		v.portName(p+".name", port.Name)
		v.protocol(p+".protocol", port.Protocol)
		v.port(p+".number", port.Number)
		if port.TargetPort != 0 {
			v.port(p+".targetPort", port.TargetPort)
		}
	}
	switch res {
	case networkingv1alpha3.ServiceEntry_NONE:
		if len(se.Endpoints) != 0 {
			v.errorf("spec.endpoints", "no endpoints should be provided for resolution type none")
		}
		if se.WorkloadSelector != nil {
			v.warnf("spec.workloadSelector", "workloadSelector should not be set when resolution mode is NONE")
		}
	case networkingv1alpha3.ServiceEntry_STATIC:
		for i, ep := range se.Endpoints {
			p := idx("spec.endpoints", i)
			if ep == nil {
				v.errorf(p, "endpoint cannot be null")
				continue
			}
			v.workloadEntry(p, ep, names, false)
		}
	case networkingv1alpha3.ServiceEntry_DNS, networkingv1alpha3.ServiceEntry_DNS_ROUND_ROBIN:
		if len(se.Endpoints) == 0 {
			for i, h := range se.Hosts {
				if fqdnError(h) != "" {
					v.errorf(idx("spec.hosts", i), "hosts must be FQDN if no endpoints are provided for resolution mode %s", res)
				}
			}
		}
		if res == networkingv1alpha3.ServiceEntry_DNS_ROUND_ROBIN && len(se.Endpoints) > 1 {
			v.errorf("spec.endpoints", "there must only be 0 or 1 endpoint for resolution mode %s", res)
		}
		for i, ep := range se.Endpoints {
			p := idx("spec.endpoints", i)
			if ep == nil {
				v.errorf(p, "endpoint cannot be null")
				continue
			}
			v.workloadEntry(p, ep, names, true)
		}
		if se.WorkloadSelector != nil {
			v.warnf("spec.workloadSelector", "workloadSelector should not be set when resolution mode is %s", res)
		}
		v.lucidWarnf("spec.resolution", "resolution %s is accepted, but Lucid resolves endpoints statically only (STATIC and NONE)", res)
	}
	if res != networkingv1alpha3.ServiceEntry_NONE && len(se.Hosts) > 1 {
		for i, port := range se.Ports {
			proto := strings.ToUpper(port.GetProtocol())
			switch proto {
			case "HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTPS", "TLS":
				continue
			}
			v.errorf(idx("spec.ports", i)+".protocol", "multiple hosts provided with non-HTTP, non-TLS ports")
			break
		}
	}
	v.exportTo("spec.exportTo", se.ExportTo, true, false)
}

func validateWorkloadEntry(o *Object, v *validator) {
	v.workloadEntry("spec", o.Spec.(*networkingv1alpha3.WorkloadEntry), nil, true)
}

// workloadEntry checks a WorkloadEntry spec or a ServiceEntry inline endpoint.
// servicePorts (non-nil for endpoints) are the port names the ServiceEntry defines.
func (v *validator) workloadEntry(p string, we *networkingv1alpha3.WorkloadEntry, servicePorts map[string]bool, allowFQDN bool) {
	addr := we.Address
	switch {
	case addr == "" && we.Network == "":
		v.errorf(p+".address", "address is required")
	case addr == "":
		v.warnf(p+".address", "address is unset with network %q", we.Network)
	case strings.HasPrefix(addr, "unix://"):
		if path := strings.TrimPrefix(addr, "unix://"); !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "@") {
			v.errorf(p+".address", "%s is not an absolute path to a file", path)
		}
		if len(we.Ports) != 0 {
			v.errorf(p+".ports", "unix endpoint %s must not include ports", addr)
		}
	case isIP(addr):
	case !allowFQDN:
		v.errorf(p+".address", "endpoint address %q is not a valid IP address", addr)
	case fqdnError(addr) != "":
		v.errorf(p+".address", "endpoint address %q is not a valid FQDN or an IP address", addr)
	}
	for _, name := range sortedKeys(we.Ports) {
		pp := key(p+".ports", name)
		if servicePorts != nil && !servicePorts[name] {
			v.errorf(pp, "endpoint port %d is not defined by the service entry", we.Ports[name])
		}
		v.portName(pp, name)
		v.port(pp, we.Ports[name])
	}
	v.labels(p+".labels", we.Labels)
	if we.ServiceAccount != "" && !isDNS1123Subdomain(we.ServiceAccount) {
		v.errorf(p+".serviceAccount", "invalid service account name %q", we.ServiceAccount)
	}
}

// namespacedHost checks "host" or "namespace/host" as used by Gateway servers and
// Sidecar egress ("*/*", "./foo.com", "ns/*.example.com").
func (v *validator) namespacedHost(p, h string) {
	ns, host, ok := strings.Cut(h, "/")
	if !ok {
		host = ns
	} else if ns != "." && ns != "*" && ns != "~" && !isDNS1123Label(ns) {
		v.errorf(p, "invalid namespace %q in host %q", ns, h)
		return
	}
	if host == "*" {
		return
	}
	if msg := wildcardDomainError(host); msg != "" {
		v.errorf(p, "%s", msg)
	}
}

func validateSidecar(o *Object, v *validator) {
	sc := o.Spec.(*networkingv1alpha3.Sidecar)
	if sc.WorkloadSelector != nil {
		v.selectorLabels("spec.workloadSelector.labels", sc.WorkloadSelector.Labels)
	}
	if len(sc.Egress) == 0 && len(sc.Ingress) == 0 && sc.OutboundTrafficPolicy == nil && sc.InboundConnectionPool == nil {
		v.errorf("spec", "sidecar: empty configuration provided")
	}
	ports := map[uint32]bool{}
	for i, in := range sc.Ingress {
		p := idx("spec.ingress", i)
		if in == nil || in.Port == nil {
			v.errorf(p+".port", "sidecar: port is required for ingress listeners")
			continue
		}
		v.port(p+".port.number", in.Port.Number)
		v.protocol(p+".port.protocol", in.Port.Protocol)
		if ports[in.Port.Number] {
			v.errorf(p+".port.number", "sidecar: ports on IP bound listeners must be unique")
		}
		ports[in.Port.Number] = true
		v.connectionPool(p+".connectionPool", in.ConnectionPool)
	}
	v.connectionPool("spec.inboundConnectionPool", sc.InboundConnectionPool)
	ports = map[uint32]bool{}
	for i, eg := range sc.Egress {
		p := idx("spec.egress", i)
		if eg == nil {
			v.errorf(p, "egress listener may not be null")
			continue
		}
		if eg.Port == nil && i != len(sc.Egress)-1 {
			v.errorf(p+".port", "sidecar: the egress listener with empty port should be the last listener in the list")
		}
		if eg.Port != nil && eg.Port.Number != 0 {
			v.port(p+".port.number", eg.Port.Number)
			v.protocol(p+".port.protocol", eg.Port.Protocol)
			if ports[eg.Port.Number] {
				v.errorf(p+".port.number", "sidecar: ports on IP bound listeners must be unique")
			}
			ports[eg.Port.Number] = true
		}
		if len(eg.Hosts) == 0 {
			v.errorf(p+".hosts", "sidecar: egress listener must contain at least one host")
		}
		for j, h := range eg.Hosts {
			if !strings.Contains(h, "/") {
				v.errorf(idx(p+".hosts", j), "sidecar: egress host %q must be of the form namespace/dnsName", h)
				continue
			}
			v.namespacedHost(idx(p+".hosts", j), h)
		}
	}
}

func validatePeerAuthentication(o *Object, v *validator) {
	pa := o.Spec.(*securityv1beta1.PeerAuthentication)
	if pa.Selector != nil {
		v.selectorLabels("spec.selector.matchLabels", pa.Selector.MatchLabels)
	}
	if pa.Selector == nil && len(pa.PortLevelMtls) > 0 {
		v.errorf("spec.portLevelMtls", "portLevelMtls requires a workload selector")
	}
	for _, port := range sortedPorts(pa.PortLevelMtls) {
		if port == 0 {
			v.errorf("spec.portLevelMtls", "port must be in the range 1..65535")
		}
	}
}

func sortedPorts[V any](m map[uint32]V) []uint32 {
	out := make([]uint32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func validateAuthorizationPolicy(o *Object, v *validator) {
	ap := o.Spec.(*securityv1beta1.AuthorizationPolicy)
	if ap.Selector != nil {
		v.selectorLabels("spec.selector.matchLabels", ap.Selector.MatchLabels)
		if ap.TargetRef != nil || len(ap.TargetRefs) > 0 {
			v.errorf("spec", "only one of targetRefs or workloadSelector can be set")
		}
	}
	switch ap.Action {
	case securityv1beta1.AuthorizationPolicy_CUSTOM:
		if ap.Rules == nil {
			v.errorf("spec.rules", "CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request")
		} else if ap.GetProvider().GetName() == "" {
			v.errorf("spec.provider.name", "`provider.name` must not be empty")
		}
	case securityv1beta1.AuthorizationPolicy_DENY:
		if ap.Rules == nil {
			v.errorf("spec.rules", "DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request")
		}
	}
	if ap.GetProvider() != nil && ap.Action != securityv1beta1.AuthorizationPolicy_CUSTOM {
		v.errorf("spec.provider", "`provider` must not be with non CUSTOM action, found %s", ap.Action)
	}
	for i, r := range ap.Rules {
		p := idx("spec.rules", i)
		if r == nil {
			v.errorf(p, "`rule` must not be nil")
			continue
		}
		if r.From != nil && len(r.From) == 0 {
			v.errorf(p+".from", "`from` must not be empty")
		}
		if r.To != nil && len(r.To) == 0 {
			v.errorf(p+".to", "`to` must not be empty")
		}
		for j, w := range r.When {
			wp := idx(p+".when", j)
			if w.GetKey() == "" {
				v.errorf(wp+".key", "`key` must not be empty")
			}
			if len(w.GetValues()) == 0 && len(w.GetNotValues()) == 0 {
				v.errorf(wp, "at least one of `values` or `notValues` must be set for key %s", w.GetKey())
			}
		}
	}
}
