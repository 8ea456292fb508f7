package meshtest

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// Load sends GET requests to one URL from several goroutines until Stop, counting every
// request that fails (an error, or an answer other than 200).
type Load struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	sent   atomic.Int64
	mu     sync.Mutex
	failed []string // "status x-lucid-error" or the error, in order
}

// StartLoad starts workers goroutines sending GET url through c.
func StartLoad(c *http.Client, url string, workers int) *Load {
	l := &Load{stop: make(chan struct{})}
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.sent.Add(1)
				resp, err := c.Get(url)
				if err != nil {
					l.fail(err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					l.fail(fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("x-lucid-error")))
				}
			}
		})
	}
	return l
}

func (l *Load) fail(what string) {
	l.mu.Lock()
	l.failed = append(l.failed, what)
	l.mu.Unlock()
}

// Stop ends the load and returns how many requests were sent and the failures.
func (l *Load) Stop() (sent int64, failures []string) {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent.Load(), l.failed
}
