package istioctl

import (
	"os"
	"testing"

	istiolog "istio.io/istio/pkg/log"
)

// TestMain quiets Istio's informational logging.
func TestMain(m *testing.M) {
	for _, s := range istiolog.Scopes() {
		s.SetOutputLevel(istiolog.ErrorLevel)
	}
	os.Exit(m.Run())
}
