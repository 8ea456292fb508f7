package forward

// accessLog hands the finished request to the access log with its listener's access
// logs (the Telemetry API's accessLogging; nil: the proxy's own) and the downstream
// headers its CEL filters read.
func (x *exchange) accessLog() {
	if x.f.o.AccessLog == nil {
		return
	}
	if x.in.HTTP != nil {
		x.f.o.AccessLog(x.info, x.in.HTTP.AccessLogs, x.r.Header)
		return
	}
	x.f.o.AccessLog(x.info, nil, x.r.Header)
}
