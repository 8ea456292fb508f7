package demoapp

import "github.com/spf13/pflag"

// AddFlags binds c to the command-line flags of `lucid demo-app`, so that the CLI and a
// test running an example's app command line in process read it the same way.
func (c *Config) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&c.Listen, "listen", "", "address to serve on, host:port (required)")
	f.StringVar(&c.Name, "name", "", "service name shown in answers (required)")
	f.StringVar(&c.Version, "version", "v1", "version shown in answers")
	f.StringArrayVar(&c.Calls, "call", nil, "URL to call on every request, through the proxy (repeatable)")
	f.StringVar(&c.Proxy, "proxy", "", "HTTP proxy for calls (default $"+ProxyEnv+"; empty: call directly)")
	f.Float64Var(&c.FailRate, "fail-rate", 0, "fraction of requests answered 500 on purpose (0 to 1)")
	f.DurationVar(&c.Delay, "delay", 0, "delay added before every answer (e.g. 200ms)")
	f.StringVar(&c.HealthPath, "health-path", "", `answer "success" on this path (a probe target); kubelet probes (User-Agent kube-probe/…) are counted and logged`)
	f.StringVar(&c.FailMode, "fail-mode", "", "fail on purpose after --fail-after: oom (the health path answers 500), refuse (stop listening), hang (the health path never answers)")
	f.DurationVar(&c.FailAfter, "fail-after", 0, "how long after start --fail-mode begins")
	f.DurationVar(&c.WatchInterval, "watch-interval", 0, "serve ?watch=true requests as endless watches, one JSON event per interval (e.g. 1s; 0: off)")
}
