package demoapp

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// A watch streams events with growing resourceVersions over HTTP/1.1 and h2c, and a
// watch still open when the app stops does not hold the shutdown up.
func TestWatchStreams(t *testing.T) {
	for _, h2c := range []bool{false, true} {
		t.Run("h2c="+strconv.FormatBool(h2c), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			app, err := New(Config{Listen: ln.Addr().String(), Name: "api-a", WatchInterval: 10 * time.Millisecond}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- app.Serve(ctx, ln) }()

			tr := &http.Transport{Proxy: nil}
			if h2c {
				tr.Protocols = new(http.Protocols)
				tr.Protocols.SetUnencryptedHTTP2(true)
			}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Get("http://" + ln.Addr().String() + "/api/v1/configmaps?watch=true")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if want := map[bool]int{false: 1, true: 2}[h2c]; resp.ProtoMajor != want {
				t.Errorf("served over %s, want HTTP/%d", resp.Proto, want)
			}
			sc := bufio.NewScanner(resp.Body)
			for i := 1; i <= 3; i++ {
				if !sc.Scan() {
					t.Fatalf("stream ended after %d events: %v", i-1, sc.Err())
				}
				var ev WatchEvent
				if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
					t.Fatalf("event %d: %v: %s", i, err, sc.Bytes())
				}
				wantType := map[bool]string{true: "ADDED", false: "MODIFIED"}[i == 1]
				if ev.Type != wantType || ev.Object.ResourceVersion != strconv.Itoa(i) || ev.Object.Server != "api-a" {
					t.Errorf("event %d = %+v, want %s rv %d from api-a", i, ev, wantType, i)
				}
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("an open watch held the app's shutdown up")
			}
		})
	}
}
