package discovery

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/controlplane/analyze"
	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// analyzeState keeps the newest configuration for /debug/analyze (`lucid analyze --online`).
type analyzeState struct {
	mesh *meshv1alpha1.MeshConfig
	cur  atomic.Pointer[analyzeInput]
}

type analyzeInput struct {
	objs  []*config.Object
	diags []config.Diagnostic // the sources' diagnostics (schema errors)
}

func (a *analyzeState) set(objs []*config.Object, diags []config.Diagnostic) {
	a.cur.Store(&analyzeInput{objs: objs, diags: diags})
}

// messages are the analyzers' messages for the configuration in force (the dashboard's
// findings too).
func (a *analyzeState) messages() ([]analyze.Message, error) {
	in := a.cur.Load()
	if in == nil {
		return nil, errors.New("no configuration published yet")
	}
	msgs := analyze.Analyze(in.objs, in.diags, a.mesh)
	if msgs == nil {
		msgs = []analyze.Message{}
	}
	return msgs, nil
}

// serve answers /debug/analyze: the analyzers' messages (JSON array of analyze.Message)
// for the configuration in force, and the schema errors of what the sources rejected.
func (a *analyzeState) serve(w http.ResponseWriter, _ *http.Request) {
	msgs, err := a.messages()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(msgs) // a write error means the client went away
}
