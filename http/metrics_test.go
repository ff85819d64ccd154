package http_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
	apihttp "github.com/ctibridge/ctibridge/http"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// /metrics is a prometheus registry: the established names with their
// types and labels (bench/, faults/ and dashboards read them), the parts'
// samples, Go and process collectors and ctibridge_build_info. A sample
// that clashes with another is left out without losing the rest.
func TestMetricsRegistry(t *testing.T) {
	r := newRig(t, rigOptions{setup: func(s *apihttp.Server) {
		s.Version, s.Commit = "1.2.3", "abc1234"
		s.Metrics = func() []apihttp.Metric {
			const help = "Webhook delivery attempts and outcomes."
			return []apihttp.Metric{
				{Name: "ctibridge_deliveries_total", Help: help, Type: "counter", Labels: map[string]string{"outcome": "delivered"}, Value: 7},
				{Name: "ctibridge_deliveries_total", Help: help, Type: "counter", Labels: map[string]string{"outcome": "dead"}, Value: 2},
				{Name: "ctibridge_deliveries_in_flight", Help: "Webhook requests under way.", Type: "gauge", Value: 3},
				// Same name and labels, another help: a clash, left out.
				{Name: "ctibridge_deliveries_in_flight", Help: "Another meaning.", Type: "gauge", Value: 9},
			}
		}
	}})
	res := r.call("GET", "/metrics", "", nil)
	if res.status != 200 || !strings.HasPrefix(res.header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %d %s\n%s", res.status, res.header.Get("Content-Type"), res.body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(res.body))
	if err != nil {
		t.Fatalf("not the prometheus text format: %v\n%s", err, res.body)
	}
	want := map[string]dto.MetricType{
		"ctibridge_pbx_events_ingested_total":  dto.MetricType_COUNTER,
		"ctibridge_events_committed_total":     dto.MetricType_COUNTER,
		"ctibridge_store_commit_errors_total":  dto.MetricType_COUNTER,
		"ctibridge_pbx_events_dropped_total":   dto.MetricType_COUNTER,
		"ctibridge_reconciled_total":           dto.MetricType_COUNTER,
		"ctibridge_invariant_violations_total": dto.MetricType_COUNTER,
		"ctibridge_engine_queue_length":        dto.MetricType_GAUGE,
		"ctibridge_pbx_link_up":                dto.MetricType_GAUGE,
		"ctibridge_store_writable":             dto.MetricType_GAUGE,
		"ctibridge_live_calls":                 dto.MetricType_GAUGE,
		"ctibridge_delivery_backlog":           dto.MetricType_GAUGE,
		"ctibridge_deliveries_total":           dto.MetricType_COUNTER,
		"ctibridge_deliveries_in_flight":       dto.MetricType_GAUGE,
		"ctibridge_build_info":                 dto.MetricType_GAUGE,
		"go_goroutines":                        dto.MetricType_GAUGE,
		"go_memstats_heap_alloc_bytes":         dto.MetricType_GAUGE,
		"process_resident_memory_bytes":        dto.MetricType_GAUGE,
		"process_open_fds":                     dto.MetricType_GAUGE,
	}
	for name, typ := range want {
		f, ok := fams[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("%s: type %s, want %s", name, f.GetType(), typ)
		}
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		for _, m := range fams[name].GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if len(got) != len(labels) {
				continue
			}
			match := true
			for k, v := range labels {
				match = match && got[k] == v
			}
			if match {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue(), true
				}
				return m.GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ctibridge_build_info", map[string]string{"version": "1.2.3", "commit": "abc1234"}, 1},
		{"ctibridge_deliveries_total", map[string]string{"outcome": "delivered"}, 7},
		{"ctibridge_deliveries_total", map[string]string{"outcome": "dead"}, 2},
		{"ctibridge_deliveries_in_flight", nil, 3},
		{"ctibridge_pbx_link_up", nil, 1},
	} {
		if v, ok := value(c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if n := len(fams["ctibridge_deliveries_in_flight"].GetMetric()); n != 1 {
		t.Errorf("ctibridge_deliveries_in_flight has %d samples; the clashing one must be left out", n)
	}

	// The dispatcher's families, after a real call through the rig: each
	// delivery to the crm endpoint is one attempt, one completed delivery
	// and one latency; the ringing event is one screen pop; nothing is left.
	// Counted from a quiet start: what the rig's start committed (the PBX
	// resync) may have been read from the store before Notify told of it.
	type counts struct {
		received, ringing, latencies, pops int
		attempts, completed, backlog       float64
		found                              bool
	}
	scrape := func() counts {
		res := r.call("GET", "/metrics", "", nil)
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err = p.TextToMetricFamilies(bytes.NewReader(res.body))
		if err != nil {
			t.Fatalf("not the prometheus text format: %v", err)
		}
		var c counts
		for _, d := range r.rcv.Deliveries() {
			c.received++
			if d.Type == bridge.EventCallRinging {
				c.ringing++
			}
		}
		c.latencies = int(histogram(fams["ctibridge_delivery_latency_seconds"], map[string]string{"endpoint": "crm"}).GetSampleCount())
		c.pops = int(histogram(fams["ctibridge_screen_pop_latency_seconds"], nil).GetSampleCount())
		c.attempts, _ = value("ctibridge_delivery_attempts_total", map[string]string{"endpoint": "crm", "result": "ok"})
		c.completed, _ = value("ctibridge_deliveries_completed_total", map[string]string{"endpoint": "crm", "outcome": "delivered"})
		c.backlog, c.found = value("ctibridge_endpoint_delivery_backlog", map[string]string{"endpoint": "crm"})
		return c
	}
	var base counts
	r.waitFor("no backlog at start", func() bool {
		base = scrape()
		return base.found && base.backlog == 0 && float64(base.received) == base.attempts
	})
	r.liveCall("inbound-call-basic")
	var last counts
	r.waitFor("the call's deliveries in /metrics", func() bool {
		c := scrape()
		last = c
		n := c.received - base.received
		return n >= 2 && c.ringing-base.ringing == 1 && c.latencies-base.latencies == n && c.pops-base.pops == 1 &&
			c.attempts-base.attempts == float64(n) && c.completed-base.completed == float64(n) && c.found && c.backlog == 0
	})
	t.Logf("start %+v, after the call %+v", base, last)
	for name, typ := range map[string]dto.MetricType{
		"ctibridge_delivery_latency_seconds":   dto.MetricType_HISTOGRAM,
		"ctibridge_screen_pop_latency_seconds": dto.MetricType_HISTOGRAM,
		"ctibridge_delivery_attempts_total":    dto.MetricType_COUNTER,
		"ctibridge_deliveries_completed_total": dto.MetricType_COUNTER,
		"ctibridge_endpoint_delivery_backlog":  dto.MetricType_GAUGE,
		"ctibridge_deliveries_total":           dto.MetricType_COUNTER, // the older, mixed family stays
	} {
		if f := fams[name]; f == nil || f.GetType() != typ {
			t.Errorf("%s: %v, want a %s", name, f, typ)
		}
	}
}

// histogram finds the histogram with exactly these labels.
func histogram(f *dto.MetricFamily, labels map[string]string) *dto.Histogram {
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			match = match && labels[l.GetName()] == l.GetValue()
		}
		if match {
			return m.GetHistogram()
		}
	}
	return nil
}
