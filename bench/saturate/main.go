// Command saturate is the closed-loop HTTP/1.1 load of bench/saturate.sh: C keep-alive
// connections, each sending the next GET as soon as the previous answer has arrived, for
// a duration (bench/internal/httpload); it prints the number of answers (status 200 with
// the whole body) and errors.
//
//	saturate -url 127.0.0.1:8080/echo -c 16 -d 10s
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/lucid-mesh/lucid/bench/internal/httpload"
)

func main() {
	target := flag.String("url", "", "host:port/path to GET")
	conns := flag.Int("c", 16, "connections")
	dur := flag.Duration("d", 10*time.Second, "duration")
	flag.Parse()
	addr, path, ok := strings.Cut(*target, "/")
	if !ok || addr == "" {
		fmt.Fprintln(os.Stderr, "saturate: -url host:port/path")
		os.Exit(2)
	}
	r := httpload.Run(httpload.Options{Addr: addr, Head: "GET /" + path + " HTTP/1.1\r\nHost: " + addr + "\r\n", Conns: *conns, Duration: *dur})
	fmt.Printf("requests %d errors %d seconds %.3f\n", r.OK, r.Failed, dur.Seconds())
}
