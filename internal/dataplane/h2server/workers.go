package h2server

import (
	"sync"
)

// Streams run on worker goroutines that go on to the next stream when their handler
// returns, instead of a new goroutine each: a new goroutine's stack starts at 2 KiB and
// the proxy's handlers need several times that, so it would be grown (and copied, frame by
// frame, deep in the handler) by every request. A stream is handed to an idle worker
// through its channel (the worker was parked there; the hand-off makes it runnable as the
// go statement would), else a new worker starts. Idle workers are kept newest first, at
// most maxIdleWorkers, and end after workerIdle without a stream or when the server
// closes.

type worker struct {
	ch    chan *stream // the next stream; nil ends the worker
	since int64        // clock ns it went idle
}

type workerPool struct {
	mu   sync.Mutex
	idle []*worker // the most recently idle last
}

const (
	maxIdleWorkers = 256
	workerIdle     = 30e9 // ns
)

// work runs st on an idle worker, or on a new one.
func (s *Server) work(st *stream) {
	p := &s.workers
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.ch <- st
		return
	}
	p.mu.Unlock()
	go s.worker(st)
}

func (s *Server) worker(st *stream) {
	w := &worker{ch: make(chan *stream, 1)}
	for st != nil {
		st.run()
		if !s.parkWorker(w) {
			return
		}
		st = <-w.ch
	}
}

// parkWorker lists w as idle; false when it should end instead.
func (s *Server) parkWorker(w *worker) bool {
	p := &s.workers
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.closing.Load() || len(p.idle) >= maxIdleWorkers {
		return false
	}
	w.since = s.now.Load()
	p.idle = append(p.idle, w)
	return true
}

// trimWorkers ends the workers idle since before now-workerIdle (all with now < 0).
func (s *Server) trimWorkers(now int64) {
	p := &s.workers
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for n < len(p.idle) && (now < 0 || p.idle[n].since < now-workerIdle) {
		p.idle[n].ch <- nil
		p.idle[n] = nil
		n++
	}
	if n > 0 {
		p.idle = append(p.idle[:0], p.idle[n:]...)
	}
}
