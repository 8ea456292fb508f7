package tracing

import (
	"math/rand/v2"
	"net/http"
	"strconv"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// Reason is why a request is traced, as Envoy packs it into x-request-id.
type Reason uint8

// The trace reasons, Envoy's Tracing::Reason.
const (
	NotTraceable Reason = iota
	Sampled             // random sampling chose it
	ServerForced        // x-envoy-force-trace from an internal client
	ClientForced        // x-client-trace-id, within client sampling
)

var reasonNames = [...]string{"not traceable", "sampled", "forced (x-envoy-force-trace)", "forced (x-client-trace-id)"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason " + strconv.Itoa(int(r))
}

// Traced reports whether the reason makes a span.
func (r Reason) Traced() bool { return r != NotTraceable }

// Sampling is one listener's sampling setup, each a percentage 0–100 (Envoy's HTTP
// connection manager tracing: random_sampling, client_sampling, overall_sampling).
type Sampling struct {
	Random  float64 // Istio's meshConfig defaultConfig.tracing.sampling: 1 by default
	Client  float64 // 100 by default
	Overall float64 // 100 by default
}

// DefaultSampling is Istio's: 1 % of requests at random, every request that carries
// x-client-trace-id, no overall cut.
var DefaultSampling = Sampling{Random: 1, Client: 100, Overall: 100}

// versionNibble is the index in a UUID string of the version digit Envoy reuses for the
// trace reason.
const versionNibble = 14

// Decide makes Envoy's tracing decision for a request and records it in the
// x-request-id header (which must already be set): a reason carried by the request id
// from an earlier hop is kept; otherwise x-client-trace-id (client sampling), then
// x-envoy-force-trace (only from internal clients), then random sampling decide. Random
// and overall sampling use the request id's first 32 bits, so every hop agrees.
func Decide(h http.Header, s Sampling, internal bool) Reason {
	id := http1.Value(h, "X-Request-Id")
	reason, packed := DecideID(id, h, s, internal)
	if packed != id {
		h["X-Request-Id"] = []string{packed}
	}
	return reason
}

// DecideID is Decide for a request whose id is given rather than read from h (h is only
// read, for x-client-trace-id and x-envoy-force-trace): it returns the decision and the
// id with the trace reason packed in, which the caller sends on. It does not allocate
// unless the packed id differs from id.
func DecideID(id string, h http.Header, s Sampling, internal bool) (Reason, string) {
	uuid := isUUID(id) // checked once: the helpers below take it as given
	stable, hasStable := stableValue(id, uuid)
	reason := reasonOf(id, uuid)
	if reason == NotTraceable {
		switch {
		case http1.Value(h, "X-Client-Trace-Id") != "" && enabled(s.Client, rand.Uint64()):
			reason = ClientForced
		case internal && http1.Value(h, "X-Envoy-Force-Trace") != "":
			reason = ServerForced
		default:
			v := stable
			if !hasStable {
				v = rand.Uint64()
			}
			if enabled(s.Random, v) {
				reason = Sampled
			}
		}
	}
	if reason != NotTraceable {
		v := stable
		if !hasStable {
			v = rand.Uint64()
		}
		if !enabled(s.Overall, v) {
			reason = NotTraceable
		}
	}
	if packed, ok := packReason(id, uuid, reason); ok {
		return reason, packed
	}
	return reason, id
}

// enabled is Envoy's fractional-percent check: a percentage becomes parts per million
// and v selects a slot.
func enabled(percent float64, v uint64) bool {
	if percent >= 100 {
		return true
	}
	if percent <= 0 {
		return false
	}
	return v%1_000_000 < uint64(percent*10_000)
}

// isUUID reports whether id has the 8-4-4-4-12 hex form.
func isUUID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// stableValue is the integer Envoy samples with: the request id's first 8 hex digits
// (uuid: whether id has the UUID form, isUUID; reasonOf and packReason take it too).
func stableValue(id string, uuid bool) (uint64, bool) {
	if !uuid {
		return 0, false
	}
	v, err := strconv.ParseUint(id[:8], 16, 32)
	return v, err == nil
}

func reasonOf(id string, uuid bool) Reason {
	if !uuid {
		return NotTraceable
	}
	switch id[versionNibble] {
	case '9':
		return Sampled
	case 'a', 'A':
		return ServerForced
	case 'b', 'B':
		return ClientForced
	}
	return NotTraceable
}

// packReason writes the reason into the version digit ('4' when not traced).
func packReason(id string, uuid bool, r Reason) (string, bool) {
	if !uuid {
		return id, false
	}
	c := byte('4')
	switch r {
	case Sampled:
		c = '9'
	case ServerForced:
		c = 'a'
	case ClientForced:
		c = 'b'
	}
	if id[versionNibble] == c {
		return id, true
	}
	b := []byte(id)
	b[versionNibble] = c
	return string(b), true
}
