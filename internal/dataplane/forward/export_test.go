package forward

// SetDefaultMaxConnections lowers Envoy's default max_connections bound for a test; the
// returned func restores it.
func SetDefaultMaxConnections(n int64) (restore func()) {
	prev := defaultMaxConnections
	defaultMaxConnections = n
	return func() { defaultMaxConnections = prev }
}
