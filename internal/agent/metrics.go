package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the agent's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg          *prometheus.Registry
	scrapes      *prometheus.CounterVec
	scrapeErrors *prometheus.CounterVec
}

// newMetrics registers a's metrics: per source, reads and failed reads;
// the totals of a.stats; the spool's size.
func newMetrics(a *Agent) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		scrapes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "neocloud_agent_scrapes_total", Help: "Reads of a source (a DCGM exporter URL, or nvml).",
		}, []string{"source"}),
		scrapeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "neocloud_agent_scrape_errors_total", Help: "Reads of a source that failed.",
		}, []string{"source"}),
	}
	m.reg.MustRegister(m.scrapes, m.scrapeErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c := &a.stats
	for _, x := range []struct {
		name, help string
		v          func() int64
	}{
		{"neocloud_agent_readings_total", "GPU readings read and spooled.", c.readings.Load},
		{"neocloud_agent_batches_spooled_total", "Batches written to the spool.", c.spooled.Load},
		{"neocloud_agent_batches_pushed_total", "Batches the server took (2xx).", c.pushed.Load},
		{"neocloud_agent_batches_rejected_total", "Batches the server refused (4xx other than 408 and 429), moved to rejected/.", c.rejected.Load},
		{"neocloud_agent_batches_dropped_total", "Oldest batches dropped to keep the spool within its bound.", c.dropped.Load},
		{"neocloud_agent_push_errors_total", "Pushes that failed and will be retried (408, 429, 5xx, network errors).", c.pushErrors.Load},
		{"neocloud_agent_spool_errors_total", "Batches lost because the spool could not be written.", c.spoolErrors.Load},
		{"neocloud_agent_pushed_bytes_total", "Bytes of batches the server took.", c.bytesPushed.Load},
		{"neocloud_agent_readings_accepted_total", "Readings the server accepted, by its answers.", c.accepted.Load},
		{"neocloud_agent_readings_duplicate_total", "Readings the server already had, by its answers.", c.duplicates.Load},
		{"neocloud_agent_readings_too_late_total", "Readings the server took too late to count, by its answers.", c.tooLate.Load},
	} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: x.name, Help: x.help},
			func() float64 { return float64(x.v()) }))
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "neocloud_agent_spool_bytes", Help: "Bytes of batches in the spool, not yet delivered."},
			func() float64 { return float64(a.Stats().SpoolBytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "neocloud_agent_spool_batches", Help: "Batches in the spool, not yet delivered."},
			func() float64 { return float64(a.Stats().SpoolBatches) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "neocloud_agent_buffer_max_bytes", Help: "The spool's bound (BufferMax)."},
			func() float64 { return float64(a.cfg.BufferMax) }),
	)
	return m
}

// Handler serves the agent's Prometheus metrics on /metrics and "ok" on
// /healthz; Run serves it on MetricsAddr.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
