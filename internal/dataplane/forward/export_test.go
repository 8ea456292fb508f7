package forward

// SetDefaultMaxConnections lowers Envoy's default max_connections bound for a test; the
// returned func restores it.
func SetDefaultMaxConnections(n int64) (restore func()) {
	prev := defaultMaxConnections
	defaultMaxConnections = n
	return func() { defaultMaxConnections = prev }
}

// OnRelease has f told, for each exchange released from now on, whether it is reused; the
// returned func stops it.
func OnRelease(f func(reused bool)) (stop func()) {
	onRelease.Store(&f)
	return func() { onRelease.Store(nil) }
}

// OnAnswer has f told, for each answer sent downstream from now on, whether the pool gave
// it without a header map (its fields as a list only) and whether its fields were passed
// on as received without a header map; stop undoes it.
func OnAnswer(f func(deferred, adopted bool)) (stop func()) {
	onAnswer.Store(&f)
	return func() { onAnswer.Store(nil) }
}
