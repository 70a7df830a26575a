package telemetry

import (
	"errors"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// Carrying returns a Registerer onto reg for a process that builds its
// pipeline again on a configuration reload, after the previous one
// stopped. A collector registered again replaces the one registered before
// it, and carries over its counts: counters, and histograms' and
// summaries' counts and sums, go on from what the replaced collector had
// counted, so that a reload is no counter reset to Prometheus and the
// totals cover the process's life; gauges are the new collector's. A
// series only the replaced collector had stays, at its last value.
func Carrying(reg prometheus.Registerer) prometheus.Registerer {
	return carrying{reg}
}

type carrying struct{ prometheus.Registerer }

func (r carrying) Register(c prometheus.Collector) error {
	err := r.Registerer.Register(c)
	var already prometheus.AlreadyRegisteredError
	if !errors.As(err, &already) {
		return err
	}
	// The previous pipeline has stopped: its counts are final.
	base := snapshot(already.ExistingCollector)
	r.Registerer.Unregister(already.ExistingCollector)
	return r.Registerer.Register(&carried{Collector: c, base: base})
}

func (r carrying) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// carried is a collector whose counts start from base.
type carried struct {
	prometheus.Collector
	base map[string]frozen // by seriesKey
}

// frozen is a series as a replaced collector last had it.
type frozen struct {
	desc *prometheus.Desc
	m    *dto.Metric
}

func (f frozen) Desc() *prometheus.Desc { return f.desc }

func (f frozen) Write(out *dto.Metric) error {
	proto.Merge(out, f.m)
	return nil
}

// summed is a live series plus what a replaced collector had counted.
type summed struct {
	prometheus.Metric
	base *dto.Metric
}

func (s summed) Write(out *dto.Metric) error {
	if err := s.Metric.Write(out); err != nil {
		return err
	}
	add(out, s.base)
	return nil
}

func (c *carried) Collect(ch chan<- prometheus.Metric) {
	seen := make(map[string]bool, len(c.base))
	for _, m := range collect(c.Collector) {
		var d dto.Metric
		if err := m.Write(&d); err == nil {
			k := seriesKey(m.Desc(), &d)
			if b, ok := c.base[k]; ok {
				seen[k] = true
				m = summed{Metric: m, base: b.m}
			}
		}
		ch <- m
	}
	for k, b := range c.base {
		if !seen[k] {
			ch <- b
		}
	}
}

// snapshot returns the counting series of c (counters, histograms,
// summaries) with what they count now.
func snapshot(c prometheus.Collector) map[string]frozen {
	out := map[string]frozen{}
	for _, m := range collect(c) {
		d := &dto.Metric{}
		if err := m.Write(d); err != nil || d.Counter == nil && d.Histogram == nil && d.Summary == nil {
			continue
		}
		out[seriesKey(m.Desc(), d)] = frozen{desc: m.Desc(), m: d}
	}
	return out
}

func collect(c prometheus.Collector) []prometheus.Metric {
	ch := make(chan prometheus.Metric, 16)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	var out []prometheus.Metric
	for m := range ch {
		out = append(out, m)
	}
	return out
}

// seriesKey names a series: its metric and label values.
func seriesKey(desc *prometheus.Desc, m *dto.Metric) string {
	var b strings.Builder
	b.WriteString(desc.String())
	labels := append([]*dto.LabelPair(nil), m.GetLabel()...)
	sort.Slice(labels, func(i, j int) bool { return labels[i].GetName() < labels[j].GetName() })
	for _, l := range labels {
		b.WriteByte(0)
		b.WriteString(l.GetName())
		b.WriteByte('=')
		b.WriteString(l.GetValue())
	}
	return b.String()
}

// add adds base's counts to out, a series of the same metric.
func add(out, base *dto.Metric) {
	switch {
	case out.Counter != nil && base.Counter != nil:
		out.Counter.Value = proto.Float64(out.Counter.GetValue() + base.Counter.GetValue())
	case out.Histogram != nil && base.Histogram != nil:
		h, bh := out.Histogram, base.Histogram
		h.SampleCount = proto.Uint64(h.GetSampleCount() + bh.GetSampleCount())
		h.SampleSum = proto.Float64(h.GetSampleSum() + bh.GetSampleSum())
		for _, bucket := range h.Bucket {
			for _, old := range bh.Bucket {
				if old.GetUpperBound() == bucket.GetUpperBound() {
					bucket.CumulativeCount = proto.Uint64(bucket.GetCumulativeCount() + old.GetCumulativeCount())
				}
			}
		}
	case out.Summary != nil && base.Summary != nil:
		s, bs := out.Summary, base.Summary
		s.SampleCount = proto.Uint64(s.GetSampleCount() + bs.GetSampleCount())
		s.SampleSum = proto.Float64(s.GetSampleSum() + bs.GetSampleSum())
	}
}
