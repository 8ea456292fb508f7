package stats

import (
	"net/http"
	"testing"

	"github.com/lucid-mesh/lucid/internal/contract/celattr"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// TestRecordWithOverrides: a dropped metric has no series at all, a removed label is
// empty (absent once Prometheus ingests it), an upserted one takes its expression's
// value, and the other metrics keep every label.
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
	if l["source_principal"] != "" || l["destination_version"] != "books" || l["source_workload"] != "productpage-v1" || req[0].GetCounter().GetValue() != 2 {
		t.Errorf("istio_requests_total %v = %v", l, req[0].GetCounter().GetValue())
	}
	resp := fams["istio_response_bytes"].GetMetric()
	if len(resp) != 1 || labelsOf(resp[0])["source_principal"] != productpage.Principal || labelsOf(resp[0])["destination_version"] != "v1" {
		t.Errorf("istio_response_bytes changed by another metric's override:\n%s", body)
	}

	// Without overrides RecordWith is Record.
	s2 := New(productpage)
	s2.RecordWith(outboundToReviews(200, 0), nil, nil)
	if fams, _ := scrape(t, s2); len(fams["istio_request_bytes"].GetMetric()) != 1 {
		t.Error("RecordWith without overrides did not record every metric")
	}
}
