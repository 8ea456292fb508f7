package discovery

import (
	"net/http"
)

// debugIndex is the debug port's root: what a person who opens the URL `lucid up` prints
// can look at, and which CLI command reads it.
func debugIndex(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(debugIndexHTML))
}

const debugIndexHTML = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Lucid control plane</title></head>
<body>
<h1>Lucid control plane: debug port</h1>
<p><a href="/dashboard/">The dashboard</a>: the mesh's topology, golden signals, explained errors and configuration (<code>lucid dashboard</code>).</p>
<ul>
<li><a href="/ready">/ready</a>: 200 once the first configuration is published</li>
<li><a href="/debug/syncz">/debug/syncz</a>: every connected proxy and the configuration version it holds per xDS type (<code>lucid proxy-status</code>)</li>
<li><a href="/debug/diagnostics">/debug/diagnostics</a>: the current configuration problems, naming file, object and field</li>
<li><a href="/debug/analyze">/debug/analyze</a>: Istio's analysis of the configuration being served (<code>lucid analyze --online</code>)</li>
<li>/debug/tap?workload=&lt;workload&gt;: a live stream of one proxy's requests (<code>lucid tap</code>, <code>lucid top</code>)</li>
<li>/debug/config_dump?proxyID=&lt;node id&gt;: what the control plane sends one proxy (<code>lucid proxy-status &lt;workload&gt;</code> compares it with the proxy's own)</li>
</ul>
<p>Each proxy's admin API (<code>http://&lt;workload address&gt;:15000/</code>) lists what it serves; <code>lucid proxy-config</code> and <code>lucid why</code> read it.</p>
</body></html>
`
