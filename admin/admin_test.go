package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// TestMetricsSeries checks that the cached series count as the labelled
// ones did.
func TestMetricsSeries(t *testing.T) {
	m := NewMetrics()
	rule := xmlconf.Pos{File: "a.conf", Line: 7, Col: 3}
	for range 3 {
		m.observe("*.example", rule, 200, time.Millisecond)
	}
	m.observe("", xmlconf.Pos{}, 404, time.Millisecond)
	// Kinds in turn: the last series met is not the one to count in.
	for _, status := range []int{200, 404, 404, 200, 503} {
		m.observe("*.example", rule, status, time.Millisecond)
	}
	fams, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case mt.GetCounter() != nil:
				got[key] = mt.GetCounter().GetValue()
			case mt.GetHistogram() != nil:
				got[key] = float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	for key, want := range map[string]float64{
		"ocsiproxy_requests_total{*.example,a.conf:7,200}": 5,
		"ocsiproxy_requests_total{*.example,a.conf:7,404}": 2,
		"ocsiproxy_requests_total{*.example,a.conf:7,503}": 1,
		"ocsiproxy_requests_total{-,-,404}":                1,
		"ocsiproxy_request_duration_seconds{*.example}":    8,
		"ocsiproxy_request_duration_seconds{-}":            1,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
}
