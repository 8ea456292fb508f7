package accesslog

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/lucid-mesh/lucid/internal/contract/logformat"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

func parts(t *testing.T, s string) []logformat.Part {
	t.Helper()
	p, err := logformat.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCustomFormats: a provider's own text and JSON formats give the lines Envoy writes
// for them: header values with their fallbacks and lengths, "-" (text) and null (JSON)
// for what is unknown, numbers unquoted in JSON; a TCP connection's line has no request.
func TestCustomFormats(t *testing.T) {
	text := &resource.LogFormat{Text: parts(t, "%START_TIME% %REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %RESPONSE_CODE% %REQ(X-USER?X-TEAM)% %REQ(X-MISSING)% %REQ(USER-AGENT):4% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %UPSTREAM_CLUSTER% 100%%\n")}
	json := &resource.LogFormat{JSON: []resource.LogField{
		{Key: "code", Value: parts(t, "%RESPONSE_CODE%")},
		{Key: "peer", Value: parts(t, "%DOWNSTREAM_REMOTE_ADDRESS%")},
		{Key: "route", Value: parts(t, "%REQ(:METHOD)% %REQ(:PATH)%")},
		{Key: "sent", Value: parts(t, "%BYTES_SENT%")},
		{Key: "user", Value: parts(t, "%REQ(X-USER)%")},
	}}
	h := http.Header{"X-Team": {"books"}}
	for _, tc := range []struct {
		name string
		in   *streaminfo.Info
		h    http.Header
		f    *resource.LogFormat
		want string
	}{
		{"text", fullInfo(), h, text, "2026-11-21T10:00:00.123Z GET /reviews/0 200 books - curl 41 127.0.1.1 outbound|9080|v1|reviews.default.svc.cluster.local 100%\n"},
		{"json", fullInfo(), h, json, `{"code":200,"peer":"127.0.1.1:40112","route":"GET /reviews/0","sent":358,"user":null}` + "\n"},
		{"text, TCP", tcpInfo(), nil, text, "2026-11-21T10:00:00.123Z - - 0 - - - - 127.0.1.1 outbound|9080|v1|reviews.default.svc.cluster.local 100%\n"},
		{"json, TCP", tcpInfo(), nil, json, `{"code":0,"peer":"127.0.1.1:40112","route":"- -","sent":358,"user":null}` + "\n"},
	} {
		var b bytes.Buffer
		l := New(&b, Text)
		l.LogWith(tc.in, tc.h, tc.f)
		l.Flush()
		if b.String() != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, b.String(), tc.want)
		}
	}
}

// TestRouterWritesProviderFormat: an access log with its own format writes its lines in
// it to the same file the proxy's TEXT lines go to.
func TestRouterWritesProviderFormat(t *testing.T) {
	var def bytes.Buffer
	defLog := New(&def, Text)
	rt := NewRouter(defLog, "/dev/stdout", Text, nil)
	defer rt.Close()
	f := &resource.LogFormat{Text: parts(t, "custom %RESPONSE_CODE% %UPSTREAM_HOST%\n")}
	rt.Log(fullInfo(), []resource.AccessLog{{Path: "/dev/stdout", Format: f}}, http.Header{})
	rt.LogConnection(tcpInfo(), []resource.AccessLog{{Path: "/dev/stdout", Format: f}})
	rt.Log(fullInfo(), nil, http.Header{})
	defLog.Flush()
	want := "custom 200 127.0.1.2:9080\ncustom 0 127.0.1.2:9080\n" + FormatText(fullInfo())
	if def.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", def.String(), want)
	}
}

func tcpInfo() *streaminfo.Info {
	in := fullInfo()
	in.Method, in.Path, in.Protocol, in.ResponseCode, in.ResponseCodeDetails = "", "", "", 0, ""
	in.Authority, in.UserAgent, in.RequestID, in.RouteName, in.UpstreamServiceTime = "", "", "", "", -1
	return in
}
