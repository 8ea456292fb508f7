// Command keepalive is the keep-alive race soak: upstream HTTP/1.1 servers that close idle
// connections after 1, 2 and 5 s (with and without a "Keep-Alive: timeout=N" header), and
// clients sending GET, PUT, POST with an Idempotency-Key and plain POST through each proxy
// at intervals that straddle the upstream's idle timeout. The upstreams count request IDs,
// so a request processed twice is seen, and the connections each proxy opened (by source
// address: each proxy connects from its own). It prints a Markdown table of what the
// clients saw, per proxy and upstream.
//
// bench/keepalive/run.sh starts the proxies (Lucid, HAProxy, nginx) in front of the
// upstreams this command serves; see bench/keepalive/README.md.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// upstreamSpec is one upstream: its idle timeout and whether it advertises it.
type upstreamSpec struct {
	port   int
	idle   time.Duration
	header bool
}

func (u upstreamSpec) String() string {
	h := "no Keep-Alive header"
	if u.header {
		h = "Keep-Alive: timeout=" + strconv.Itoa(int(u.idle.Seconds()))
	}
	return fmt.Sprintf("idle %s, %s", u.idle, h)
}

// closeLag is the time between an upstream's idle timer firing and the close: a request
// arriving then is dropped unread (the kernel answers it with a reset), as in Node.js when
// the event loop is busy. This is the window of the keep-alive race.
var closeLag time.Duration

// specs: ports 9001..9006 on the upstream address.
var specs = []upstreamSpec{
	{9001, time.Second, false}, {9002, 2 * time.Second, false}, {9003, 5 * time.Second, false},
	{9004, time.Second, true}, {9005, 2 * time.Second, true}, {9006, 5 * time.Second, true},
}

func main() {
	upIP := flag.String("upstream-ip", "127.0.92.10", "address the upstreams listen on (ports 9001-9006)")
	proxies := flag.String("proxies", "", "name=ip,... proxies listening on ports 9001-9006 that forward to the upstreams")
	duration := flag.Duration("duration", 10*time.Minute, "how long to send")
	clients := flag.Int("clients", 1, "concurrent clients per proxy and upstream (with more, a pooled connection is idle for less than a client's pause)")
	serveOnly := flag.Bool("serve", false, "only run the upstreams (until SIGTERM)")
	flag.DurationVar(&closeLag, "close-lag", 5*time.Millisecond,
		"how long an upstream takes to close a connection after its idle timer fires (an event loop's delay)")
	flag.Parse()

	seen := &counter{m: map[string]int{}}
	conns := &counter{m: map[string]int{}}
	var lns []net.Listener
	for _, s := range specs {
		ln, err := net.Listen("tcp", net.JoinHostPort(*upIP, strconv.Itoa(s.port)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "keepalive:", err)
			os.Exit(1)
		}
		lns = append(lns, ln)
		go serve(ln, s, seen, conns)
	}
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *serveOnly {
		<-ctx.Done()
		return
	}
	var targets []target
	for _, p := range strings.Split(*proxies, ",") {
		name, ip, ok := strings.Cut(p, "=")
		if !ok {
			fmt.Fprintln(os.Stderr, "keepalive: -proxies wants name=ip,...")
			stop()
			os.Exit(2) //nolint:gocritic // exitAfterDefer: stop ran on the line above
		}
		for _, s := range specs {
			targets = append(targets, target{proxy: name, ip: ip, url: fmt.Sprintf("http://%s:%d/", ip, s.port), spec: s})
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	results := make([]*tally, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		results[i] = &tally{}
		for c := range *clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				run(ctx, t, c, results[i], seen)
			}()
		}
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // let the last requests' counts land
	report(targets, results, conns)
}

// counter counts processed request IDs.
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) add(id string) {
	c.mu.Lock()
	c.m[id]++
	c.mu.Unlock()
}

func (c *counter) get(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

// serve is an upstream like Node.js or gunicorn: it closes a connection idle for s.idle
// (counting from the end of its last response; closeLag later), processes a request only once it has
// read all of it, and answers 200. conns counts connections by "source IP port".
func serve(ln net.Listener, s upstreamSpec, seen, conns *counter) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if host, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
			conns.add(fmt.Sprintf("%s %d", host, s.port))
		}
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				_ = c.SetReadDeadline(time.Now().Add(s.idle))
				req, err := http.ReadRequest(br)
				if err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() { //nolint:errorlint // a deadline error is not wrapped
						time.Sleep(closeLag)
					}
					return
				}
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, err := io.Copy(io.Discard, req.Body); err != nil {
					return
				}
				seen.add(req.Header.Get("X-Soak-Id"))
				ka := ""
				if s.header {
					ka = fmt.Sprintf("Keep-Alive: timeout=%d\r\n", int(s.idle.Seconds()))
				}
				if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\n%sContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok", ka); err != nil {
					return
				}
			}
		}()
	}
}

