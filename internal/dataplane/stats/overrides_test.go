package stats

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/contract/celattr"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// TestRecordWithOverrides: a dropped metric has no series at all, a removed label is
// left out of the series in the exposition (as Istio's proxies leave it out), an
// upserted one takes its expression's value, and the other metrics keep every label.
func TestRecordWithOverrides(t *testing.T) {
	s := New(productpage)
	host, err := celattr.CompileValue("request.headers['x-team']")
	if err != nil {
		t.Fatal(err)
	}
	ov := &resource.StatsOverrides{Metrics: []resource.MetricOverride{
		{Name: "request_bytes", Drop: true},
		{Name: "requests_total", Remove: []string{"source_principal"}, Upsert: []resource.TagValue{{Tag: "destination_version", Value: host}}},
	}}
	s.RecordWith(outboundToReviews(200, 0), ov, http.Header{"X-Team": {"books"}})
	s.RecordWith(outboundToReviews(200, 0), ov, http.Header{"X-Team": {"books"}})

	fams, body := scrape(t, s)
	if _, ok := fams["istio_request_bytes"]; ok {
		t.Errorf("a dropped metric is reported:\n%s", body)
	}
	req := fams["istio_requests_total"].GetMetric()
	if len(req) != 1 {
		t.Fatalf("istio_requests_total: %d series\n%s", len(req), body)
	}
	l := labelsOf(req[0])
	if _, ok := l["source_principal"]; ok || len(l) != len(LabelNames)-1 || l["destination_version"] != "books" || l["source_workload"] != "productpage-v1" || req[0].GetCounter().GetValue() != 2 {
		t.Errorf("istio_requests_total %v = %v", l, req[0].GetCounter().GetValue())
	}
	resp := fams["istio_response_bytes"].GetMetric()
	if len(resp) != 1 || labelsOf(resp[0])["source_principal"] != productpage.Principal || labelsOf(resp[0])["destination_version"] != "v1" {
		t.Errorf("istio_response_bytes changed by another metric's override:\n%s", body)
	}

	// What a scrape shows: the series without the label, not with an empty one.
	if strings.Contains(body, `source_principal=""`) || !regexp.MustCompile(`(?m)^istio_requests_total\{[^}]*destination_version="books"[^}]*\} 2$`).MatchString(body) ||
		regexp.MustCompile(`(?m)^istio_requests_total\{[^}]*source_principal=`).MatchString(body) {
		t.Errorf("exposition:\n%s", body)
	}

	// Another side without the removal (a listener without overrides, or with other
	// ones) reports the full label set in the same family, and a later override that
	// sets a removed label again brings it back.
	s.Record(outboundToReviews(503, 0))
	again, err := celattr.CompileValue("'again'")
	if err != nil {
		t.Fatal(err)
	}
	s.RecordWith(outboundToReviews(200, 0), &resource.StatsOverrides{Metrics: []resource.MetricOverride{
		{Remove: []string{"source_principal", "request_protocol"}},
		{Name: "requests_total", Upsert: []resource.TagValue{{Tag: "source_principal", Value: again}}},
	}}, nil)
	fams, body = scrape(t, s)
	got := map[int]int{} // label count → series
	for _, m := range fams["istio_requests_total"].GetMetric() {
		got[len(m.GetLabel())]++
		if l := labelsOf(m); len(l) == len(LabelNames)-1 && l["source_principal"] != "again" && l["destination_version"] != "books" {
			t.Errorf("series %v: want source_principal set again", l)
		}
	}
	if got[len(LabelNames)] != 1 || got[len(LabelNames)-1] != 2 || len(fams["istio_response_bytes"].GetMetric()) != 3 {
		t.Errorf("istio_requests_total label counts %v (want one full series, two with one label left out):\n%s", got, body)
	}
	// ALL_METRICS' removal: istio_response_bytes loses both labels there.
	var both int
	for _, m := range fams["istio_response_bytes"].GetMetric() {
		l := labelsOf(m)
		_, sp := l["source_principal"]
		_, rp := l["request_protocol"]
		if !sp && !rp && len(l) == len(LabelNames)-2 {
			both++
		}
	}
	if both != 1 || strings.Contains(body, `request_protocol=""`) {
		t.Errorf("istio_response_bytes under an override of every metric: %d series without both labels:\n%s", both, body)
	}

	// Without overrides RecordWith is Record.
	s2 := New(productpage)
	s2.RecordWith(outboundToReviews(200, 0), nil, nil)
	if fams, _ := scrape(t, s2); len(fams["istio_request_bytes"].GetMetric()) != 1 {
		t.Error("RecordWith without overrides did not record every metric")
	}
}

// BenchmarkRecordWithRemove is a request recorded under a server side's overrides that
// remove a label from one metric and drop another (no CEL value): the series lookup is
// the hot path, and it allocates nothing once the series exists.
func BenchmarkRecordWithRemove(b *testing.B) {
	s := New(productpage)
	in := outboundToReviews(200, 0)
	ov := &resource.StatsOverrides{Metrics: []resource.MetricOverride{
		{Name: "request_bytes", Drop: true},
		{Name: "requests_total", Remove: []string{"request_protocol", "source_principal"}},
	}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.RecordWith(in, ov, nil)
		}
	})
}
