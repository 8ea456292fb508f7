package tracing

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Sink sends one batch of spans to a backend (OTLP over gRPC or HTTP, Zipkin).
type Sink interface {
	Send(ctx context.Context, resource *Node, spans []*Span) error
	// Name says where the spans go, for logs.
	Name() string
}

// BatchOptions bound the exporter's memory and latency. Zero fields take the defaults.
type BatchOptions struct {
	MaxQueue    int           // spans held at most; more are dropped and counted (default 2048)
	MaxBatch    int           // spans per export (default 512)
	FlushEvery  time.Duration // export at least this often when spans are waiting (default 5 s, Envoy's flush interval)
	SendTimeout time.Duration // one export's deadline (default 10 s)
	Log         *slog.Logger
}

// Batcher queues finished spans and exports them in batches from one goroutine. Add never
// blocks: when the queue is full the span is dropped and counted. Safe for concurrent use.
type Batcher struct {
	o    BatchOptions
	node *Node
	sink Sink

	mu    sync.Mutex
	queue []*Span
	kick  chan struct{}

	exported, dropped, failed atomic.Uint64
	loggedErr                 atomic.Bool

	stop chan struct{}
	done chan struct{}
	// ctx is the loop's exports' parent; Close cancels it when its own deadline passes
	// first, so a collector that hangs cannot hold a proxy's shutdown.
	ctx    context.Context
	cancel context.CancelFunc
}

// NewBatcher starts the export loop; Close stops it.
func NewBatcher(node *Node, sink Sink, o BatchOptions) *Batcher {
	if o.MaxQueue <= 0 {
		o.MaxQueue = 2048
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 5 * time.Second
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	b := &Batcher{o: o, node: node, sink: sink, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	go b.loop()
	return b
}

// Add queues a span. A nil *Batcher drops it.
func (b *Batcher) Add(s *Span) {
	if b == nil {
		return
	}
	b.mu.Lock()
	if len(b.queue) >= b.o.MaxQueue {
		b.mu.Unlock()
		b.dropped.Add(1)
		return
	}
	b.queue = append(b.queue, s)
	full := len(b.queue) >= b.o.MaxBatch
	b.mu.Unlock()
	if full {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// Counters reports spans exported, dropped (queue full) and lost to failed exports.
func (b *Batcher) Counters() (exported, dropped, failed uint64) {
	if b == nil {
		return 0, 0, 0
	}
	return b.exported.Load(), b.dropped.Load(), b.failed.Load()
}

// Flush exports what is queued now and waits for it (tests and shutdown).
func (b *Batcher) Flush(ctx context.Context) {
	for {
		batch := b.take()
		if len(batch) == 0 {
			return
		}
		b.send(ctx, batch)
	}
}

// Close exports what is queued (bounded by ctx) and stops the loop; an export in
// flight when ctx ends is abandoned.
func (b *Batcher) Close(ctx context.Context) {
	if b == nil {
		return
	}
	close(b.stop)
	select {
	case <-b.done:
	case <-ctx.Done():
		b.cancel()
		<-b.done
	}
	defer b.cancel()
	b.Flush(ctx)
}

func (b *Batcher) loop() {
	defer close(b.done)
	t := time.NewTicker(b.o.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		case <-b.kick:
		}
		for {
			batch := b.take()
			if len(batch) == 0 {
				break
			}
			ctx, cancel := context.WithTimeout(b.ctx, b.o.SendTimeout)
			b.send(ctx, batch)
			cancel()
			if len(batch) < b.o.MaxBatch {
				break
			}
		}
	}
}

func (b *Batcher) take() []*Span {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(b.queue), b.o.MaxBatch)
	if n == 0 {
		return nil
	}
	batch := make([]*Span, n)
	copy(batch, b.queue)
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	return batch
}

func (b *Batcher) send(ctx context.Context, batch []*Span) {
	if err := b.sink.Send(ctx, b.node, batch); err != nil {
		b.failed.Add(uint64(len(batch)))
		// Log the first failure and the recovery, not every batch.
		if b.loggedErr.CompareAndSwap(false, true) {
			b.o.Log.Warn("spans not exported", "to", b.sink.Name(), "spans", len(batch), "error", err)
		}
		return
	}
	b.exported.Add(uint64(len(batch)))
	if b.loggedErr.CompareAndSwap(true, false) {
		b.o.Log.Info("spans exported again", "to", b.sink.Name())
	}
}
