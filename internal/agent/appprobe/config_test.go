package appprobe

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // "" = valid
	}{
		{"empty", ``, ""},
		{"istio http", `{"/app-health/hello/livez":{"httpGet":{"port":80}},"/app-health/hello/readyz":{"httpGet":{"port":3333,"scheme":"HTTPS"}}}`, ""},
		{"istio path", `{"/app-health/hello/readyz":{"httpGet":{"path":"/ip","port":8000}}}`, ""},
		{"istio tcp", `{"/app-health/hello/livez":{"tcpSocket":{"port":80}}}`, ""},
		{"istio grpc null service", `{"/app-health/foo/livez":{"grpc":{"port":1234,"service":null}}}`, ""},
		{"istio grpc + lifecycle", `{"/app-health/foo/startupz":{"grpc":{"port":1234,"service":"foo"},"timeoutSeconds":10},
			"/app-lifecycle/foo/prestopz":{"httpGet":{"path":"/foo","port":1234,"host":"foo","scheme":"HTTP"}}}`, ""},
		{"istio poststart", `{"/app-lifecycle/hello/poststartz":{"tcpSocket":{"port":93}},"/app-lifecycle/hello/prestopz":{"httpGet":{"port":91}}}`, ""},
		{"bad json", `{"/app-health/a/livez":`, "ISTIO_KUBE_APP_PROBERS: failed to decode app prober: unexpected EOF"},
		{"bad path", `{"/app-health/a/alive":{"tcpSocket":{"port":80}}}`,
			`ISTIO_KUBE_APP_PROBERS: key "/app-health/a/alive": invalid path, must be in form of regex pattern ^/(app-health|app-lifecycle)/[^/]+/(livez|readyz|startupz|prestopz|poststartz)$`},
		{"no type", `{"/app-health/a/livez":{"timeoutSeconds":1}}`,
			`ISTIO_KUBE_APP_PROBERS: key "/app-health/a/livez": invalid prober type, must be one of type httpGet, tcpSocket or gRPC`},
		{"null prober", `{"/app-health/a/livez":null}`,
			`ISTIO_KUBE_APP_PROBERS: key "/app-health/a/livez": invalid prober type, must be one of type httpGet, tcpSocket or gRPC`},
		{"two types", `{"/app-health/a/livez":{"httpGet":{"port":80},"tcpSocket":{"port":80}}}`,
			`ISTIO_KUBE_APP_PROBERS: key "/app-health/a/livez": invalid prober type, must be one of type httpGet, tcpSocket or gRPC`},
		{"named port", `{"/app-health/a/readyz":{"httpGet":{"port":"http"}}}`,
			`ISTIO_KUBE_APP_PROBERS: key "/app-health/a/readyz": httpGet.port: invalid prober config for /app-health/a/readyz, the port must be int type`},
		{"named tcp port", `{"/app-health/a/readyz":{"tcpSocket":{"port":"db"}}}`,
			`ISTIO_KUBE_APP_PROBERS: key "/app-health/a/readyz": tcpSocket.port: invalid prober config for /app-health/a/readyz, the port must be int type`},
		{"port range", `{"/app-health/a/readyz":{"httpGet":{"port":70000}}}`,
			`ISTIO_KUBE_APP_PROBERS: key "/app-health/a/readyz": httpGet.port: 70000 is not a port number (1-65535)`},
		{"grpc port", `{"/app-health/a/readyz":{"grpc":{"port":0}}}`,
			`ISTIO_KUBE_APP_PROBERS: key "/app-health/a/readyz": grpc.port: 0 is not a port number (1-65535)`},
		{"scheme", `{"/app-health/a/readyz":{"httpGet":{"port":80,"scheme":"FTP"}}}`,
			`ISTIO_KUBE_APP_PROBERS: key "/app-health/a/readyz": httpGet.scheme: "FTP" is neither HTTP nor HTTPS`},
		{"negative timeout", `{"/app-health/a/readyz":{"httpGet":{"port":80},"timeoutSeconds":-1}}`,
			`ISTIO_KUBE_APP_PROBERS: key "/app-health/a/readyz": timeoutSeconds: -1 is negative`},
		{"trailing", `{} {}`, "ISTIO_KUBE_APP_PROBERS: failed to decode app prober: trailing data after the JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	c, p := Split("/app-health/jetty/livez")
	if c != "jetty" || p != "livez" {
		t.Fatal(c, p)
	}
}

func FuzzParseAppProbers(f *testing.F) {
	for _, s := range []string{
		`{"/app-health/hello/livez":{"httpGet":{"port":80}}}`,
		`{"/app-health/foo/startupz":{"grpc":{"port":1234,"service":"foo"},"timeoutSeconds":10}}`,
		`{"/app-lifecycle/hello/poststartz":{"tcpSocket":{"port":"x"}}}`,
		`{"/app-health/a/livez":null}`, ``, `[]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := Parse(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), EnvName+": ") {
				t.Fatalf("error does not name the env var: %v", err)
			}
			return
		}
		// Every accepted entry can be served: a valid path and one probe with a port.
		for path, p := range cfg {
			if c, probe := Split(path); c == "" || probe == "" {
				t.Fatalf("accepted bad path %q", path)
			}
			if port := p.port(); port <= 0 || port > 65535 {
				t.Fatalf("accepted bad port %d for %q", port, path)
			}
		}
		if _, err := New(Options{Config: cfg}); err != nil {
			t.Fatal(err)
		}
	})
}
