package forward_test

import (
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// TestAnswerBeforeObservers: an HTTP/1.1 client has the whole answer before the request's
// observers (the access log, the metrics, telemetry) run, on both HTTP/1.1 servers: an
// observer that blocks does not hold the answer back. The record still gets the bytes sent.
func TestAnswerBeforeObservers(t *testing.T) {
	const body = "the answer"
	up := backend(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = io.WriteString(w, body)
	})
	gate := make(chan struct{})
	recorded := make(chan int64, 4)
	e := newEnvWith(t, func(o *forward.Options) {
		o.Observers = append(o.Observers, func(i *streaminfo.Info) {
			recorded <- i.BytesSent
			<-gate
		})
	}, routes(toCluster("c")), static("c", up))
	own := "http://" + h1Proxy(t, "127.0.0.1:0", http.HandlerFunc(e.serve))
	t.Cleanup(func() { close(gate) }) // before the servers stop: the handlers finish
	for _, tc := range []struct{ name, url string }{{"h1server", own}, {"net/http", e.url}} {
		t.Run(tc.name, func(t *testing.T) {
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			req, _ := http.NewRequest(http.MethodGet, tc.url+"/", nil)
			req.Host = "svc:9080"
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("the answer waited for the observers: %v", err)
			}
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || string(b) != body {
				t.Fatalf("got %d %q %v, want 200 %q before the observers ran", resp.StatusCode, b, err, body)
			}
			if resp.ContentLength != int64(len(body)) || len(resp.TransferEncoding) > 0 {
				t.Fatalf("Content-Length %d, Transfer-Encoding %q: want the length, not chunks", resp.ContentLength, resp.TransferEncoding)
			}
			select {
			case n := <-recorded:
				if n != int64(len(body)) {
					t.Fatalf("recorded %d bytes sent, want %d", n, len(body))
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the observers did not run")
			}
		})
	}
}
