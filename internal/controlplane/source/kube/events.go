package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// Event fields of the validation reports.
const (
	EventReason    = "LucidValidation"
	EventComponent = "lucid-discovery"
	// maxEventMessage is the API server's limit on an Event's message.
	maxEventMessage = 1024
)

var eventsGVR = schema.GroupVersionResource{Version: "v1", Resource: "events"}

// report is one Event to record on an Istio object.
type report struct {
	involved   map[string]any // the Event's involvedObject
	namespace  string
	name       string // deterministic: the same on every replica, so a second create is AlreadyExists
	message    string
	generation int64
}

// reporter records a Warning Event on every Istio object with problems, once per object
// generation (and UID). Every replica computes the same Event name, so when several
// replicas run only the first create succeeds and the others see AlreadyExists.
//
// Backpressure: the build loop hands over reports with add, which never blocks (a map
// under a mutex and a one-slot wake-up channel); run sends them one at a time. A report
// that cannot be sent is logged and dropped; it is retried when the object next changes.
type reporter struct {
	dyn dynamic.Interface
	log *slog.Logger

	wake chan struct{}

	mu      sync.Mutex
	pending map[string]report // Event name → report
	sent    map[string]bool   // Event names recorded (or found recorded)
}

func newReporter(dyn dynamic.Interface, log *slog.Logger) *reporter {
	return &reporter{dyn: dyn, log: log, wake: make(chan struct{}, 1), pending: map[string]report{}, sent: map[string]bool{}}
}

// add queues Events for every parse with Error or Warning diagnostics that has not been
// reported at its generation yet. It never blocks.
func (r *reporter) add(results map[string]*parsed, items map[string]istioItem) {
	r.mu.Lock()
	added := false
	current := map[string]bool{}
	for k, pr := range results {
		var lines []string
		for _, d := range pr.diags {
			if d.Level == config.Error || d.Level == config.Warning {
				lines = append(lines, d.String())
			}
		}
		if len(lines) == 0 {
			continue
		}
		it := items[k]
		rep := newReport(it, pr, strings.Join(lines, "\n"))
		current[rep.name] = true
		if r.sent[rep.name] {
			continue
		}
		r.pending[rep.name] = rep
		added = true
	}
	for name := range r.sent {
		if !current[name] { // the object changed or is gone: forget it
			delete(r.sent, name)
		}
	}
	r.mu.Unlock()
	if added {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

func newReport(it istioItem, pr *parsed, message string) report {
	u := it.obj
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%s", pr.uid, pr.generation, message)))
	name := u.GetName()
	if len(name) > 200 {
		name = name[:200]
	}
	if len(message) > maxEventMessage {
		message = message[:maxEventMessage-3] + "..."
	}
	return report{
		involved: map[string]any{
			"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(), "name": u.GetName(),
			"namespace": u.GetNamespace(), "uid": pr.uid, "resourceVersion": pr.resourceVersion,
		},
		namespace:  u.GetNamespace(),
		name:       name + ".lucid-" + hex.EncodeToString(sum[:])[:12],
		message:    message,
		generation: pr.generation,
	}
}

// run sends queued Events until ctx ends.
func (r *reporter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		for {
			rep, ok := r.next()
			if !ok {
				break
			}
			err := r.send(ctx, rep)
			if ctx.Err() != nil {
				return
			}
			r.mu.Lock()
			r.sent[rep.name] = true // sent, or given up on: never retried at this generation
			r.mu.Unlock()
			if err != nil {
				r.log.Warn("could not record the validation Event", "object", rep.involved["kind"].(string)+" "+rep.namespace+"/"+rep.involved["name"].(string), "error", err)
			}
		}
	}
}

func (r *reporter) next() (report, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, rep := range r.pending {
		delete(r.pending, name)
		return rep, true
	}
	return report{}, false
}

func (r *reporter) send(ctx context.Context, rep report) error {
	now := time.Now().UTC().Format(time.RFC3339)
	ev := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion":     "v1",
		"kind":           "Event",
		"metadata":       map[string]any{"name": rep.name, "namespace": rep.namespace},
		"involvedObject": rep.involved,
		"reason":         EventReason,
		"message":        rep.message,
		"type":           "Warning",
		"source":         map[string]any{"component": EventComponent},
		"firstTimestamp": now,
		"lastTimestamp":  now,
		"count":          int64(1),
	}}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := r.dyn.Resource(eventsGVR).Namespace(rep.namespace).Create(cctx, ev, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Event %s/%s: %w", rep.namespace, rep.name, err)
	}
	return nil
}
