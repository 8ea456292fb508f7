package podevent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

var (
	eventsGVR = schema.GroupVersionResource{Version: "v1", Resource: "events"}
	podsGVR   = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

// Defaults of Options.
const (
	DefaultWindow      = 10 * time.Minute // the kubelet's event aggregation window
	DefaultMinInterval = 10 * time.Second // at most one API write per event every 10 s
	DefaultQueue       = 256
	// Component is the Event's source (kubectl describe's "From" column).
	Component = "lucid-sidecar"
)

// Options configure a Recorder.
type Options struct {
	Client dynamic.Interface
	// Instance names the control-plane replica (reportingInstance); default the host name.
	Instance string
	// Window: a repeat of the same failure (same pod, container, probe and message) within
	// Window updates the Event's count instead of creating a new one. MinInterval spaces
	// the API writes for one Event; repeats in between are counted and written with the
	// next. Queue bounds the reports waiting for the API (more are refused).
	Window, MinInterval time.Duration
	Queue               int
	Now                 func() time.Time
	Log                 *slog.Logger
}

// Recorder turns reports into Events. Enqueue never blocks; Run writes to the API server.
type Recorder struct {
	o     Options
	queue chan Report

	// seen is owned by Run's goroutine.
	seen map[string]*aggregate
}

// aggregate is one Event being counted.
type aggregate struct {
	name       string // the Event object
	namespace  string
	count      int // as known to the API server after the last write
	pending    int // repeats not written yet
	first      time.Time
	lastWrite  time.Time
	lastReport time.Time
}

// NewRecorder returns a Recorder; start Run.
func NewRecorder(o Options) *Recorder {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.MinInterval <= 0 {
		o.MinInterval = DefaultMinInterval
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Instance == "" {
		o.Instance, _ = os.Hostname()
	}
	return &Recorder{o: o, queue: make(chan Report, o.Queue), seen: map[string]*aggregate{}}
}

// Enqueue implements the service's reporter: it hands r to Run, or refuses it when the
// queue is full (the API server is slower than the reports).
func (r *Recorder) Enqueue(rep Report) error {
	select {
	case r.queue <- rep:
		return nil
	default:
		return fmt.Errorf("event queue full (%d reports waiting for the API server); report dropped", cap(r.queue))
	}
}

// Run records queued reports until ctx ends. Repeats counted but not written yet (within
// MinInterval of the last write) are written once MinInterval has passed.
func (r *Recorder) Run(ctx context.Context) {
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	armed := false
	for {
		select {
		case <-ctx.Done():
			flush.Stop()
			return
		case rep := <-r.queue:
			if err := r.record(ctx, rep); err != nil && ctx.Err() == nil {
				r.o.Log.Warn("probe failure not recorded as an Event", "pod", rep.Namespace+"/"+rep.Pod, "container", rep.Container, "probe", rep.Probe, "error", err)
			}
		case <-flush.C:
			armed = false
			r.flushDue(ctx)
		}
		if d, ok := r.nextFlush(); ok && !armed {
			flush.Reset(d)
			armed = true
		}
	}
}

// flushDue writes the pending repeats whose MinInterval has passed.
func (r *Recorder) flushDue(ctx context.Context) {
	now := r.o.Now()
	for _, a := range r.seen {
		if a.pending > 0 && now.Sub(a.lastWrite) >= r.o.MinInterval {
			if err := r.bump(ctx, a, now); err != nil && ctx.Err() == nil {
				r.o.Log.Warn("probe failure count not updated", "error", err)
				a.lastWrite = now // retried after another MinInterval
			}
		}
	}
}

// nextFlush is the delay until the first pending repeat is due.
func (r *Recorder) nextFlush() (time.Duration, bool) {
	now := r.o.Now()
	var next time.Duration
	found := false
	for _, a := range r.seen {
		if a.pending == 0 {
			continue
		}
		d := max(a.lastWrite.Add(r.o.MinInterval).Sub(now), 0)
		if !found || d < next {
			next, found = d, true
		}
	}
	return next, found
}

func (r *Recorder) record(ctx context.Context, rep Report) error {
	now := r.o.Now()
	msg := rep.Message()
	key := rep.Namespace + "/" + rep.Pod + "/" + rep.Container + "/" + rep.Probe + "/" + msg
	if a := r.seen[key]; a != nil && now.Sub(a.lastReport) < r.o.Window {
		a.lastReport = now
		a.pending++
		if now.Sub(a.lastWrite) < r.o.MinInterval {
			return nil // counted; written with a later repeat
		}
		return r.bump(ctx, a, now)
	}
	r.sweep(now)
	pod, err := r.o.Client.Resource(podsGVR).Namespace(rep.Namespace).Get(ctx, rep.Pod, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("pod %s/%s not found (a sidecar outside Kubernetes?)", rep.Namespace, rep.Pod)
		}
		return fmt.Errorf("get pod %s/%s: %w", rep.Namespace, rep.Pod, err)
	}
	if err := checkPeer(pod, rep.Peer); err != nil {
		return err
	}
	a := &aggregate{namespace: rep.Namespace, count: 1, first: now, lastWrite: now, lastReport: now,
		name: rep.Pod + "." + strconv.FormatInt(now.UnixNano(), 16)}
	ev := r.event(pod, rep, a, msg)
	if _, err := r.o.Client.Resource(eventsGVR).Namespace(rep.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create event on pod %s/%s: %w", rep.Namespace, rep.Pod, err)
	}
	r.seen[key] = a
	return nil
}

// bump writes the repeats counted since the last write.
func (r *Recorder) bump(ctx context.Context, a *aggregate, now time.Time) error {
	count := a.count + a.pending
	patch := fmt.Sprintf(`{"count":%d,"lastTimestamp":%q}`, count, now.UTC().Format(time.RFC3339))
	_, err := r.o.Client.Resource(eventsGVR).Namespace(a.namespace).Patch(ctx, a.name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("update event %s/%s: %w", a.namespace, a.name, err)
	}
	a.count, a.pending, a.lastWrite = count, 0, now
	return nil
}

// sweep forgets aggregates whose window has passed.
func (r *Recorder) sweep(now time.Time) {
	for k, a := range r.seen {
		if now.Sub(a.lastReport) >= r.o.Window {
			delete(r.seen, k)
		}
	}
}

// checkPeer refuses a report about a pod with IPs from another address: a sidecar reports
// only its own pod. A pod without IPs yet, or a report without a peer, passes.
func checkPeer(pod *unstructured.Unstructured, from netip.Addr) error {
	if !from.IsValid() {
		return nil
	}
	ips, _, _ := unstructured.NestedSlice(pod.Object, "status", "podIPs")
	if len(ips) == 0 {
		return nil
	}
	for _, ip := range ips {
		m, _ := ip.(map[string]any)
		s, _ := m["ip"].(string)
		if a, err := netip.ParseAddr(s); err == nil && a == from {
			return nil
		}
	}
	return errors.New("refused: the report came from " + from.String() + ", not from one of the pod's IPs")
}

func (r *Recorder) event(pod *unstructured.Unstructured, rep Report, a *aggregate, msg string) *unstructured.Unstructured {
	ts := a.first.UTC().Format(time.RFC3339)
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Event",
		"metadata": map[string]any{"name": a.name, "namespace": rep.Namespace},
		"involvedObject": map[string]any{
			"kind": "Pod", "apiVersion": "v1", "namespace": rep.Namespace, "name": rep.Pod,
			"uid": string(pod.GetUID()), "resourceVersion": pod.GetResourceVersion(),
			"fieldPath": "spec.containers{" + rep.Container + "}",
		},
		"reason":             probeNames[rep.Probe].reason,
		"message":            msg,
		"type":               "Warning",
		"source":             map[string]any{"component": Component},
		"reportingComponent": "lucid.dev/discovery",
		"reportingInstance":  r.o.Instance,
		"firstTimestamp":     ts,
		"lastTimestamp":      ts,
		"count":              int64(1),
	}}
}
