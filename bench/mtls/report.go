package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// report is the Markdown of a run: every measurement, then the medians, the bound on
// keep-alive traffic and the cost of a handshake.
func report(all []sample) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "bench/mtls, finished %s on %s (CPUs %s, %s); %d rounds of %s per measurement, %d connections, 1 KiB answers.\n",
		time.Now().UTC().Format("2006-01-02T15:04Z"), host, onlineCPUs(), cpuModel(), *rounds, *duration, *conns)
	b.WriteString(versions())
	fmt.Fprintf(&b, "Network namespace: tcp_max_tw_buckets %s, ip_local_port_range %s.\n", sysctl("tcp_max_tw_buckets"), sysctl("ip_local_port_range"))
	b.WriteString("\n| round | between the proxies | connections | pair | requests/s | pair CPU µs/request | client side | server side | server-side connections per request | errors | load average (1 min) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range all {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %.0f | %.1f | %.1f | %.1f | %.2f | %d | %s |\n",
			s.round, s.proto, s.mode, s.target, s.rate, s.pairUS, s.cliUS, s.srvUS, s.srvConnsPerReq, s.errs, s.load)
	}

	type key struct{ proto, mode, target string }
	med := map[key]sample{}
	for _, s := range all {
		k := key{s.proto, s.mode, s.target}
		if _, ok := med[k]; ok {
			continue
		}
		var g []sample
		for _, o := range all {
			if (key{o.proto, o.mode, o.target}) == k {
				g = append(g, o)
			}
		}
		med[k] = sample{
			proto: s.proto, mode: s.mode, target: s.target,
			rate:   median(g, func(x sample) float64 { return x.rate }),
			pairUS: median(g, func(x sample) float64 { return x.pairUS }),
			cliUS:  median(g, func(x sample) float64 { return x.cliUS }),
			srvUS:  median(g, func(x sample) float64 { return x.srvUS }),
			load:   loadRange(g),
		}
	}
	plainOf := map[string]string{"lucid-mtls": "lucid-plain", "lucid-mtls-x25519": "lucid-plain", "haproxy-tls": "haproxy-plain"}
	b.WriteString("\nMedians. \"TLS adds\" compares a pair's CPU per request with its own plaintext pair's.\n\n")
	b.WriteString("| between the proxies | connections | pair | requests/s | pair CPU µs/request | client side | server side | TLS adds | requests (handshakes with TLS) per CPU second | load average |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, proto := range split(*protos) {
		for _, mode := range split(*modes) {
			for _, t := range split(*targets) {
				m, ok := med[key{proto, mode, t}]
				if !ok {
					continue
				}
				adds := "—"
				if pt, ok := plainOf[t]; ok {
					if p, ok := med[key{proto, mode, pt}]; ok && p.pairUS > 0 {
						adds = fmt.Sprintf("%+.0f %% (%+.1f µs)", (m.pairUS/p.pairUS-1)*100, m.pairUS-p.pairUS)
					}
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %.1f | %.1f | %.1f | %s | %.0f | %s |\n",
					proto, mode, t, m.rate, m.pairUS, m.cliUS, m.srvUS, adds, 1e6/m.pairUS, m.load)
			}
		}
	}
	b.WriteString("\n")
	for _, proto := range split(*protos) {
		tls, ok1 := med[key{proto, "keepalive", "lucid-mtls"}]
		plain, ok2 := med[key{proto, "keepalive", "lucid-plain"}]
		if ok1 && ok2 {
			pct := (tls.pairUS/plain.pairUS - 1) * 100
			verdict := "within"
			if pct > 25 {
				verdict = "OVER"
			}
			fmt.Fprintf(&b, "- %s keep-alive: mutual TLS adds %+.1f %% CPU per request to Lucid's pair (%.1f → %.1f µs): %s the 25 %% bound", proto, pct, plain.pairUS, tls.pairUS, verdict)
			if h, ok := med[key{proto, "keepalive", "haproxy-tls"}]; ok {
				if hp, ok := med[key{proto, "keepalive", "haproxy-plain"}]; ok {
					fmt.Fprintf(&b, "; HAProxy's TLS adds %+.1f %% (%.1f → %.1f µs)", (h.pairUS/hp.pairUS-1)*100, hp.pairUS, h.pairUS)
				}
			}
			b.WriteString(".\n")
		}
		for _, t := range []string{"lucid-mtls", "lucid-mtls-x25519", "haproxy-tls"} {
			tls, ok1 := med[key{proto, "newconn", t}]
			plain, ok2 := med[key{proto, "newconn", plainOf[t]}]
			if ok1 && ok2 {
				hs := tls.pairUS - plain.pairUS
				fmt.Fprintf(&b, "- %s new connections, %s: a full handshake costs the pair %.0f µs of CPU (client %.0f, server %.0f) beyond a plaintext connection: %.0f handshakes per CPU second; %.0f connections with their request per CPU second in all.\n",
					proto, t, hs, tls.cliUS-plain.cliUS, tls.srvUS-plain.srvUS, 1e6/hs, 1e6/tls.pairUS)
			}
		}
	}
	return b.String()
}

func median(g []sample, f func(sample) float64) float64 {
	v := make([]float64, len(g))
	for i, s := range g {
		v[i] = f(s)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// loadRange is the lowest and highest load average of g's measurements.
func loadRange(g []sample) string {
	lo, hi := g[0].load, g[0].load
	for _, s := range g {
		var x, l, h float64
		_, _ = fmt.Sscan(s.load, &x) // a load not read compares as 0
		_, _ = fmt.Sscan(lo, &l)
		_, _ = fmt.Sscan(hi, &h)
		if x < l {
			lo = s.load
		}
		if x > h {
			hi = s.load
		}
	}
	if lo == hi {
		return lo
	}
	return lo + " – " + hi
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// sysctl is a net.ipv4 setting of the bench's network namespace.
func sysctl(name string) string {
	b, err := os.ReadFile("/proc/sys/net/ipv4/" + name)
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// onlineCPUs is the machine's CPUs (not the bench's affinity).
func onlineCPUs() string {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
