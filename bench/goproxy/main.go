// Command goproxy is the Go standard library's reverse proxy as a peer in
// bench/saturate.sh: net/http's server and httputil.ReverseProxy with a keep-alive
// Transport, HTTP/1.1 or h2c on both sides, nothing else. It shows what a proxy
// written on Go's standard library costs per request on the same machine and load.
//
//	goproxy -listen 127.0.0.1:8080 -upstream 127.0.0.1:9090 [-h2c]
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "", "address to serve on")
	upstream := flag.String("upstream", "", "host:port of the upstream")
	h2c := flag.Bool("h2c", false, "h2c (prior knowledge) on both sides instead of HTTP/1.1")
	flag.Parse()
	if *listen == "" || *upstream == "" {
		fmt.Fprintln(os.Stderr, "goproxy: -listen and -upstream are required")
		os.Exit(2)
	}
	t := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}
	srv := &http.Server{Addr: *listen, ReadHeaderTimeout: 10 * time.Second}
	if *h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		t.Protocols = &p
		srv.Protocols = &p
	}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: *upstream})
	rp.Transport = t
	rp.ErrorLog = log.New(os.Stderr, "goproxy: ", 0)
	srv.Handler = rp
	log.Fatal(srv.ListenAndServe())
}
