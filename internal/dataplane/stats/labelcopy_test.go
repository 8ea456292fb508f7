package stats

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"unsafe"

	"github.com/lucid-mesh/lucid/internal/contract/celattr"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// reusable is a string over bytes the test writes again afterwards, as a label value cut
// from a request's head would be if the head's bytes were reused: a series must keep a
// copy of it, or the next scrape and the next request see other bytes.
func reusable(s string) (string, func()) {
	b := []byte(s)
	return unsafe.String(&b[0], len(b)), func() { copy(b, bytes.Repeat([]byte("#"), len(b))) }
}

// A series' label values are copies: a later write to the bytes a request's values came
// from (Record: the destination service; RecordWith: a value set from a request header)
// changes neither what a scrape shows nor which series the same labels count in.
func TestSeriesKeepCopiesOfTheirLabels(t *testing.T) {
	team, err := celattr.CompileValue("request.headers['x-team']")
	if err != nil {
		t.Fatal(err)
	}
	ov := &resource.StatsOverrides{Metrics: []resource.MetricOverride{
		{Name: "requests_total", Remove: []string{"source_principal"}, Upsert: []resource.TagValue{{Tag: "destination_version", Value: team}}},
	}}
	for _, tc := range []struct {
		name, label, want string
		record            func(s *Stats, v string)
	}{
		{"Record", "destination_service", "reviews.default.svc.cluster.local", func(s *Stats, v string) {
			in := outboundToReviews(200, 0)
			in.DestinationService = v
			s.Record(in)
		}},
		{"RecordWith", "destination_version", "books", func(s *Stats, v string) {
			s.RecordWith(outboundToReviews(200, 0), ov, http.Header{"X-Team": {v}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(productpage)
			v, reuse := reusable(tc.want)
			tc.record(s, v)
			reuse()
			tc.record(s, tc.want)
			fams, _ := scrape(t, s)
			series := fams["istio_requests_total"].GetMetric()
			if len(series) != 1 || labelsOf(series[0])[tc.label] != tc.want || series[0].GetCounter().GetValue() != 2 {
				var got []string
				for _, m := range series {
					got = append(got, fmt.Sprintf("%s %q counting %v", tc.label, labelsOf(m)[tc.label], m.GetCounter().GetValue()))
				}
				t.Fatalf("istio_requests_total: %q; want one series, %s %q counting 2", got, tc.label, tc.want)
			}
		})
	}
}
