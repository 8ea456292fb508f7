package config

import (
	"fmt"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

func validateDestinationRule(o *Object, v *validator) {
	dr := o.Spec.(*networkingv1alpha3.DestinationRule)
	if msg := wildcardDomainError(dr.Host); msg != "" {
		v.errorf("spec.host", "%s", msg)
	}
	v.trafficPolicy("spec.trafficPolicy", dr.TrafficPolicy)
	seen := map[string]bool{}
	for i, s := range dr.Subsets {
		p := idx("spec.subsets", i)
		if s == nil {
			v.errorf(p, "subset may not be null")
			continue
		}
		if seen[s.Name] {
			v.errorf(p+".name", "duplicate subset %q", s.Name)
		}
		seen[s.Name] = true
		switch {
		case s.Name == "":
			v.errorf(p+".name", "subset name cannot be empty")
		case !isDNS1123LabelAnyCase(s.Name):
			v.errorf(p+".name", "subset name is invalid: %s", s.Name)
		}
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
		tp.PortLevelSettings == nil && tp.Tunnel == nil && tp.ProxyProtocol == nil && tp.RetryBudget == nil {
		v.errorf(p, "traffic policy must have at least one field")
		return
	}
	if tp.Tunnel != nil && tp.ProxyProtocol != nil {
		v.errorf(p, "tunnel and proxyProtocol must not be set together")
		return
	}
	v.outlierDetection(p+".outlierDetection", tp.OutlierDetection)
	v.connectionPool(p+".connectionPool", tp.ConnectionPool)
	v.loadBalancer(p+".loadBalancer", tp.LoadBalancer, tp.OutlierDetection)
	v.clientTLS(p+".tls", tp.Tls)
	for i, pl := range tp.PortLevelSettings {
		pp := idx(p+".portLevelSettings", i)
		if pl == nil {
			v.errorf(pp, "traffic policy may not be null")
			continue
		}
		if pl.Port == nil {
			v.errorf(pp+".port", "portTrafficPolicy must have valid port")
		}
		if pl.OutlierDetection == nil && pl.ConnectionPool == nil && pl.LoadBalancer == nil && pl.Tls == nil {
			v.errorf(pp, "port traffic policy must have at least one field")
			continue
		}
		v.outlierDetection(pp+".outlierDetection", pl.OutlierDetection)
		v.connectionPool(pp+".connectionPool", pl.ConnectionPool)
		v.loadBalancer(pp+".loadBalancer", pl.LoadBalancer, pl.OutlierDetection)
		v.clientTLS(pp+".tls", pl.Tls)
	}
	if t := tp.Tunnel; t != nil {
		if t.Protocol != "" && t.Protocol != "CONNECT" && t.Protocol != "POST" {
			v.errorf(p+".tunnel.protocol", `tunnel protocol must be "CONNECT" or "POST"`)
		}
		if fqdnError(t.TargetHost) != "" && !isIP(t.TargetHost) {
			v.errorf(p+".tunnel.targetHost", "tunnel target host must be valid FQDN or IP address: %q", t.TargetHost)
		}
		v.port(p+".tunnel.targetPort", t.TargetPort)
	}
	if pp := tp.ProxyProtocol; pp != nil && pp.Version != 0 && pp.Version != 1 {
		v.errorf(p+".proxyProtocol.version", "proxy protocol version is invalid: %d", pp.Version)
	}
}

func (v *validator) outlierDetection(p string, od *networkingv1alpha3.OutlierDetection) {
	if od == nil {
		return
	}
	v.duration(p+".baseEjectionTime", od.BaseEjectionTime)
	v.duration(p+".interval", od.Interval)
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
		v.duration(hp+".idleTimeout", h.IdleTimeout)
		if h.H2UpgradePolicy == networkingv1alpha3.ConnectionPoolSettings_HTTPSettings_UPGRADE && h.UseClientProtocol {
			v.errorf(hp+".useClientProtocol", "use client protocol must not be true when H2UpgradePolicy is UPGRADE")
		}
		if ka := h.Http2KeepAlive; ka != nil {
			if ka.Interval == nil {
				v.errorf(hp+".http2KeepAlive.interval", "http2 keepalive interval is required")
			}
			if ka.Timeout == nil {
				v.errorf(hp+".http2KeepAlive.timeout", "http2 keepalive timeout is required")
			}
			v.duration(hp+".http2KeepAlive.interval", ka.Interval)
			v.duration(hp+".http2KeepAlive.timeout", ka.Timeout)
		}
	}
	if t := cp.Tcp; t != nil {
		tp := p + ".tcp"
		if t.MaxConnections < 0 {
			v.errorf(tp+".maxConnections", "must be non-negative (got %d)", t.MaxConnections)
		}
		v.duration(tp+".connectTimeout", t.ConnectTimeout)
		v.duration(tp+".maxConnectionDuration", t.MaxConnectionDuration)
		if t.IdleTimeout.AsDuration().Milliseconds() != 0 { // 0s disables the timeout
			v.duration(tp+".idleTimeout", t.IdleTimeout)
		}
		if ka := t.TcpKeepalive; ka != nil {
			v.duration(tp+".tcpKeepalive.time", ka.Time)
			v.duration(tp+".tcpKeepalive.interval", ka.Interval)
		}
	}
}

func (v *validator) loadBalancer(p string, lb *networkingv1alpha3.LoadBalancerSettings, od *networkingv1alpha3.OutlierDetection) {
	if lb == nil {
		return
	}
	if ch := lb.GetConsistentHash(); ch != nil {
		cp := p + ".consistentHash"
		if c := ch.GetHttpCookie(); c != nil {
			if c.GetName() == "" {
				v.errorf(cp+".httpCookie.name", "name required for HttpCookie")
			}
			seen := map[string]bool{}
			for i, a := range c.GetAttributes() {
				switch {
				case a.GetName() == "":
					v.errorf(idx(cp+".httpCookie.attributes", i)+".name", "cookie attribute name cannot be empty")
				case seen[a.GetName()]:
					v.errorf(idx(cp+".httpCookie.attributes", i)+".name", "duplicate cookie attribute name: %s", a.GetName())
				}
				seen[a.GetName()] = true
			}
		}
		if ch.MinimumRingSize != 0 { //nolint:staticcheck // deprecated, still validated by Istio
			v.warnf(cp+".minimumRingSize", "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead")
			if ch.GetHashAlgorithm() != nil {
				v.errorf(cp, "only one of MinimumRingSize or Maglev/Ringhash can be specified")
			}
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
	if lb.LocalityLbSetting != nil && lb.ZoneAwareLbSetting != nil {
		v.errorf(p, "only one of localityLbSetting and zoneAwareLbSetting can be set")
	}
	v.localityLB(p+".localityLbSetting", lb.LocalityLbSetting, od)
	v.zoneAwareLB(p+".zoneAwareLbSetting", lb.ZoneAwareLbSetting, od)
	if w := lb.Warmup; w != nil {
		if w.Duration == nil {
			v.errorf(p+".warmup.duration", "duration is required")
		}
		v.duration(p+".warmup.duration", w.Duration)
		if w.MinimumPercent.GetValue() > 100 {
			v.errorf(p+".warmup.minimumPercent", "minimumPercent value should be less than or equal to 100")
		}
		if w.Aggression != nil && w.Aggression.GetValue() <= 0 {
			v.errorf(p+".warmup.aggression", "aggression should be greater than 0")
		}
	}
}

// topologyLabels are the locality labels failoverPriority may not name with failover
// (locality LB) or at all (zone-aware LB).
var topologyLabels = map[string]bool{"topology.kubernetes.io/region": true, "topology.kubernetes.io/zone": true, "topology.istio.io/subzone": true}

func (v *validator) localityLB(p string, lb *networkingv1alpha3.LocalityLoadBalancerSetting, od *networkingv1alpha3.OutlierDetection) {
	if lb == nil {
		return
	}
	if len(lb.Distribute) > 0 && len(lb.Failover) > 0 {
		v.errorf(p, "can not simultaneously specify 'distribute' and 'failover'")
		return
	}
	if len(lb.Failover) > 0 {
		for _, l := range lb.FailoverPriority {
			if topologyLabels[l] {
				v.errorf(p+".failoverPriority", "can not simultaneously set 'failover' and topology label '%s' in 'failover_priority'", l)
				return
			}
		}
	}
	var from []string
	for i, d := range lb.Distribute {
		dp := idx(p+".distribute", i)
		from = append(from, d.From)
		total := uint32(0)
		for _, loc := range sortedKeys(d.To) {
			if w := d.To[loc]; w == 0 || w > 100 {
				v.errorf(key(dp+".to", loc), "locality weight must be in range [1, 100]")
				return
			}
			total += d.To[loc]
		}
		if total != 100 {
			v.errorf(dp+".to", "total locality weight %d != 100", total)
			return
		}
		if msg := localitiesError(sortedKeys(d.To)); msg != "" {
			v.errorf(dp+".to", "%s", msg)
		}
	}
	if msg := localitiesError(from); msg != "" {
		v.errorf(p+".distribute", "%s", msg)
	}
	if (len(lb.Failover) > 0 || len(lb.FailoverPriority) > 0) && od == nil {
		v.warnf(p, "outlier detection policy must be provided for failover")
	}
	failover(v, p, "locality lb failover", lb.Failover, "only specify region")
}

func (v *validator) zoneAwareLB(p string, lb *networkingv1alpha3.ZoneAwareLoadBalancerSetting, od *networkingv1alpha3.OutlierDetection) {
	if lb == nil {
		return
	}
	for _, l := range lb.FailoverPriority {
		if topologyLabels[l] {
			v.errorf(p+".failoverPriority", "'failover_priority' for zone aware lb must not use topology label '%s'; region- and zone-level routing are handled automatically", l)
		}
	}
	if (len(lb.Failover) > 0 || len(lb.FailoverPriority) > 0) && od == nil {
		v.warnf(p, "outlier detection policy must be provided for failover")
	}
	failover(v, p, "zone aware lb failover", lb.Failover, "only specifies region; zone and subzone failover are handled automatically")
}

// failover checks failover pairs: two different regions, without zones or wildcards.
func failover[F interface {
	GetFrom() string
	GetTo() string
}](v *validator, p, what string, fs []F, regionOnly string) {
	for i, f := range fs {
		fp := idx(p+".failover", i)
		from, to := f.GetFrom(), f.GetTo()
		if from == to {
			v.errorf(fp, "%s settings must specify different regions", what)
		}
		if strings.Contains(from, "/") || strings.Contains(to, "/") {
			v.errorf(fp, "%s %s", what, regionOnly)
		}
		if strings.Contains(from, "*") || strings.Contains(to, "*") {
			v.errorf(fp, "%s region should not contain '*' wildcard", what)
		}
	}
}

// localitiesError checks region[/zone[/subzone]] localities: a trailing "*" at most, no
// empty parts, no overlaps.
func localitiesError(localities []string) string {
	type zoneSet map[string]map[string]bool // zone → subzones ("*" for all)
	regions := map[string]zoneSet{}
	for _, loc := range localities {
		if n := strings.Count(loc, "*"); n > 1 || n == 1 && !strings.HasSuffix(loc, "*") {
			return fmt.Sprintf("locality %s wildcard '*' number can not exceed 1 and must be in the end", loc)
		}
		if _, all := regions["*"]; all {
			return fmt.Sprintf("locality %s overlap with previous specified ones", loc)
		}
		parts := strings.Split(loc, "/")
		if len(parts) > 3 || slices.Contains(parts, "") {
			return fmt.Sprintf("locality %s must not contain empty region/zone/subzone info", loc)
		}
		overlap := fmt.Sprintf("locality %s overlap with previous specified ones", loc)
		region := parts[0]
		zones, seen := regions[region]
		switch {
		case len(parts) == 1 || parts[1] == "*":
			if seen {
				return overlap
			}
			regions[region] = zoneSet{"*": {"*": true}}
		case len(parts) == 2 || parts[2] == "*":
			if seen && (zones["*"] != nil || zones[parts[1]] != nil) {
				return overlap
			}
			if !seen {
				regions[region] = zoneSet{}
			}
			regions[region][parts[1]] = map[string]bool{"*": true}
		default:
			if seen && zones["*"] != nil {
				return overlap
			}
			if !seen {
				regions[region] = zoneSet{}
			}
			subs := regions[region][parts[1]]
			if subs["*"] || subs[parts[2]] {
				return overlap
			}
			if subs == nil {
				subs = map[string]bool{}
				regions[region][parts[1]] = subs
			}
			subs[parts[2]] = true
		}
	}
	return ""
}

// clientTLS checks a DestinationRule's TLS origination settings.
func (v *validator) clientTLS(p string, t *networkingv1alpha3.ClientTLSSettings) {
	if t == nil {
		return
	}
	if strings.HasPrefix(t.CredentialName, "configmap://") {
		ns, _, ok := strings.Cut(strings.TrimPrefix(t.CredentialName, "configmap://"), "/")
		if !ok || ns != v.ns {
			v.errorf(p+".credentialName", "invalid configmap:// credentialName: namespace must match the configuration namespace %q", v.ns)
		}
	}
	simple, mutual := t.Mode == networkingv1alpha3.ClientTLSSettings_SIMPLE, t.Mode == networkingv1alpha3.ClientTLSSettings_MUTUAL
	if t.InsecureSkipVerify.GetValue() {
		if simple && (t.CaCertificates != "" || t.CredentialName != "" || t.SubjectAltNames != nil) {
			v.errorf(p+".insecureSkipVerify", "cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true")
		}
		if mutual && (t.CaCertificates != "" || t.SubjectAltNames != nil) {
			v.errorf(p+".insecureSkipVerify", "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true")
		}
	}
	if (simple || mutual) && t.CredentialName != "" {
		if t.ClientCertificate != "" || t.CaCertificates != "" || t.PrivateKey != "" || t.CaCrl != "" {
			v.errorf(p+".credentialName", "cannot specify client certificates or CA certificate or CA CRL If credentialName is set")
		}
		return
	}
	if mutual {
		if t.ClientCertificate == "" {
			v.errorf(p+".clientCertificate", "client certificate required for mutual tls")
		}
		if t.PrivateKey == "" {
			v.errorf(p+".privateKey", "private key required for mutual tls")
		}
	}
}

// isPrime is Envoy's (and Istio's) test for a Maglev table size: 1, 2 and 3 count as prime.
func isPrime(x uint64) bool {
	if x != 0 && x < 4 {
		return true
	}
	if x%2 == 0 {
		return false
	}
	for f := uint64(3); f*f <= x; f += 2 {
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
		switch {
		case h == "*":
			v.errorf(idx("spec.hosts", i), "invalid host %s", h)
		case wildcardDomainError(h) != "":
			v.errorf(idx("spec.hosts", i), "%s", wildcardDomainError(h))
		case se.Resolution != networkingv1alpha3.ServiceEntry_DYNAMIC_DNS && strings.Contains(h, "*") && !strings.HasPrefix(h, "*."):
			v.warnf(idx("spec.hosts", i), "partial wildcard %q not allowed", h)
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
	// Istio allocates a virtual IP unless resolution is NONE or the label opts out.
	autoAllocate := res != networkingv1alpha3.ServiceEntry_NONE && !strings.EqualFold(o.Labels["networking.istio.io/enable-autoallocate-ip"], "false")
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
		if len(se.Addresses) == 0 && !autoAllocate && (port.Protocol == "" || port.Protocol == "TCP") {
			v.warnf(p+".protocol", "addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is not enabled")
		}
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
			if !isIP(ep.Address) && fqdnError(ep.Address) != "" {
				v.errorf(p+".address", "endpoint address %q is not a valid FQDN or an IP address", ep.Address)
			}
			v.labels(p+".labels", ep.Labels)
			for _, name := range sortedKeys(ep.Ports) {
				pp := key(p+".ports", name)
				if !names[name] {
					v.errorf(pp, "endpoint port %d is not defined by the service entry", ep.Ports[name])
				}
				v.portName(pp, name)
				v.port(pp, ep.Ports[name])
			}
		}
		v.lucidWarnf("spec.resolution", "resolution %s is accepted, but Lucid resolves endpoints statically only (STATIC and NONE)", res)
	case networkingv1alpha3.ServiceEntry_DYNAMIC_DNS:
		for i, h := range se.Hosts {
			if !strings.HasPrefix(h, "*") {
				v.errorf(idx("spec.hosts", i), "host must be wildcarded for resolution mode %s", res)
			}
		}
		if len(se.Addresses) != 0 {
			v.errorf("spec.addresses", "addresses cannot be set for resolution type %s", res)
		}
		if len(se.Endpoints) != 0 {
			v.errorf("spec.endpoints", "endpoints cannot be set for resolution type %s", res)
		}
		for i, port := range se.Ports {
			switch strings.ToUpper(port.GetProtocol()) {
			case "HTTP", "TLS", "GRPC", "HTTP2":
			default:
				v.errorf(idx("spec.ports", i)+".protocol", "only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type %s", res)
			}
		}
		if l := o.Labels["istio.io/use-waypoint"]; se.Location == networkingv1alpha3.ServiceEntry_MESH_INTERNAL && l != "" && !strings.EqualFold(l, "none") {
			v.errorf("spec.location", "location MESH_INTERNAL with resolution type %s is not supported when using waypoints", res)
		}
		v.lucidWarnf("spec.resolution", "resolution %s is accepted, but Lucid resolves endpoints statically only (STATIC and NONE)", res)
	default:
		v.errorf("spec.resolution", "unsupported resolution type %s", res)
	}
	if res != networkingv1alpha3.ServiceEntry_NONE && len(se.Hosts) > 1 {
		for i, port := range se.Ports {
			if port == nil {
				continue
			}
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
	v.proxyConfigAnnotation(o) // validate_proxyconfig.go
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
		if msg := unixAddressError(strings.TrimPrefix(addr, "unix://")); msg != "" {
			v.errorf(p+".address", "%s", msg)
		}
		if len(we.Ports) != 0 {
			v.errorf(p+".ports", "unix endpoint %s must not include ports", addr)
		}
		if servicePorts != nil && len(servicePorts) != 1 {
			v.errorf(p+".address", "exactly 1 service port required for unix endpoints")
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
}

// namespacedHost checks a Gateway server host ("host" or "namespace/host") or a Sidecar
// egress host ("namespace/host") as Istio's ValidateNamespaceSlashWildcardHostname does:
// no short names, no partial wildcards; a Gateway also accepts an IP address.
func (v *validator) namespacedHost(p, h string, gateway bool) {
	ns, host, ok := strings.Cut(h, "/")
	switch {
	case !ok && gateway:
		v.hostnamePart(p, h, true)
		return
	case !ok:
		v.errorf(p, "host must be of form namespace/dnsName")
		return
	case ns == "" || host == "":
		v.errorf(p, "config namespace and dnsName in host entry cannot be empty")
	case !gateway:
		if n := strings.TrimPrefix(ns, "~"); n != "" && n != "*" && n != "." && !isDNS1123LabelAnyCase(n) {
			v.errorf(p, "invalid namespace value %q in sidecar", ns)
		}
	case ns != "*" && ns != "." && !isDNS1123LabelAnyCase(ns):
		v.errorf(p, "invalid namespace value %q in gateway", ns)
	}
	v.hostnamePart(p, host, gateway)
}

func (v *validator) hostnamePart(p, host string, gateway bool) {
	if host != "*" && !strings.Contains(host, ".") {
		v.errorf(p, "short names (non FQDN) are not allowed")
	}
	if msg := wildcardDomainError(host); msg != "" && (!gateway || !isIP(host)) {
		v.errorf(p, "%s", msg)
	}
	if strings.Contains(host, "*") && host != "*" && !strings.HasPrefix(host, "*.") {
		v.errorf(p, "partial wildcard %q not allowed", host)
	}
}

func validateSidecar(o *Object, v *validator) {
	sc := o.Spec.(*networkingv1alpha3.Sidecar)
	if sc.WorkloadSelector != nil {
		v.selectorLabels("spec.workloadSelector.labels", sc.WorkloadSelector.Labels)
	}
	if len(sc.Egress) == 0 && len(sc.Ingress) == 0 && sc.OutboundTrafficPolicy == nil && sc.InboundConnectionPool == nil {
		v.errorf("spec", "sidecar: empty configuration provided")
		return
	}
	ports := map[uint32]bool{}
	for i, in := range sc.Ingress {
		p := idx("spec.ingress", i)
		if in == nil {
			v.errorf(p, "sidecar: ingress may not be null")
			continue
		}
		if in.Port == nil {
			v.errorf(p+".port", "sidecar: port is required for ingress listeners")
			continue
		}
		if in.Port.TargetPort > 0 { //nolint:staticcheck // SA1019: Istio still rejects the deprecated field
			v.errorf(p+".port.targetPort", "targetPort has no impact on Sidecars")
		}
		v.sidecarPort(p, in.Port, in.Bind)
		if ports[in.Port.Number] {
			v.errorf(p+".port.number", "sidecar: ports on IP bound listeners must be unique")
		}
		ports[in.Port.Number] = true
		v.defaultEndpoint(p+".defaultEndpoint", in.DefaultEndpoint)
		if t := in.Tls; t != nil {
			tp := p + ".tls"
			for _, c := range []struct {
				bad  bool
				what string
			}{
				{len(t.SubjectAltNames) > 0, "subjectAltNames is not supported in ingress tls"}, {t.HttpsRedirect, "httpsRedirect is not supported"},
				{t.CredentialName != "", "credentialName is not currently supported"}, {len(t.CredentialNames) > 0, "credentialNames is not currently supported"},
				{len(t.TlsCertificates) > 0, "tls_certificates is not currently supported"},
			} {
				if c.bad {
					v.errorf(tp, "sidecar: %s", c.what)
				}
			}
			if t.Mode == networkingv1alpha3.ServerTLSSettings_ISTIO_MUTUAL || t.Mode == networkingv1alpha3.ServerTLSSettings_AUTO_PASSTHROUGH {
				v.errorf(tp+".mode", "configuration is invalid: cannot set mode to %s in sidecar ingress tls", t.Mode)
			}
			if !tlsProtocol(strings.ToUpper(in.Port.Protocol)) {
				v.errorf(tp, "server cannot have TLS settings for non HTTPS/TLS ports")
			}
			v.serverTLS(tp, t)
		}
		v.connectionPool(p+".connectionPool", in.ConnectionPool)
	}
	v.connectionPool("spec.inboundConnectionPool", sc.InboundConnectionPool)
	ports = map[uint32]bool{}
	sockets := map[string]bool{}
	catchAll := false
	for i, eg := range sc.Egress {
		p := idx("spec.egress", i)
		if eg == nil {
			v.errorf(p, "egress listener may not be null")
			continue
		}
		if eg.Port == nil {
			switch {
			case catchAll:
				v.errorf(p+".port", "sidecar: egress can have only one listener with empty port")
				continue
			case i == len(sc.Egress)-1:
				catchAll = true
			default:
				v.errorf(p+".port", "sidecar: the egress listener with empty port should be the last listener in the list")
			}
		} else {
			if eg.Port.TargetPort > 0 { //nolint:staticcheck // SA1019: Istio still rejects the deprecated field
				v.errorf(p+".port.targetPort", "targetPort has no impact on Sidecars")
			}
			if eg.Port.Number == 0 {
				v.sidecarSocketPort(p, eg.Port, eg.Bind, eg.CaptureMode)
				if sockets[eg.Bind] {
					v.errorf(p+".bind", "sidecar: unix domain socket values for listeners must be unique")
				}
				sockets[eg.Bind] = true
			} else {
				v.sidecarPort(p, eg.Port, eg.Bind)
				if ports[eg.Port.Number] {
					v.errorf(p+".port.number", "sidecar: ports on IP bound listeners must be unique")
				}
				ports[eg.Port.Number] = true
			}
		}
		if len(eg.Hosts) == 0 {
			v.errorf(p+".hosts", "sidecar: egress listener must contain at least one host")
		}
		byNamespace := map[string]map[string]bool{}
		for j, h := range eg.Hosts {
			hp := idx(p+".hosts", j)
			if ns, svc, ok := strings.Cut(h, "/"); ok && !strings.HasPrefix(ns, "~") {
				if ns == "." {
					ns = v.ns
				}
				if byNamespace[ns] == nil {
					byNamespace[ns] = map[string]bool{}
				}
				if svc != "*" && (byNamespace[ns][svc] || byNamespace[ns]["*"]) || svc == "*" && len(byNamespace[ns]) > 0 {
					v.warnf(hp, "duplicated egress host: %s", h)
				}
				byNamespace[ns][svc] = true
			}
			v.namespacedHost(hp, h, false)
		}
		if byNamespace["*"]["*"] && len(byNamespace) != 1 {
			v.warnf(p+".hosts", "`*/*` host select all resources, no other hosts can be added")
		}
	}
	if tp := sc.OutboundTrafficPolicy; tp != nil {
		p := "spec.outboundTrafficPolicy"
		switch {
		case tp.Mode == networkingv1alpha3.OutboundTrafficPolicy_Mode(3): // ALLOW_ANY_DYNAMIC_DNS: a MeshConfig mode only
			v.errorf(p+".mode", "sidecar: ALLOW_ANY_DYNAMIC_DNS mode is only supported in MeshConfig, not in Sidecar resource")
		case tp.EgressProxy == nil:
		case tp.Mode != networkingv1alpha3.OutboundTrafficPolicy_ALLOW_ANY:
			v.errorf(p+".egressProxy", "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode")
		default:
			if msg := fqdnError(tp.EgressProxy.Host); msg != "" {
				v.errorf(p+".egressProxy.host", "%s", msg)
			}
			if tp.EgressProxy.Port == nil {
				v.errorf(p+".egressProxy.port", "sidecar: egress_proxy port must be non-nil")
			} else {
				v.destination(p+".egressProxy", tp.EgressProxy)
			}
		}
	}
}

// sidecarPort checks a listener port bound to an IP address.
func (v *validator) sidecarPort(p string, port *networkingv1alpha3.SidecarPort, bind string) {
	if port.Name != "" && !isDNS1123LabelAnyCase(port.Name) {
		v.errorf(p+".port.name", "invalid port name: %s", port.Name)
	}
	v.protocol(p+".port.protocol", port.Protocol)
	v.port(p+".port.number", port.Number)
	if bind != "" && !isIP(bind) {
		v.errorf(p+".bind", "%s is not a valid IP", bind)
	}
}

// sidecarSocketPort checks an egress listener on a unix domain socket (port 0).
func (v *validator) sidecarSocketPort(p string, port *networkingv1alpha3.SidecarPort, bind string, mode networkingv1alpha3.CaptureMode) {
	if port.Name != "" && !isDNS1123LabelAnyCase(port.Name) {
		v.errorf(p+".port.name", "invalid port name: %s", port.Name)
	}
	v.protocol(p+".port.protocol", port.Protocol)
	if path, ok := strings.CutPrefix(bind, "unix://"); !ok {
		v.errorf(p+".bind", "sidecar: ports with 0 value must have a unix domain socket bind address")
	} else if msg := unixAddressError(path); msg != "" {
		v.errorf(p+".bind", "%s", msg)
	}
	if mode != networkingv1alpha3.CaptureMode_DEFAULT && mode != networkingv1alpha3.CaptureMode_NONE {
		v.errorf(p+".captureMode", "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners")
	}
}

func (v *validator) defaultEndpoint(p, ep string) {
	if ep == "" {
		return
	}
	if path, ok := strings.CutPrefix(ep, "unix://"); ok {
		if msg := unixAddressError(path); msg != "" {
			v.errorf(p, "%s", msg)
		}
		return
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		v.errorf(p, "%v", err)
	}
	if host != "" && host != "127.0.0.1" && host != "0.0.0.0" && host != "::1" && host != "::" {
		v.errorf(p, "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset")
	}
	if n, err := strconv.Atoi(port); err != nil {
		v.errorf(p, "sidecar: defaultEndpoint port (%s) is not a number", port)
	} else if n < 1 || n > 65535 {
		v.errorf(p, "port number %d must be in the range 1..65535", n)
	}
}

// unixAddressError checks a unix socket path: absolute and not a directory, or an abstract
// socket ("@name").
func unixAddressError(addr string) string {
	switch {
	case addr == "":
		return "unix address must not be empty"
	case strings.HasPrefix(addr, "@"):
		return ""
	case !path.IsAbs(addr) || strings.HasSuffix(addr, "/"):
		return fmt.Sprintf("%s is not an absolute path to a file", addr)
	}
	return ""
}