type target struct {
	proxy string
	ip    string // the proxy's address, also the source of its upstream connections
	url   string
	spec  upstreamSpec
}

// tally is what the clients of one target saw.
type tally struct {
	total, ok          atomic.Int64
	errors             atomic.Int64 // non-200 or transport errors, any method
	postErrors         atomic.Int64 // of which: plain POSTs
	duplicates         atomic.Int64 // requests the upstream processed more than once
	processedButFailed atomic.Int64 // failed to the client although the upstream processed it
	errsBy             sync.Map     // method → *atomic.Int64
}

func inc(m *sync.Map, k string) {
	v, _ := m.LoadOrStore(k, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func run(ctx context.Context, t target, c int, res *tally, seen *counter) {
	tr := &http.Transport{DisableCompression: true, IdleConnTimeout: 5 * time.Minute, MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	rnd := rand.New(rand.NewPCG(uint64(t.spec.port), uint64(c)))
	timer := time.NewTimer(0)
	defer timer.Stop()
	for n := 0; ; n++ {
		// Straddle the idle timeout: 0.9× to 1.1× of it, with a 10 % chance of a quick one.
		gap := time.Duration(float64(t.spec.idle) * (0.9 + 0.2*rnd.Float64()))
		if rnd.IntN(10) == 0 {
			gap = time.Duration(rnd.IntN(50)) * time.Millisecond
		}
		timer.Reset(gap)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		id := fmt.Sprintf("%s-%d-%d-%d", t.proxy, t.spec.port, c, n)
		method, key := http.MethodGet, false
		var body io.Reader
		switch n % 4 {
		case 1:
			method, body = http.MethodPut, strings.NewReader("put")
		case 2:
			method, body, key = http.MethodPost, strings.NewReader("keyed"), true
		case 3:
			method, body = http.MethodPost, strings.NewReader("plain")
		}
		req, _ := http.NewRequestWithContext(context.Background(), method, t.url, body)
		req.Header.Set("X-Soak-Id", id)
		if key {
			req.Header.Set("Idempotency-Key", id)
		}
		label := method
		if key {
			label = "POST+key"
		}
		res.total.Add(1)
		resp, err := client.Do(req)
		code, lucidErr := 0, ""
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			code, lucidErr = resp.StatusCode, resp.Header.Get("X-Lucid-Error")
		}
		if code != http.StatusOK {
			time.Sleep(20 * time.Millisecond) // a failed request may still be in the upstream
		}
		processed := seen.get(id)
		if processed > 1 {
			res.duplicates.Add(1)
		}
		if code == http.StatusOK {
			res.ok.Add(1)
			continue
		}
		res.errors.Add(1)
		inc(&res.errsBy, label)
		if processed > 0 {
			res.processedButFailed.Add(1)
		}
		if label == http.MethodPost {
			res.postErrors.Add(1)
		}
		fmt.Fprintf(os.Stderr, "keepalive: %s %s %s: %d %v %s\n", t.proxy, t.url, label, code, err, lucidErr)
	}
}

func report(targets []target, results []*tally, conns *counter) {
	fmt.Println("| proxy | upstream | requests | errors | of which plain POST | other errors (GET/PUT/POST+key) | processed twice | failed but processed | upstream connections |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	type sum struct{ total, errs, post, dup, conns int64 }
	sums := map[string]*sum{}
	var order []string
	for i, t := range targets {
		r := results[i]
		if sums[t.proxy] == nil {
			sums[t.proxy] = &sum{}
			order = append(order, t.proxy)
		}
		s := sums[t.proxy]
		s.total += r.total.Load()
		s.errs += r.errors.Load()
		s.post += r.postErrors.Load()
		s.dup += r.duplicates.Load()
		nc := int64(conns.get(fmt.Sprintf("%s %d", t.ip, t.spec.port)))
		s.conns += nc
		var other []string
		r.errsBy.Range(func(k, v any) bool {
			if k.(string) != http.MethodPost {
				other = append(other, fmt.Sprintf("%s %d", k, v.(*atomic.Int64).Load()))
			}
			return true
		})
		sort.Strings(other)
		o := "0"
		if len(other) > 0 {
			o = strings.Join(other, ", ")
		}
		fmt.Printf("| %s | %s | %d | %d | %d | %s | %d | %d | %d |\n", t.proxy, t.spec, r.total.Load(), r.errors.Load(),
			r.postErrors.Load(), o, r.duplicates.Load(), r.processedButFailed.Load(), nc)
	}
	fmt.Println()
	fmt.Println("| proxy | requests | errors | of which plain POST | processed twice | upstream connections |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, p := range order {
		s := sums[p]
		fmt.Printf("| %s | %d | %d | %d | %d | %d |\n", p, s.total, s.errs, s.post, s.dup, s.conns)
	}
}
