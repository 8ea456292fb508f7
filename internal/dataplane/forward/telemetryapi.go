package forward

// recordTelemetryAPI hands the finished request to what the Telemetry API configures per
// listener: Istio's metrics with the listener's overrides (nil: none) and the access log
// with its access logs (nil: the proxy's own), with the downstream headers their
// expressions read.
func (x *exchange) recordTelemetryAPI() {
	h := x.in.HTTP
	if x.f.o.Metrics != nil {
		if h != nil {
			x.f.o.Metrics(x.info, h.Stats, x.r.Header)
		} else {
			x.f.o.Metrics(x.info, nil, x.r.Header)
		}
	}
	if x.f.o.AccessLog != nil {
		if h != nil {
			x.f.o.AccessLog(x.info, h.AccessLogs, x.r.Header)
		} else {
			x.f.o.AccessLog(x.info, nil, x.r.Header)
		}
	}
}
